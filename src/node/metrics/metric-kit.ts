// How this folder declares series: each on the node's own registry, named under its prefix.
// Series read from a module's `stats()` compute their samples at scrape time; a monotonic
// stats field becomes a Counter that is reset and set to the field's value on each scrape.

import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** One sample: its label values and its value. */
export type Sample<L extends string> = readonly [labels: Readonly<Record<L, string>>, value: number];

/** What a scrape-time series reads: a single value, or one sample per label set. */
export type Read<L extends string> = () => number | undefined | Iterable<Sample<L>>;

export interface MetricKit {
  /** A value that goes up and down, read at scrape time. */
  gauge<L extends string = never>(name: string, help: string, labelNames: readonly L[], read: Read<L>): void;
  /** A monotonic stats field (or fields, by label), read at scrape time. */
  counterOf<L extends string = never>(
    name: string,
    help: string,
    labelNames: readonly L[],
    read: Read<L>,
  ): void;
  /** A counter the caller increments, from diagnostics events. */
  counter<L extends string>(name: string, help: string, labelNames: readonly L[]): Counter<L>;
  histogram<L extends string>(
    name: string,
    help: string,
    labelNames: readonly L[],
    buckets: readonly number[],
  ): Histogram<L>;
}

export function metricKit(registry: Registry, prefix: string): MetricKit {
  const registers = [registry];
  return {
    gauge(name, help, labelNames, read) {
      new Gauge({
        name: prefix + name,
        help,
        labelNames,
        registers,
        collect() {
          this.reset();
          forEachSample(read, (labels, value) => {
            this.set(labels, value);
          });
        },
      });
    },
    counterOf(name, help, labelNames, read) {
      new Counter({
        name: prefix + name,
        help,
        labelNames,
        registers,
        collect() {
          this.reset();
          // A counter cannot go down: a negative reading is a bug upstream, not a sample.
          forEachSample(read, (labels, value) => {
            if (value >= 0) this.inc(labels, value);
          });
        },
      });
    },
    counter(name, help, labelNames) {
      return new Counter({ name: prefix + name, help, labelNames, registers });
    },
    histogram(name, help, labelNames, buckets) {
      return new Histogram({ name: prefix + name, help, labelNames, buckets: [...buckets], registers });
    },
  };
}

function forEachSample<L extends string>(
  read: Read<L>,
  emit: (labels: Readonly<Record<L, string>>, value: number) => void,
): void {
  const reading = read();
  if (reading === undefined) return;
  if (typeof reading === 'number') {
    if (Number.isFinite(reading)) emit({} as Record<L, string>, reading);
    return;
  }
  for (const [labels, value] of reading) if (Number.isFinite(value)) emit(labels, value);
}

/** Samples of `record`'s fields under label `label`, for every name in `names` (absent ones 0). */
export function byLabel<L extends string>(
  label: L,
  names: readonly string[],
  record: Readonly<Partial<Record<string, number>>>,
): Sample<L>[] {
  const all = new Set([...names, ...Object.keys(record)]);
  return [...all].map((name) => [{ [label]: name } as Record<L, string>, record[name] ?? 0]);
}
