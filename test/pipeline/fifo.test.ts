import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startReceiver, type Answer, type Received } from '../helpers/receiver.js';
import { startRelay } from '../helpers/relay.js';
import { waitUntil } from '../helpers/wait.js';
import { attemptedMessages, createApp, createEndpoint, send, verifySignature } from './support.js';

const COUNT = 20;

/**
 * Wraps a behaviour with bookkeeping: which messages were answered 2xx, and how many requests were unanswered
 * when each request arrived. The bookkeeping timer is set before the receiver's reply timer of the same length,
 * so it fires first, just before the reply goes out.
 */
function tracked(answer: (seq: number, n: number) => Answer & { delayMs: number }) {
  const state = { open: 0, maxOpen: 0, answeredOk: new Set<number>(), arrivals: [] as { seq: number; ok: boolean; okBefore: Set<number>; openBefore: number }[] };
  const behaviour = (request: Received, n: number): Answer => {
    const seq = (JSON.parse(request.body.toString('utf8')) as { seq: number }).seq;
    const reply = answer(seq, n);
    const ok = (reply.status ?? 200) < 300;
    state.arrivals.push({ seq, ok, okBefore: new Set(state.answeredOk), openBefore: state.open });
    state.open++;
    state.maxOpen = Math.max(state.maxOpen, state.open);
    setTimeout(() => {
      state.open--;
      if (ok) state.answeredOk.add(seq);
    }, reply.delayMs);
    return reply;
  };
  return { state, behaviour };
}

describe('FIFO ordering', () => {
  it('delivers a fifo endpoint one message at a time, in send order, holding later ones while one is retried', async (t) => {
    const relay = await startRelay();
    const jitter = () => 1 + Math.floor(Math.random() * 15);
    let failedThird = false;
    const fifo = tracked((seq) => {
      if (seq === 3 && !failedThird) {
        failedThird = true;
        return { status: 500, delayMs: jitter() };
      }
      return { status: 200, delayMs: jitter() };
    });
    const parallel = tracked(() => ({ status: 200, delayMs: 30 + Math.floor(Math.random() * 50) }));
    const fifoReceiver = await startReceiver(fifo.behaviour);
    const parallelReceiver = await startReceiver(parallel.behaviour);
    t.after(async () => {
      await fifoReceiver.close();
      await parallelReceiver.close();
      await relay.close();
    });

    const appId = await createApp(relay);
    const fifoEndpoint = await createEndpoint(relay, appId, { url: fifoReceiver.url, ordering: 'fifo' });
    const parallelEndpoint = await createEndpoint(relay, appId, { url: parallelReceiver.url });
    const fetched = await relay.api('GET', `/api/v1/app/${appId}/endpoint/${fifoEndpoint.id}`);
    assert.equal(fetched.body.ordering, 'fifo');

    const sent: string[] = [];
    for (let seq = 1; seq <= COUNT; seq++) sent.push(await send(relay, appId, { seq }));

    await fifoReceiver.waitFor(COUNT + 1, 15_000);
    await parallelReceiver.waitFor(COUNT, 15_000);
    await waitUntil('every fifo delivery to succeed', async () => (await attemptedMessages(relay, appId, fifoEndpoint.id, 0)).length === COUNT);
    await waitUntil('every parallel delivery to succeed', async () => (await attemptedMessages(relay, appId, parallelEndpoint.id, 0)).length === COUNT);

    assert.ok(failedThird, 'message #3 was refused once');
    assert.equal(fifoReceiver.received.length, COUNT + 1, 'each message once, plus the retry of #3');
    for (const request of fifoReceiver.received) verifySignature(request, fifoEndpoint.secret);

    const arrivals = fifo.state.arrivals;
    assert.deepEqual(arrivals.map((a) => a.seq), [1, 2, 3, 3, ...Array.from({ length: COUNT - 3 }, (_, i) => i + 4)]);
    const firstSuccess = [...new Set(arrivals.filter((a) => a.ok).map((a) => a.seq))];
    assert.deepEqual(firstSuccess, Array.from({ length: COUNT }, (_, i) => i + 1));
    for (const arrival of arrivals) {
      assert.equal(arrival.openBefore, 0, `message #${arrival.seq} arrived while another request was unanswered`);
      for (let earlier = 1; earlier < arrival.seq; earlier++) {
        assert.ok(arrival.okBefore.has(earlier), `message #${arrival.seq} arrived before #${earlier} was answered 2xx`);
      }
    }
    assert.deepEqual(fifoReceiver.received.map((r) => r.headers['webhook-id']), [...sent.slice(0, 3), ...sent.slice(2)]);

    // The same kind of receiver on a parallel endpoint does see overlapping requests: the fifo checks above can fail.
    assert.equal(parallelReceiver.received.length, COUNT);
    assert.ok(parallel.state.maxOpen > 1, 'the parallel endpoint never had two requests in flight');
    assert.equal((await attemptedMessages(relay, appId, parallelEndpoint.id, 0)).length, COUNT);
  });
});
