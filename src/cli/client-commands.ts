// The commands that talk to a running node over its HTTP API: status, send, view.

import { parseArgs } from 'node:util';

import {
  DEFAULT_PORT,
  INGRESS_PREFIX,
  JSON_MESSAGE_TYPE,
  STATUS_PATH,
  VIEWS_PREFIX,
  type NodeStats,
} from '../node/index.ts';
import { CommandFailedError, UsageError } from './usage.ts';

const REQUEST_TIMEOUT_MS = 10_000;
/** A watch waits this long per query (the node answers earlier when the view changes). */
const WATCH_WAIT = '5m';
const WATCH_WAIT_MS = 5 * 60_000;

function nodeOf(flag: string | undefined, env: NodeJS.ProcessEnv): string {
  const text = flag ?? env['WEFT_NODE'] ?? `http://127.0.0.1:${DEFAULT_PORT}`;
  try {
    const url = new URL(text);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('not http');
    return url.origin;
  } catch {
    throw new UsageError(`--node must be a URL such as http://127.0.0.1:7400, got ${JSON.stringify(text)}`);
  }
}

async function call(
  node: string,
  path: string,
  init: RequestInit = {},
  timeoutMs = REQUEST_TIMEOUT_MS,
): Promise<Response> {
  try {
    const deadline = AbortSignal.timeout(timeoutMs);
    const signal =
      init.signal === undefined || init.signal === null ? deadline : AbortSignal.any([init.signal, deadline]);
    return await fetch(new URL(path, node), { ...init, signal });
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).message;
    throw new CommandFailedError(
      `cannot reach a Weft node at ${node} (${cause}). Is one running? Start one with \`weft start\`, a local cluster with \`npm start\`, or name another with --node.`,
    );
  }
}

export async function statusCommand(args: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  const { values } = parseArgs({
    args: [...args],
    options: { node: { type: 'string' }, json: { type: 'boolean' } },
    strict: true,
  });
  const node = nodeOf(values.node, env);
  const response = await call(node, STATUS_PATH);
  if (!response.ok)
    throw new CommandFailedError(`${node} answered ${response.status}: ${await response.text()}`);
  const status = (await response.json()) as NodeStats;
  if (values.json === true) {
    console.log(JSON.stringify(status, null, 2));
    return 0;
  }
  console.log(statusLines(status).join('\n'));
  return 0;
}

/** What `weft status` prints of a node's status (`GET /v1/status`), line by line. */
export function statusLines(status: NodeStats): string[] {
  const lines = [`${status.name}  ${status.node}  up ${formatAge(status.now - status.startedAt)}`];
  lines.push('', 'Members');
  for (const m of status.members) {
    const rtt = m.rttMs === undefined ? '' : `  rtt ${m.rttMs} ms`;
    lines.push(
      `  ${m.name.padEnd(12)} ${m.host.padEnd(26)} ${m.state.padEnd(12)} since ${formatAge(status.now - m.since)}${rtt}`,
    );
  }
  const connections = Object.entries(status.grid.connections);
  if (connections.length > 0) {
    lines.push('', 'Grid connections');
    for (const [host, c] of connections) {
      lines.push(
        `  ${host.padEnd(26)} ${c.state.padEnd(12)} streams ${c.streamsIn} in / ${c.streamsOut} out   requests ${c.requestsIn} in / ${c.requestsOut} out`,
      );
    }
  }
  if (status.runtime !== undefined) {
    const r = status.runtime;
    lines.push('', `Functions: ${r.functionTypes.join(', ') || 'none'}`);
    lines.push(
      `  addresses ${r.addresses}   messages in ${r.messagesIn}, run ${r.messagesProcessed}   backlog ${r.backlog}`,
    );
  }
  if (status.cluster !== undefined) lines.push('', ...clusterLines(status.cluster));
  if (status.hub !== undefined) {
    const h = status.hub;
    lines.push('', `Hub (gRPC ${h.address ?? '-'}): stories ${h.stories.join(', ') || 'none'}`);
    lines.push(
      `  streams ${h.activeStreams} active of ${h.keys} keys   packets in ${h.packetsIn}, sent ${h.sent}   buffered ${h.buffered}`,
    );
  }
  if (status.mirror !== undefined) {
    const m = status.mirror;
    lines.push(
      '',
      `Mirror: ${m.storedBlobs} blobs (${m.storedBytes} bytes)   origin fetches ${m.originFetches}   peer fetches ${m.peerFetches}`,
    );
  }
  return lines;
}

function clusterLines(c: NonNullable<NodeStats['cluster']>): string[] {
  const quorum = c.quorum ? 'quorum' : 'no quorum';
  const pool =
    c.pool === undefined
      ? 'PostgreSQL pool -'
      : `PostgreSQL pool ${c.pool.total} total / ${c.pool.idle} idle / ${c.pool.waiting} waiting of ${c.pool.size}, errors ${c.pool.errors}`;
  return [
    `Cluster: partitions ${c.partitionsHeld} held, ${c.partitionsOwned} owned, ${c.partitionsMoving} moving   max epoch ${c.maxEpoch}   ${quorum} (${c.liveMembers} of ${c.knownMembers} members live)`,
    `  leases acquired ${c.leasesAcquired}, lost ${c.leasesLost}   fenced batches ${c.fencedBatches}`,
    `  forwarded ${c.forwarded} (refused ${c.forwardRefused}, failed ${c.forwardFailed}, pending ${c.forwardPending})   wakes sent ${c.wakesSent}, received ${c.wakesReceived}`,
    `  ${pool}`,
    `  commits ${c.commits} (batches ${c.batchesCommitted}, ${c.meanBatchesPerCommit} per commit)`,
  ];
}

export async function sendCommand(args: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...args],
    options: { node: { type: 'string' }, type: { type: 'string', default: JSON_MESSAGE_TYPE } },
    strict: true,
    allowPositionals: true,
  });
  if (positionals.length !== 2) {
    throw new UsageError('send takes an ADDRESS and a VALUE, e.g. weft send example/counter/ada \'"hello"\'');
  }
  const [address, value] = positionals as [string, string];
  const segments = address.split('/');
  if (segments.length < 3 || segments.some((s) => s === '')) {
    throw new UsageError(`ADDRESS must be namespace/type/id, got ${JSON.stringify(address)}`);
  }
  let body = value;
  try {
    JSON.parse(value);
  } catch {
    body = JSON.stringify(value);
  }
  const node = nodeOf(values.node, env);
  const path = `${INGRESS_PREFIX}/${segments.map(encodeURIComponent).join('/')}`;
  const response = await call(node, path, {
    method: 'POST',
    headers: { 'weft-message-type': values.type, 'content-type': 'application/json' },
    body,
  });
  const text = (await response.text()).trim();
  if (response.status === 404) {
    throw new CommandFailedError(
      `${node} runs no function of type ${segments.slice(0, -1).join('/')} (${text})`,
    );
  }
  if (response.status !== 202)
    throw new CommandFailedError(`${node} refused the message: ${response.status} ${text}`);
  console.log(`sent to ${address} on ${node}: ${text}`);
  return 0;
}

export async function viewCommand(args: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...args],
    options: { node: { type: 'string' }, watch: { type: 'boolean' } },
    strict: true,
    allowPositionals: true,
  });
  if (positionals.length !== 1)
    throw new UsageError('view takes the NAME of a view, e.g. weft view cluster.members');
  const name = positionals[0] as string;
  const node = nodeOf(values.node, env);
  const path = `${VIEWS_PREFIX}${encodeURIComponent(name)}`;
  let index = 0;
  const stop = new AbortController();
  process.once('SIGINT', () => {
    stop.abort();
  });
  for (;;) {
    const watching = values.watch === true && index > 0;
    const query = watching ? `?index=${index}&wait=${WATCH_WAIT}` : '?wait=1s';
    let response: Response;
    let text: string;
    try {
      // A watch's query is held by the node for up to its wait: the deadline is past that.
      response = await call(
        node,
        `${path}${query}`,
        { signal: stop.signal },
        watching ? WATCH_WAIT_MS + REQUEST_TIMEOUT_MS : REQUEST_TIMEOUT_MS,
      );
      text = await response.text();
    } catch (error) {
      if (stop.signal.aborted) return 0;
      throw error;
    }
    if (response.status === 404)
      throw new CommandFailedError(`${node} has no view named ${JSON.stringify(name)}`);
    if (!response.ok) throw new CommandFailedError(`${node} answered ${response.status}: ${text.trim()}`);
    const next = Number(response.headers.get('x-weft-index') ?? '0');
    if (next !== index) console.log(JSON.stringify(JSON.parse(text), null, 2));
    if (values.watch !== true) return 0;
    index = next;
  }
}

function formatAge(ms: number): string {
  const seconds = Math.max(0, Math.round(ms / 1000));
  if (seconds < 120) return `${seconds} s`;
  const minutes = Math.round(seconds / 60);
  return minutes < 120 ? `${minutes} min` : `${Math.round(minutes / 60)} h`;
}
