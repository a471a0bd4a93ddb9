import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Counter, Histogram, Registry } from 'prom-client';
import { HotCounter, HotHistogram } from '../../src/observability/hot-metrics.js';

const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30];

/** Exposition lines as a set: the two registries may list children in another order. */
const lines = async (registry: Registry) => new Set((await registry.metrics()).split('\n').filter((l) => l !== ''));

describe('hot-path metrics', () => {
  it('write the same exposition text as prom-client for the same observations', async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const help = 'Duration of delivery attempts, by destination kind.';
    const hotHistogram = new HotHistogram({ name: 'attempt_seconds', help, labelNames: ['destination'], buckets: BUCKETS, registers: [ours] });
    const histogram = new Histogram({ name: 'attempt_seconds', help, labelNames: ['destination'], buckets: BUCKETS, registers: [theirs] });
    const hotCounter = new HotCounter({ name: 'attempts_total', help: 'Attempts.', labelNames: ['destination', 'outcome'], registers: [ours] });
    const counter = new Counter({ name: 'attempts_total', help: 'Attempts.', labelNames: ['destination', 'outcome'], registers: [theirs] });
    const hotPlain = new HotCounter({ name: 'plain_total', help: 'No labels.', labelNames: [], registers: [ours] });
    const plain = new Counter({ name: 'plain_total', help: 'No labels.', registers: [theirs] });

    // On the bounds, between them, below the first and above the last.
    const values = [0, 0.001, 0.005, 0.0051, 0.01, 0.3, 1, 2.4999, 30, 31, 1000];
    values.forEach((value, i) => {
      const destination = i % 3 === 0 ? 'temporal' : 'http';
      hotHistogram.child(destination).observe(value);
      histogram.observe({ destination }, value);
      const outcome = i % 2 === 0 ? 'succeeded' : 'retrying';
      hotCounter.child(destination, outcome).inc();
      counter.inc({ destination, outcome });
      hotPlain.child().inc(2);
      plain.inc(2);
    });
    assert.deepEqual(await lines(ours), await lines(theirs));
    assert.ok((await ours.metrics()).includes('attempt_seconds_bucket{le="+Inf",destination="http"} 7'));
  });

  it('leave out a value that is not a number, as it has no bucket', async () => {
    const registry = new Registry();
    const histogram = new HotHistogram({ name: 'h', help: 'h', labelNames: ['op'], buckets: [1], registers: [registry] });
    histogram.child('a').observe(Number.NaN);
    histogram.child('a').observe(0.5);
    const text = await registry.metrics();
    assert.match(text, /^h_count\{op="a"\} 1$/m);
    assert.match(text, /^h_sum\{op="a"\} 0.5$/m);
  });

  it('refuse a third label, which the lookup does not key on', () => {
    assert.throws(() => new HotCounter({ name: 'c', help: 'c', labelNames: ['a', 'b', 'c'], registers: [] }), /at most two labels/);
  });
});
