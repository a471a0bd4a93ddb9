import type { Registry } from 'prom-client';

/** One exported sample, as prom-client's registry writes them (`metricName` defaults to the metric's name). */
interface Sample {
  metricName?: string;
  labels: Record<string, string | number>;
  value: number;
}

/** What a prom-client registry reads from a metric when it is scraped. */
interface Exported {
  name: string;
  help: string;
  type: 'counter' | 'histogram';
  values: Sample[];
  aggregator: 'sum';
}

interface Options {
  name: string;
  help: string;
  /** Label names, in the order `child()` takes their values. */
  labelNames: readonly string[];
  registers: Registry[];
}

/**
 * A metric of the pipeline's hot path (every accept, every attempt) that costs two map lookups and a few additions per
 * event (at most two labels), and builds its text only when scraped. prom-client's
 * own counters and histograms hash their labels into a string on every event, which was a visible part of an
 * attempt's CPU; these are registered in the same registry and written in the same exposition format.
 */
abstract class HotMetric<Child> {
  readonly name: string;
  readonly help: string;
  readonly aggregator = 'sum' as const;
  /** By the first label value, then the second (none: ''): a lookup allocates nothing. */
  private readonly children = new Map<string, Map<string, { labels: Record<string, string>; child: Child }>>();

  constructor(private readonly options: Options) {
    if (options.labelNames.length > 2) throw new Error(`${options.name}: at most two labels`);
    this.name = options.name;
    this.help = options.help;
    for (const registry of options.registers) registry.registerMetric(this as never);
  }

  /** The child of these label values (in the order of `labelNames`). */
  child(first = '', second = ''): Child {
    let inner = this.children.get(first);
    if (!inner) this.children.set(first, (inner = new Map()));
    let entry = inner.get(second);
    if (!entry) {
      const labels: Record<string, string> = {};
      const values = [first, second];
      this.options.labelNames.forEach((name, i) => (labels[name] = values[i]));
      entry = { labels, child: this.create() };
      inner.set(second, entry);
    }
    return entry.child;
  }

  protected abstract create(): Child;

  protected abstract samples(labels: Record<string, string>, child: Child): Sample[];

  get(): Exported {
    const values: Sample[] = [];
    for (const inner of this.children.values()) for (const { labels, child } of inner.values()) values.push(...this.samples(labels, child));
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  abstract readonly type: 'counter' | 'histogram';

  /** Forgets every child (prom-client's `resetMetrics`). */
  reset(): void {
    this.children.clear();
  }
}

export class CounterChild {
  value = 0;

  inc(by = 1): void {
    this.value += by;
  }
}

export class HotCounter extends HotMetric<CounterChild> {
  readonly type = 'counter' as const;

  protected create(): CounterChild {
    return new CounterChild();
  }

  protected samples(labels: Record<string, string>, child: CounterChild): Sample[] {
    return [{ labels, value: child.value }];
  }
}

export class HistogramChild {
  /** Observations per bucket (not cumulative); the last one is above every bound (+Inf). */
  readonly counts: number[];
  sum = 0;
  count = 0;

  constructor(private readonly bounds: readonly number[]) {
    this.counts = new Array<number>(bounds.length + 1).fill(0);
  }

  observe(value: number): void {
    if (!Number.isFinite(value)) return;
    let i = 0;
    while (i < this.bounds.length && value > this.bounds[i]) i++;
    this.counts[i]++;
    this.sum += value;
    this.count++;
  }
}

export class HotHistogram extends HotMetric<HistogramChild> {
  readonly type = 'histogram' as const;
  private readonly bounds: readonly number[];

  constructor(options: Options & { buckets: readonly number[] }) {
    super(options);
    this.bounds = [...options.buckets].sort((a, b) => a - b);
  }

  protected create(): HistogramChild {
    return new HistogramChild(this.bounds);
  }

  protected samples(labels: Record<string, string>, child: HistogramChild): Sample[] {
    const bucket = `${this.name}_bucket`;
    const out: Sample[] = [];
    let cumulative = 0;
    this.bounds.forEach((bound, i) => {
      cumulative += child.counts[i];
      out.push({ metricName: bucket, labels: { le: bound, ...labels }, value: cumulative });
    });
    out.push({ metricName: bucket, labels: { le: '+Inf', ...labels }, value: child.count });
    out.push({ metricName: `${this.name}_sum`, labels, value: child.sum });
    out.push({ metricName: `${this.name}_count`, labels, value: child.count });
    return out;
  }
}
