import { Agent } from 'undici';
import { benchPayload, now } from './shared.js';

export interface CeilingResult {
  inFlight: number;
  requests: number;
  failed: number;
  seconds: number;
  perSecond: number;
}

/**
 * The most this process can POST to the receiver: a bare undici loop over keep-alive sockets, with a body
 * and headers shaped like hookrelay's deliveries but no store, no claim, no signing.
 */
export async function ceiling(url: string, inFlight: number, seconds: number): Promise<CeilingResult> {
  const agent = new Agent({ connections: inFlight, pipelining: 1, keepAliveTimeout: 30_000 });
  const target = new URL(url);
  const body = Buffer.from(JSON.stringify(benchPayload(0)));
  const headers = {
    'content-type': 'application/json',
    'user-agent': 'hookrelay-bench',
    'webhook-id': 'msg_2zWc0000000000000000000000',
    'webhook-timestamp': '1735689600',
    'webhook-signature': 'v1,' + 'A'.repeat(44),
  };
  let requests = 0;
  let failed = 0;
  const started = now();
  const end = started + seconds * 1000;
  const worker = async () => {
    while (now() < end) {
      try {
        const response = await agent.request({ origin: target.origin, path: target.pathname, method: 'POST', headers, body });
        await response.body.text();
        if (response.statusCode === 200) requests++;
        else failed++;
      } catch {
        failed++;
      }
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  const elapsed = (now() - started) / 1000;
  await agent.close();
  return { inFlight, requests, failed, seconds: elapsed, perSecond: requests / elapsed };
}
