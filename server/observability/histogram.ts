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
  /** Series by label value, one map level per label name (no key string to build per observation). */
  private byLabel = new Map<string, unknown>();
  private series: Array<Series<L>> = [];

  constructor(o: {
    name: string;
    help: string;
    labelNames: readonly L[];
    buckets: readonly number[];
    registers: Registry[];
  }) {
    this.name = o.name;
    this.help = o.help;
    // prom-client exposes an unlabelled histogram before its first observation; this one has series only once observed.
    if (o.labelNames.length === 0 || o.labelNames.includes('le' as L)) {
      throw new Error(`${o.name}: a hot histogram needs labels, and "le" is reserved`);
    }
    this.labelNames = o.labelNames;
    this.bounds = [...o.buckets].sort((a, b) => a - b);
    for (const r of o.registers) {
      r.registerMetric(this as never);
    }
  }

  observe(labels: Record<L, string>, value: number): void {
    if (!Number.isFinite(value)) {
      throw new TypeError(`Value is not a valid number: ${value}`);
    }
    let level = this.byLabel;
    const last = this.labelNames.length - 1;
    for (let i = 0; i < last; i++) {
      const labelValue = String(labels[this.labelNames[i]]);
      let next = level.get(labelValue) as Map<string, unknown> | undefined;
      if (!next) {
        level.set(labelValue, (next = new Map()));
      }
      level = next;
    }
    const lastValue = String(labels[this.labelNames[last]]);
    let s = level.get(lastValue) as Series<L> | undefined;
    if (!s) {
      const own = {} as Record<L, string>;
      for (const name of this.labelNames) {
        own[name] = labels[name];
      }
      level.set(lastValue, (s = { labels: own, counts: new Array(this.bounds.length + 1).fill(0), sum: 0, count: 0 }));
      this.series.push(s);
    }
    let i = 0;
    while (i < this.bounds.length && value > this.bounds[i]) {
      i++;
    }
    s.counts[i]++;
    s.sum += value;
    s.count++;
  }

  reset(): void {
    this.byLabel = new Map();
    this.series = [];
  }

  /** What the registry renders (prom-client's Histogram shape: buckets, +Inf, sum, count per series). */
  async getForPromString() {
    const name = `${this.name}_bucket`;
    const values: ValuePair[] = [];
    for (const s of this.series) {
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
    return {
      ...data,
      values: data.values.map((v) => ({
        value: v.value,
        labels: { ...v.labels, ...v.sharedLabels },
        metricName: v.metricName,
      })),
    };
  }
}
