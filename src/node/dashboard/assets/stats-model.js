// What the page derives from the stream of node.stats snapshots: per-second rates from the
// deltas of consecutive counters, and the plot history. Counters that go backwards (the node
// restarted, a connection was replaced) give no rate rather than a negative one.

import { isNumber, isRecord } from './format.js';
import { TimeSeries, PLOT_WINDOW_MS } from './time-series.js';

// Peers beyond this many get no latency line; the table still lists them.
const MAX_LATENCY_SERIES = 32;

export function perSecond(previous, current, elapsedSeconds) {
  if (!isNumber(previous) || !isNumber(current) || !(elapsedSeconds > 0) || current < previous) {
    return undefined;
  }
  return (current - previous) / elapsedSeconds;
}

export class StatsModel {
  /** The latest snapshot, or undefined before the first. */
  latest;
  /** host → { bytesIn, bytesOut, messagesIn, messagesOut } per second, from the last two snapshots. */
  connectionRates = new Map();
  processedPerSecond;
  gridMessagesPerSecond;

  throughput = { processed: new TimeSeries(), grid: new TimeSeries() };
  backlog = { runtime: new TimeSeries(), hub: new TimeSeries() };
  /** host → TimeSeries of RTT in ms. */
  latency = new Map();

  #previous;
  #previousTime;

  ingest(snapshot) {
    if (!isRecord(snapshot)) return;
    const time = isNumber(snapshot.now) ? snapshot.now : Date.now();
    const previous = this.#sameRun(snapshot) ? this.#previous : undefined;
    const elapsedSeconds = previous === undefined ? 0 : (time - this.#previousTime) / 1000;

    const connections =
      isRecord(snapshot.grid) && isRecord(snapshot.grid.connections) ? snapshot.grid.connections : {};
    const previousConnections =
      previous !== undefined && isRecord(previous.grid) && isRecord(previous.grid.connections)
        ? previous.grid.connections
        : {};
    this.connectionRates = new Map();
    let gridMessages = previous === undefined ? undefined : 0;
    for (const [host, connection] of Object.entries(connections)) {
      if (!isRecord(connection)) continue;
      const before = previousConnections[host];
      const rate = (field) =>
        isRecord(before) ? perSecond(before[field], connection[field], elapsedSeconds) : undefined;
      const rates = {
        bytesIn: rate('bytesIn'),
        bytesOut: rate('bytesOut'),
        messagesIn: rate('messagesIn'),
        messagesOut: rate('messagesOut'),
      };
      this.connectionRates.set(host, rates);
      if (gridMessages !== undefined) gridMessages += (rates.messagesIn ?? 0) + (rates.messagesOut ?? 0);
    }
    this.gridMessagesPerSecond = gridMessages;
    this.processedPerSecond = perSecond(
      isRecord(previous?.runtime) ? previous.runtime.messagesProcessed : undefined,
      isRecord(snapshot.runtime) ? snapshot.runtime.messagesProcessed : undefined,
      elapsedSeconds,
    );

    this.throughput.processed.push(time, this.processedPerSecond);
    this.throughput.grid.push(time, this.gridMessagesPerSecond);
    this.backlog.runtime.push(time, isRecord(snapshot.runtime) ? snapshot.runtime.backlog : undefined);
    this.backlog.hub.push(time, isRecord(snapshot.hub) ? snapshot.hub.buffered : undefined);
    this.#recordLatency(time, connections);

    this.latest = snapshot;
    this.#previous = snapshot;
    this.#previousTime = time;
  }

  #sameRun(snapshot) {
    const previous = this.#previous;
    return (
      previous !== undefined && previous.node === snapshot.node && previous.startedAt === snapshot.startedAt
    );
  }

  #recordLatency(time, connections) {
    for (const [host, connection] of Object.entries(connections)) {
      if (!isRecord(connection) || !isNumber(connection.rttMs)) continue;
      if (!this.latency.has(host) && this.latency.size >= MAX_LATENCY_SERIES) continue;
      if (!this.latency.has(host)) this.latency.set(host, new TimeSeries());
    }
    for (const [host, series] of this.latency) {
      const connection = connections[host];
      series.push(time, isRecord(connection) ? connection.rttMs : undefined);
      series.dropBefore(time - PLOT_WINDOW_MS);
      if (!hasValue(series)) this.latency.delete(host);
    }
  }
}

function hasValue(series) {
  let found = false;
  series.forEach((_, value) => {
    if (!Number.isNaN(value)) found = true;
  });
  return found;
}
