/**
 * A labelled histogram for the hot path (one observation per query answered), exposed
 * through a prom-client registry exactly as prom-client's own Histogram would expose it.
 * prom-client allocates a closure, hashes and checks the labels on every observe(); here an
 * observation is a map lookup and two additions.
 */
import type { Registry } from 'prom-client';

interface Series<L extends string> {
  labels: Record<L, string>;
  /** Observations per bucket (not cumulative); the last slot is above every bound. */
  counts: number[];
  sum: number;
  count: number;
}

interface ValuePair {
  labels: Record<string, string | number>;
  sharedLabels: Record<string, string>;
  value: number;
  metricName: string;
}

export class HotHistogram<L extends string> {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly name: string;
  readonly help: string;
  private readonly labelNames: readonly L[];
  private readonly bounds: readonly number[];
  private series = new Map<string, Series<L>>();

  constructor(o: { name: string; help: string; labelNames: readonly L[]; buckets: readonly number[]; registers: Registry[] }) {
    this.name = o.name;
    this.help = o.help;
    // prom-client exposes an unlabelled histogram before its first observation; this one has series only once observed.
    if (o.labelNames.length === 0 || o.labelNames.includes('le' as L)) throw new Error(`${o.name}: a hot histogram needs labels, and "le" is reserved`);
    this.labelNames = o.labelNames;
    this.bounds = [...o.buckets].sort((a, b) => a - b);
    for (const r of o.registers) r.registerMetric(this as never);
  }

  observe(labels: Record<L, string>, value: number): void {
    if (!Number.isFinite(value)) throw new TypeError(`Value is not a valid number: ${value}`);
    let key = '';
    for (const name of this.labelNames) key += `${labels[name]}\u0000`;
    let s = this.series.get(key);
    if (!s) {
      const own = {} as Record<L, string>;
      for (const name of this.labelNames) own[name] = labels[name];
      this.series.set(key, (s = { labels: own, counts: new Array(this.bounds.length + 1).fill(0), sum: 0, count: 0 }));
    }
    let i = 0;
    while (i < this.bounds.length && value > this.bounds[i]) i++;
    s.counts[i]++;
    s.sum += value;
    s.count++;
  }

  reset(): void {
    this.series = new Map();
  }

  /** What the registry renders (prom-client's Histogram shape: buckets, +Inf, sum, count per series). */
  async getForPromString() {
    const name = `${this.name}_bucket`;
    const values: ValuePair[] = [];
    for (const s of this.series.values()) {
      let acc = 0;
      this.bounds.forEach((le, i) => {
        acc += s.counts[i];
        values.push({ labels: { le }, sharedLabels: s.labels, value: acc, metricName: name });
      });
      values.push(
        { labels: { le: '+Inf' }, sharedLabels: s.labels, value: s.count, metricName: name },
        { labels: {}, sharedLabels: s.labels, value: s.sum, metricName: `${this.name}_sum` },
        { labels: {}, sharedLabels: s.labels, value: s.count, metricName: `${this.name}_count` }
      );
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  /** As prom-client's get(): each value's labels with the series' labels. */
  async get() {
    const data = await this.getForPromString();
    return { ...data, values: data.values.map((v) => ({ value: v.value, labels: { ...v.labels, ...v.sharedLabels }, metricName: v.metricName })) };
  }
}
