// Who is in the cluster, as this node sees it, published as the `cluster.members` view.
//
// Members are the grid's hosts. A node joins through any member (join-request.ts); the member
// adds it to its grid and tells the others over the grid (handler 24), so every node ends up
// listing every other without a restart. A node that stops gracefully tells its peers it is
// leaving and they remove it; a node that dies stays a member, shown `disconnected`, until it
// comes back (same URL) or an operator removes it. Whenever a peer connects, the two exchange
// their member lists (`sync`), so an announcement a member missed (it was unreachable then) is
// made up for; a member that left is not brought back by an older list (a tombstone, kept ten
// minutes or until it joins again). Each member's state follows its grid
// connection: `connecting` until it has connected once, then `connected` or `disconnected`.

import diagnosticsChannel from 'node:diagnostics_channel';
import type http from 'node:http';

import type { ConnectionState, Manager } from '../grid/index.ts';
import type { Clock, Timer } from '../internal/clock.ts';
import { ConfigError } from '../internal/errors.ts';
import { deleteEvent, type EventPublisher, type MapChange, putEvent } from '../views/index.ts';
import {
  JOIN_MAX_SKEW_MS,
  JOIN_PATH,
  type JoinRequest,
  type MemberIdentity,
  MAX_JOIN_ANSWER_BYTES,
  MAX_JOIN_BODY_BYTES,
  newJoinRequest,
  parseIdentity,
  parseJoinAnswer,
  parseJoinRequest,
  SIGNATURE_HEADER,
  sign,
  signatureMatches,
} from './join-request.ts';
import type { NodeLogger } from './logger.ts';
import { SeenNonces } from './seen-nonces.ts';

export const MEMBERS_TOPIC = 'cluster.members';
/** Grid handler of membership announcements (docs/wire/grid.md §11). */
export const MEMBERSHIP_HANDLER = 24;
const GRID_STATE_CHANNEL = 'weft:grid:connection-state';
const ANNOUNCE_TIMEOUT_MS = 2_000;
const JOIN_TIMEOUT_MS = 5_000;
const JOIN_RETRY_MIN_MS = 250;
const JOIN_RETRY_MAX_MS = 5_000;

export type MemberState = 'self' | 'connecting' | 'connected' | 'disconnected';

export interface Member {
  readonly host: string;
  readonly name: string;
  readonly self: boolean;
  readonly state: MemberState;
  /** The peer's grid node id (hex): new at each start of its process. */
  readonly nodeId?: string | undefined;
  readonly rttMs?: number | undefined;
  /** When the state last changed (epoch ms). */
  readonly since: number;
}

type Announcement =
  | { readonly op: 'join' | 'leave'; readonly host: string; readonly name: string }
  | { readonly op: 'sync'; readonly members: readonly MemberIdentity[] };

/** How long a member that left is not re-added from another member's list. */
const TOMBSTONE_MS = 10 * 60_000;
const MAX_TOMBSTONES = 1024;
const MAX_SYNC_MEMBERS = 1024;

export interface MembershipOptions {
  readonly grid: Manager;
  readonly self: MemberIdentity;
  readonly secret: string;
  readonly publisher: EventPublisher;
  readonly clock: Clock;
  readonly logger: NodeLogger;
  /** Called after any member is added, removed or changes state. */
  readonly onChange?: (() => void) | undefined;
}

export class Membership {
  readonly #grid: Manager;
  readonly #self: MemberIdentity;
  readonly #secret: string;
  readonly #publisher: EventPublisher;
  readonly #clock: Clock;
  readonly #logger: NodeLogger;
  readonly #onChange: (() => void) | undefined;
  readonly #members = new Map<string, Member>();
  readonly #stop = new AbortController();
  #joinTimer: Timer | undefined;
  #joined = false;
  /** Members that left (announced), by host → when: a `sync` does not bring them back. */
  readonly #left = new Map<string, number>();
  /** Join nonces seen within the clock-skew window: a captured join cannot be replayed. */
  readonly #nonces = new SeenNonces(JOIN_MAX_SKEW_MS * 2, 10_000);

  constructor(options: MembershipOptions) {
    this.#grid = options.grid;
    this.#self = options.self;
    this.#secret = options.secret;
    this.#publisher = options.publisher;
    this.#clock = options.clock;
    this.#logger = options.logger;
    this.#onChange = options.onChange;
    this.#publisher.registerTopic<MapChange<Member>>(MEMBERS_TOPIC, {
      snapshot: () => ({
        index: this.#publisher.index(MEMBERS_TOPIC),
        events: [...this.#members.values()].map((m) => putEvent(m.host, m)),
      }),
    });
    this.#set({
      ...this.#self,
      self: true,
      state: 'self',
      nodeId: hex(this.#grid.nodeId),
      since: Date.now(),
    });
    for (const host of this.#grid.targets()) this.#track(host, host);
    diagnosticsChannel.subscribe(GRID_STATE_CHANNEL, this.#onGridState);
    this.#grid.registerSingle(
      MEMBERSHIP_HANDLER,
      (payload) => {
        this.#onAnnouncement(payload);
        return undefined;
      },
      { reserved: true },
    );
  }

  /** Members as this node sees them, itself first. */
  members(): Member[] {
    return [...this.#members.values()];
  }

  /** True once this node has joined through a seed, or had none to join through. */
  get joined(): boolean {
    return this.#joined;
  }

  /** Adds a member (idempotent). Returns false when it was already one. */
  add(identity: MemberIdentity): boolean {
    if (identity.host === this.#self.host) return false;
    this.#left.delete(identity.host);
    const added = this.#grid.addHost(identity.host);
    const known = this.#members.get(identity.host);
    if (known === undefined) this.#track(identity.host, identity.name);
    else if (known.name !== identity.name) this.#set({ ...known, name: identity.name });
    if (added) this.#logger.info({ member: identity.host, name: identity.name }, 'member added');
    return added;
  }

  /** Removes a member: its grid connection closes. */
  remove(host: string): boolean {
    if (host === this.#self.host) throw new ConfigError('host', 'a node cannot remove itself');
    const removed = this.#grid.removeHost(host);
    if (this.#members.delete(host)) {
      this.#publisher.publish(MEMBERS_TOPIC, [deleteEvent(host)]);
      this.#onChange?.();
    }
    if (removed) this.#logger.info({ member: host }, 'member removed');
    return removed;
  }

  /**
   * Joins the cluster through the first seed that answers, retrying with backoff in the
   * background until one does (a cluster may start in any order).
   */
  startJoining(seeds: readonly string[]): void {
    const others = seeds.filter((seed) => seed !== this.#self.host);
    if (others.length === 0) {
      this.#joined = true;
      return;
    }
    let delay = JOIN_RETRY_MIN_MS;
    const attempt = async (): Promise<void> => {
      this.#joinTimer = undefined;
      for (const seed of others) {
        if (this.#stop.signal.aborted) return;
        try {
          await this.#joinThrough(seed);
          this.#joined = true;
          this.#logger.info({ seed, members: this.#members.size }, 'joined the cluster');
          return;
        } catch (error) {
          this.#logger.debug({ seed, error: (error as Error).message }, 'join attempt failed');
        }
      }
      if (this.#stop.signal.aborted) return;
      this.#logger.warn({ seeds: others, retryInMs: delay }, 'no seed answered the join; retrying');
      this.#joinTimer = this.#clock.setTimeout(() => void attempt(), delay);
      delay = Math.min(delay * 2, JOIN_RETRY_MAX_MS);
    };
    void attempt();
  }

  /** Serves `POST /v1/cluster/join`; false for other paths. */
  handle(request: http.IncomingMessage, response: http.ServerResponse): boolean {
    if (new URL(request.url ?? '/', 'http://x').pathname !== JOIN_PATH) return false;
    if (request.method !== 'POST') {
      response.writeHead(405, { allow: 'POST', 'content-type': 'text/plain' }).end('use POST\n');
      return true;
    }
    if (this.#stop.signal.aborted) {
      response.writeHead(503, { 'content-type': 'text/plain' }).end('this node is leaving\n');
      return true;
    }
    void this.#answerJoin(request, response).catch((error: unknown) => {
      this.#logger.warn({ error: (error as Error).message }, 'join request failed');
      if (!response.headersSent)
        response.writeHead(500, { 'content-type': 'text/plain' }).end('internal error\n');
    });
    return true;
  }

  /** Tells every peer this node is leaving (best effort, bounded), then stops. */
  async leave(): Promise<void> {
    // First: no join of ours may land, and none through us be answered, after peers forget us.
    this.#stop.abort();
    this.#joinTimer?.cancel();
    const payload = encode({ op: 'leave', ...this.#self });
    await Promise.allSettled(
      this.#grid
        .targets()
        .filter((host) => this.#members.get(host)?.state === 'connected')
        .map((host) =>
          this.#grid
            .connection(host)
            .request(MEMBERSHIP_HANDLER, payload, { timeoutMs: ANNOUNCE_TIMEOUT_MS }),
        ),
    );
    this.close();
  }

  close(): void {
    this.#stop.abort();
    this.#joinTimer?.cancel();
    diagnosticsChannel.unsubscribe(GRID_STATE_CHANNEL, this.#onGridState);
  }

  /** Refreshes round trips and node ids from the grid's stats (called on the node's tick). */
  refresh(): void {
    const { connections } = this.#grid.stats();
    for (const [host, stats] of Object.entries(connections)) {
      const member = this.#members.get(host);
      if (member === undefined) continue;
      const rttMs = stats.rttMs === undefined ? undefined : Math.round(stats.rttMs * 10) / 10;
      if (member.rttMs !== rttMs || member.nodeId !== stats.remoteNodeId) {
        this.#set({ ...member, rttMs, nodeId: stats.remoteNodeId });
      }
    }
  }

  async #joinThrough(seed: string): Promise<void> {
    const request = newJoinRequest(this.#self, seed, Date.now());
    const body = JSON.stringify(request);
    const response = await fetch(new URL(JOIN_PATH, seed), {
      method: 'POST',
      headers: { 'content-type': 'application/json', [SIGNATURE_HEADER]: sign(this.#secret, body) },
      body,
      signal: AbortSignal.any([this.#stop.signal, AbortSignal.timeout(JOIN_TIMEOUT_MS)]),
    });
    const text = await readAnswer(response, MAX_JOIN_ANSWER_BYTES);
    if (response.status !== 200)
      throw new Error(`${seed} answered ${response.status}: ${text.slice(0, 200)}`);
    if (!signatureMatches(this.#secret, text, response.headers.get(SIGNATURE_HEADER) ?? undefined)) {
      throw new Error(`${seed} answered without a valid signature`);
    }
    // Only members the seed listed, in an answer to this very request (not a replayed one).
    const { members } = parseJoinAnswer(text, request.nonce);
    for (const member of members) this.add(member);
  }

  async #answerJoin(request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    const body = await readBounded(request, MAX_JOIN_BODY_BYTES);
    if (body === undefined) {
      response
        .writeHead(413, { 'content-type': 'text/plain', connection: 'close' })
        .end('body too large\n', () => {
          request.destroy();
        });
      return;
    }
    const signature = request.headers[SIGNATURE_HEADER];
    if (!signatureMatches(this.#secret, body, typeof signature === 'string' ? signature : undefined)) {
      response.writeHead(401, { 'content-type': 'text/plain' }).end('bad or missing signature\n');
      return;
    }
    let joiner: JoinRequest;
    try {
      joiner = parseJoinRequest(body, Date.now());
      if (joiner.to !== this.#self.host) throw new Error(`the join is for ${joiner.to}, not this node`);
      if (!this.#nonces.remember(joiner.nonce, Date.now())) throw new Error('the join was seen before');
    } catch (error) {
      response.writeHead(400, { 'content-type': 'text/plain' }).end(`${(error as Error).message}\n`);
      return;
    }
    if (joiner.host === this.#self.host) {
      response.writeHead(409, { 'content-type': 'text/plain' }).end('that is this node\n');
      return;
    }
    const others = this.#grid.targets().filter((host) => host !== joiner.host);
    this.add(joiner);
    const announcement = encode({ op: 'join', host: joiner.host, name: joiner.name });
    // Members that are down now learn of the joiner when it joins through them or they rejoin.
    await Promise.allSettled(
      others.map((host) =>
        this.#grid
          .connection(host)
          .request(MEMBERSHIP_HANDLER, announcement, { timeoutMs: ANNOUNCE_TIMEOUT_MS }),
      ),
    );
    const answer = JSON.stringify({
      nonce: joiner.nonce,
      members: [...this.#members.values()].map(({ host, name }) => ({ host, name })),
    });
    response
      .writeHead(200, { 'content-type': 'application/json', [SIGNATURE_HEADER]: sign(this.#secret, answer) })
      .end(answer);
  }

  #onAnnouncement(payload: Uint8Array | undefined): void {
    let announcement: Announcement;
    try {
      const value = JSON.parse(Buffer.from(payload ?? new Uint8Array()).toString('utf8')) as {
        op?: unknown;
        members?: unknown;
      };
      if (value.op === 'sync') {
        const { members } = value;
        if (!Array.isArray(members) || members.length > MAX_SYNC_MEMBERS) {
          throw new Error(`members must be a list of at most ${MAX_SYNC_MEMBERS}`);
        }
        announcement = {
          op: 'sync',
          members: members.map((m: unknown, i) => parseIdentity(m, `announcement.members[${i}]`)),
        };
      } else if (value.op === 'join' || value.op === 'leave') {
        announcement = { op: value.op, ...parseIdentity(value, 'announcement') };
      } else {
        throw new Error('op must be join, leave or sync');
      }
    } catch (error) {
      this.#logger.warn({ error: (error as Error).message }, 'a membership announcement was refused');
      throw new ConfigError('announcement', (error as Error).message);
    }
    if (announcement.op === 'sync') {
      const now = Date.now();
      for (const member of announcement.members) {
        const leftAt = this.#left.get(member.host);
        if (leftAt !== undefined && now - leftAt < TOMBSTONE_MS) continue;
        if (member.host !== this.#self.host && !this.#members.has(member.host)) this.add(member);
      }
      return;
    }
    if (announcement.host === this.#self.host) return;
    if (announcement.op === 'join') {
      this.add(announcement);
      return;
    }
    this.remove(announcement.host);
    this.#rememberLeft(announcement.host);
  }

  #rememberLeft(host: string): void {
    this.#left.delete(host);
    this.#left.set(host, Date.now());
    for (const oldest of this.#left.keys()) {
      if (this.#left.size <= MAX_TOMBSTONES) break;
      this.#left.delete(oldest);
    }
  }

  /** Sends this node's member list to a peer that has just connected. */
  #syncWith(host: string): void {
    const members = [...this.#members.values()].map(({ host: h, name }) => ({ host: h, name }));
    this.#grid
      .connection(host)
      .request(MEMBERSHIP_HANDLER, encode({ op: 'sync', members }), { timeoutMs: ANNOUNCE_TIMEOUT_MS })
      .catch((error: unknown) => {
        this.#logger.debug({ peer: host, error: (error as Error).message }, 'member list not sent');
      });
  }

  #track(host: string, name: string): void {
    this.#set({ host, name, self: false, state: 'connecting', since: Date.now() });
  }

  readonly #onGridState = (message: unknown): void => {
    const { local, remote, state } = message as { local: string; remote: string; state: ConnectionState };
    if (local !== this.#self.host) return;
    const member = this.#members.get(remote);
    if (member === undefined) return;
    const next: MemberState =
      state === 'connected' ? 'connected' : member.state === 'connecting' ? 'connecting' : 'disconnected';
    if (next === member.state) return;
    if (next === 'connected' && !this.#stop.signal.aborted) this.#syncWith(remote);
    this.#set({
      ...member,
      state: next,
      since: Date.now(),
      ...(next === 'connected' ? {} : { rttMs: undefined }),
    });
  };

  #set(member: Member): void {
    this.#members.set(member.host, member);
    this.#publisher.publish(MEMBERS_TOPIC, [putEvent(member.host, member)]);
    this.#onChange?.();
  }
}

function encode(announcement: Announcement): Uint8Array {
  return Buffer.from(JSON.stringify(announcement));
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

/**
 * The request body as text, or undefined past `max` bytes: reading stops there, and the caller
 * answers before the socket is closed (destroying it first would lose the answer).
 */
function readBounded(request: http.IncomingMessage, max: number): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > max) {
        request.off('data', onData);
        request.pause();
        resolve(undefined);
        return;
      }
      chunks.push(chunk);
    };
    request.on('data', onData);
    request.once('end', () => {
      resolve(Buffer.concat(chunks).toString('utf8'));
    });
    request.once('error', reject);
  });
}

/** The answer's body as text; throws past `max` bytes (a seed must not fill this node's memory). */
async function readAnswer(response: Response, max: number): Promise<string> {
  const declared = Number(response.headers.get('content-length') ?? '0');
  if (declared > max) throw new Error(`the answer is ${declared} bytes, more than ${max}`);
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (response.body === null) return '';
  for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
    size += chunk.byteLength;
    if (size > max) throw new Error(`the answer is more than ${max} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}
