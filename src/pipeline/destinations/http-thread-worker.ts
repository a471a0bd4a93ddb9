import { parentPort, workerData } from 'node:worker_threads';
import { EgressPolicy } from '../../egress/policy.js';
import type { SendResult } from './destination.js';
import type { FromThread, ThreadTransportData, ToThread } from './http-thread.js';
import { UndiciTransport, type RunningAttempt } from './http-transport.js';

// The delivery thread: undici and its sockets, nothing else. Results go back once per turn of this loop.
const data = workerData as ThreadTransportData;
const port = parentPort!;
const transport = new UndiciTransport({ ...data, egress: new EgressPolicy(data.egress) });
const running = new Map<number, RunningAttempt>();
let answered: FromThread = { ids: [], results: [] };

function finished(id: number, result: SendResult): void {
  running.delete(id);
  if (answered.ids.length === 0) setImmediate(answer);
  answered.ids.push(id);
  answered.results.push(result);
}

function answer(): void {
  const batch = answered;
  answered = { ids: [], results: [] };
  if (batch.ids.length > 0) port.postMessage(batch);
}

port.on('message', (message: ToThread) => {
  if ('send' in message) {
    for (const request of message.send) {
      const id = request.id;
      let settled = false;
      const attempt = transport.start(request, (result) => {
        settled = true;
        finished(id, result);
      });
      if (!settled) running.set(id, attempt);
    }
  } else if ('abort' in message) {
    for (const id of message.abort) running.get(id)?.stop(message.reason);
  } else {
    void transport.close().then(() => {
      answer();
      port.close();
    });
  }
});
