// Waiting for a connection ends: at its deadline, when its signal aborts, and (on the
// dialling side) as soon as the peer refuses the handshake for a reason that needs an
// operator, rather than while the dial loop redials forever. Each refusal reason is logged
// once, not at every redial.

import assert from 'node:assert/strict';
import diagnosticsChannel from 'node:diagnostics_channel';
import { describe, test, type TestContext } from 'node:test';

import { WebSocketServer, type WebSocket } from 'ws';

import type { ConnectionState } from '../../src/grid/grid-connection.ts';
import { shouldDial } from '../../src/grid/dial-direction.ts';
import { HandshakeRefusedError, type RefusalReason } from '../../src/grid/errors.ts';
import { Manager } from '../../src/grid/manager.ts';
import { GRID_PATH } from '../../src/grid/protocol.ts';
import { callScope } from '../../src/internal/deadline.ts';
import { CancelledError, ClosedError, DeadlineExceededError } from '../../src/internal/errors.ts';
import { FakeClock } from '../../src/internal/fake-clock.ts';

import { bindLoopback, hostDialledBy, hostDialling, playAcceptor } from './raw-peer.ts';
import { RecordingLogger } from './recording-logger.ts';
import { watch } from './reliability-harness.ts';

const SECRET = 'weft-wait-for-connect-secret';
/** Every test here ends on socket events; this only turns a hang into a failure. */
const BOUNDED = { timeout: 15_000 };
/** The redial delay with `random: () => 0.5` and the default 1–2 s range. */
const REDIAL_MS = 1_500;

/** Reasons a dialler cannot get past without an operator. */
const TERMINAL: readonly RefusalReason[] = [
  'bad-token',
  'unknown-host',
  'wrong-direction',
  'version-mismatch',
  'bad-handshake',
];

interface StateMessage {
  readonly local: string;
  readonly remote: string;
  readonly state: ConnectionState;
  readonly error?: unknown;
}

/** Waits for `weft:grid:connection-state` messages of `local`, in order. */
function watchStates(t: TestContext, local: string): { next(state: ConnectionState): Promise<StateMessage> } {
  const seen: StateMessage[] = [];
  let waiter: { state: ConnectionState; resolve: (m: StateMessage) => void } | undefined;
  const listener = (raw: unknown): void => {
    const message = raw as StateMessage;
    if (message.local !== local) return;
    seen.push(message);
    if (waiter !== undefined && message.state === waiter.state) {
      seen.length = 0;
      const { resolve } = waiter;
      waiter = undefined;
      resolve(message);
    }
  };
  diagnosticsChannel.subscribe('weft:grid:connection-state', listener);
  t.after(() => {
    diagnosticsChannel.unsubscribe('weft:grid:connection-state', listener);
  });
  return {
    next(state) {
      const i = seen.findIndex((m) => m.state === state);
      if (i >= 0) {
        const [found] = seen.splice(0, i + 1).slice(-1);
        return Promise.resolve(found as StateMessage);
      }
      seen.length = 0;
      return new Promise((resolve) => {
        waiter = { state, resolve };
      });
    },
  };
}

type Answer = { readonly refuse: RefusalReason } | 'accept';

interface FakeAcceptor {
  readonly host: string;
  /** How the next handshakes are answered. */
  answer: Answer;
  /** Drops every socket it holds, as a crashed peer would. */
  drop(): void;
}

/**
 * A peer that plays the acceptor's side of the handshake by hand: a Challenge, then a
 * ConnectResponse that refuses with `answer`'s reason, or accepts with a valid token.
 */
async function fakeAcceptor(t: TestContext, clock: FakeClock, dialler: string): Promise<FakeAcceptor> {
  const { server, host } = await bindLoopback(t, { wanted: (candidate) => shouldDial(dialler, candidate) });
  const wss = new WebSocketServer({ server, path: GRID_PATH });
  t.after(() => {
    for (const client of wss.clients) client.terminate();
    wss.close();
  });
  const acceptor: FakeAcceptor = {
    host,
    answer: 'accept',
    drop() {
      for (const client of wss.clients) client.terminate();
    },
  };
  wss.on('connection', (ws) => {
    ws.on('error', () => undefined);
    answer(ws, clock, host, () => acceptor.answer);
  });
  return acceptor;
}

function answer(ws: WebSocket, clock: FakeClock, host: string, how: () => Answer): void {
  const respond = playAcceptor(ws, clock, host, SECRET);
  ws.once('message', (data: Buffer) => {
    const chosen = how();
    ws.send(respond(data, chosen === 'accept' ? undefined : chosen.refuse), () => {
      if (chosen !== 'accept') ws.terminate();
    });
  });
}

interface Dialler {
  readonly manager: Manager;
  readonly local: string;
  readonly log: RecordingLogger;
}

/** A node that only dials (it listens nowhere) to `remote`. */
function dialler(t: TestContext, clock: FakeClock, local: string, remote: string): Dialler {
  const log = new RecordingLogger();
  const manager = new Manager({
    local,
    hosts: [local, remote],
    auth: { secret: SECRET },
    clock,
    random: () => 0.5,
    logger: log,
  });
  t.after(() => manager.close());
  return { manager, local, log };
}

const DIALLER = 'http://127.0.0.1:1';

describe('waitForConnect: deadline and cancel', () => {
  test(
    'rejects with DeadlineExceededError at timeoutMs on the injected clock, not before, on either side',
    BOUNDED,
    async (t) => {
      const clock = new FakeClock();
      // An accepting node whose peer never dials, and a dialling node whose peer never answers.
      const accepting = hostDialling(DIALLER);
      const acceptor = new Manager({
        local: DIALLER,
        hosts: [DIALLER, accepting],
        auth: { secret: SECRET },
        clock,
      });
      t.after(() => acceptor.close());
      const unreachable = hostDialledBy(DIALLER);
      const { manager } = dialler(t, clock, DIALLER, unreachable);
      manager.start();
      for (const connection of [acceptor.connection(accepting), manager.connection(unreachable)]) {
        const waiting = watch(connection.waitForConnect({ timeoutMs: 5_000 }));
        await clock.advanceAsync(4_999);
        assert.equal(waiting.settled, false, `${connection.dials ? 'dialler' : 'acceptor'}: settled early`);
        await clock.advanceAsync(1);
        await waiting.promise.catch(() => undefined);
        assert.ok(waiting.error instanceof DeadlineExceededError, String(waiting.error));
        assert.equal(waiting.error.timeoutMs, 5_000);
      }
    },
  );

  test(
    'rejects with a CancelledError caused by the signal’s reason, at once if it aborted already',
    BOUNDED,
    async (t) => {
      const clock = new FakeClock();
      const unreachable = hostDialledBy(DIALLER);
      const { manager } = dialler(t, clock, DIALLER, unreachable);
      const connection = manager.connection(unreachable);
      const reason = new Error('operator gave up');

      const controller = new AbortController();
      const waiting = assert.rejects(connection.waitForConnect({ signal: controller.signal }), (error) => {
        assert.ok(error instanceof CancelledError, String(error));
        assert.equal(error.cause, reason);
        return true;
      });
      controller.abort(reason);
      await waiting;

      await assert.rejects(connection.waitForConnect({ signal: AbortSignal.abort(reason) }), (error) => {
        assert.ok(error instanceof CancelledError);
        assert.equal(error.cause, reason);
        return true;
      });

      // A signal carrying a deadline (made by another Weft call) ends it as a deadline.
      const scope = callScope(clock, { timeoutMs: 2_000 });
      t.after(() => {
        scope.dispose();
      });
      const inherited = assert.rejects(
        connection.waitForConnect({ signal: scope.signal }),
        DeadlineExceededError,
      );
      await clock.advanceAsync(2_000);
      await inherited;
    },
  );

  test(
    'a connection that is shut down rejects with ClosedError, and a wait in progress too',
    BOUNDED,
    async (t) => {
      const clock = new FakeClock();
      const unreachable = hostDialledBy(DIALLER);
      const { manager } = dialler(t, clock, DIALLER, unreachable);
      const waiting = assert.rejects(manager.connection(unreachable).waitForConnect(), ClosedError);
      await manager.close();
      await waiting;
      await assert.rejects(manager.connection(unreachable).waitForConnect(), ClosedError);
    },
  );
});

describe('waitForConnect: a peer that refuses the handshake', () => {
  for (const reason of TERMINAL) {
    test(
      `a refusal for ${reason} rejects the wait with that HandshakeRefusedError instead of waiting forever`,
      BOUNDED,
      async (t) => {
        const clock = new FakeClock();
        const peer = await fakeAcceptor(t, clock, DIALLER);
        peer.answer = { refuse: reason };
        const { manager } = dialler(t, clock, DIALLER, peer.host);
        const connection = manager.connection(peer.host);
        // No deadline: only the refusal can end this wait.
        const waiting = connection.waitForConnect();
        manager.start();
        async function callerWaiting(): Promise<void> {
          await waiting;
        }
        await assert.rejects(callerWaiting(), (error) => {
          assert.ok(error instanceof HandshakeRefusedError, String(error));
          assert.equal(error.reason, reason);
          assert.equal(error.retryable, false);
          assert.match(String(error.stack), /callerWaiting/, 'the stack leads back to the waiting caller');
          return true;
        });
      },
    );
  }

  test(
    'a refusal that may clear up by itself (clock-skew, shutting-down) keeps the wait going',
    BOUNDED,
    async (t) => {
      const clock = new FakeClock();
      const peer = await fakeAcceptor(t, clock, DIALLER);
      peer.answer = { refuse: 'shutting-down' };
      const states = watchStates(t, DIALLER);
      const { manager } = dialler(t, clock, DIALLER, peer.host);
      const connection = manager.connection(peer.host);
      const waiting = watch(connection.waitForConnect());
      manager.start();
      await states.next('connection-error');
      peer.answer = { refuse: 'clock-skew' };
      await clock.advanceAsync(REDIAL_MS);
      await states.next('connection-error');
      assert.equal(waiting.settled, false);
      // The peer comes back: the same wait resolves.
      peer.answer = 'accept';
      await clock.advanceAsync(REDIAL_MS);
      await waiting.promise;
      assert.equal(connection.state(), 'connected');
    },
  );

  test(
    'the dial loop keeps redialling after a terminal refusal: a wait again learns the next dial’s outcome, refused or accepted',
    BOUNDED,
    async (t) => {
      const clock = new FakeClock();
      const peer = await fakeAcceptor(t, clock, DIALLER);
      peer.answer = { refuse: 'bad-token' };
      const { manager } = dialler(t, clock, DIALLER, peer.host);
      const connection = manager.connection(peer.host);
      manager.start();
      await assert.rejects(connection.waitForConnect(), HandshakeRefusedError);
      assert.equal(connection.state(), 'connection-error');
      // Waiting again does not replay the old refusal at once (a retry loop would spin): it
      // waits for the next dial, one redial delay away.
      const refusedAgain = watch(connection.waitForConnect());
      await clock.advanceAsync(REDIAL_MS - 1);
      assert.equal(refusedAgain.settled, false);
      await clock.advanceAsync(1);
      await refusedAgain.promise.catch(() => undefined);
      assert.ok(refusedAgain.error instanceof HandshakeRefusedError, String(refusedAgain.error));
      // The operator fixes the peer; the next redial gets in.
      peer.answer = 'accept';
      const accepted = connection.waitForConnect({ timeoutMs: 10_000 });
      await clock.advanceAsync(REDIAL_MS);
      await accepted;
    },
  );

  test(
    'each refusal reason is logged once per connection, not at every redial, and again after the link was up',
    BOUNDED,
    async (t) => {
      const clock = new FakeClock();
      const peer = await fakeAcceptor(t, clock, DIALLER);
      const states = watchStates(t, DIALLER);
      const { manager, log } = dialler(t, clock, DIALLER, peer.host);
      const refusals = (): string[] =>
        log.lines.map((line) => `${line.level} ${String(line.details?.['reason'])}`);
      const refuseTimes = async (reason: RefusalReason, times: number): Promise<void> => {
        peer.answer = { refuse: reason };
        for (let i = 0; i < times; i++) {
          await clock.advanceAsync(REDIAL_MS);
          await states.next('connection-error');
        }
      };
      peer.answer = { refuse: 'bad-token' };
      manager.start();
      await states.next('connection-error');
      await refuseTimes('bad-token', 4);
      assert.deepEqual(refusals(), ['error bad-token']);
      assert.match(log.lines[0]?.message ?? '', /refused \(bad-token\)/);
      assert.equal(log.lines[0]?.details?.['remote'], peer.host);
      await refuseTimes('clock-skew', 3);
      await refuseTimes('bad-token', 2);
      assert.deepEqual(refusals(), ['error bad-token', 'warn clock-skew']);
      // Up once: the next refusal is news again.
      peer.answer = 'accept';
      await clock.advanceAsync(REDIAL_MS);
      await states.next('connected');
      const connection = manager.connection(peer.host);
      // The fake peer drops the link; the redial is refused.
      peer.answer = { refuse: 'bad-token' };
      await connection.waitForConnect();
      const down = states.next('connection-error');
      peer.drop();
      await down;
      await refuseTimes('bad-token', 2);
      assert.deepEqual(refusals(), ['error bad-token', 'warn clock-skew', 'error bad-token']);
    },
  );
});

describe('waitForConnect: managers that cannot agree', () => {
  test(
    'with different secrets the dialler’s wait rejects with bad-token; the acceptor’s can only time out',
    BOUNDED,
    async (t) => {
      const clock = new FakeClock();
      const bound = await Promise.all([bindLoopback(t), bindLoopback(t)]);
      const hosts = bound.map(({ host }) => host);
      const managers = bound.map(({ server, host: local }, i) => {
        const manager = new Manager({
          local,
          hosts,
          auth: { secret: `${SECRET}-${i}` },
          clock,
          random: () => 0.5,
          logger: new RecordingLogger(),
        });
        t.after(() => manager.close());
        manager.attach(server);
        return manager;
      });
      const [a, b] = managers as [Manager, Manager];
      const [aHost, bHost] = hosts as [string, string];
      const [diallerSide, acceptorSide] = shouldDial(aHost, bHost)
        ? [a.connection(bHost), b.connection(aHost)]
        : [b.connection(aHost), a.connection(bHost)];
      const acceptorWait = assert.rejects(
        acceptorSide.waitForConnect({ timeoutMs: 30_000 }),
        DeadlineExceededError,
      );
      await assert.rejects(
        diallerSide.waitForConnect(),
        (error) => error instanceof HandshakeRefusedError && error.reason === 'bad-token',
      );
      await clock.advanceAsync(30_000);
      await acceptorWait;
    },
  );
});
