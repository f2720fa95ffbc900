// What a caller learns when a handler fails, and what the serving node logs: any thrown
// object keeps its own code and retryability across the wire (within bounds a hostile value
// cannot break), and each failure is logged once on the serving side, unless the caller
// caused it.

import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test, type TestContext } from 'node:test';

import {
  defineSingle,
  defineStream,
  Manager,
  ProtocolError,
  RemoteError,
  type GridConnection,
  type GridStream,
} from '../../src/grid/index.ts';
import type { Logger } from '../../src/grid/logger.ts';
import {
  CancelledError,
  CapacityExceededError,
  ConfigError,
  DeadlineExceededError,
} from '../../src/internal/errors.ts';
import { FakeClock } from '../../src/internal/fake-clock.ts';

import { RecordingLogger } from './recording-logger.ts';

const FAIL = 64;
const FAIL_STREAM = 65;
const HANG = 66;
const HANG_STREAM = 67;
const TYPED = 68;
const TYPED_STREAM = 69;
const ECHO = 70;

interface LoggedPair {
  readonly clock: FakeClock;
  /** The calling node's connection to the serving node. */
  readonly caller: GridConnection;
  /** The serving node: register handlers here. */
  readonly server: Manager;
  /** What the serving node logged. */
  readonly serverLog: RecordingLogger;
  /** What the calling node logged. */
  readonly callerLog: RecordingLogger;
}

/** Two connected nodes on loopback, each with a recording logger, closed after the test. */
async function loggedPair(t: TestContext): Promise<LoggedPair> {
  const clock = new FakeClock();
  const servers = await Promise.all(
    [0, 1].map(async () => {
      const server = http.createServer((_req, res) => res.writeHead(404).end());
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      return server;
    }),
  );
  const hosts = servers.map((s) => `http://127.0.0.1:${(s.address() as AddressInfo).port}`);
  const logs = [new RecordingLogger(), new RecordingLogger()];
  const managers = hosts.map(
    (local, i) =>
      new Manager({ local, hosts, auth: { secret: 'weft-handler-errors-secret' }, clock, logger: logs[i] }),
  );
  t.after(async () => {
    await Promise.all(managers.map((m) => m.close()));
    await Promise.all(
      servers.map(
        (server) =>
          new Promise<void>((resolve) => {
            server.close(() => {
              resolve();
            });
            server.closeAllConnections();
          }),
      ),
    );
  });
  managers.forEach((manager, i) => {
    manager.attach(servers[i] as http.Server);
    manager.registerSingle(ECHO, (payload) => payload);
  });
  const [caller, server] = managers as [Manager, Manager];
  await Promise.all([
    caller.connection(hosts[1] ?? '').waitForConnect(),
    server.connection(hosts[0] ?? '').waitForConnect(),
  ]);
  return {
    clock,
    caller: caller.connection(hosts[1] ?? ''),
    server,
    serverLog: logs[1] as RecordingLogger,
    callerLog: logs[0] as RecordingLogger,
  };
}

/** The request's failure, as the caller sees it. */
async function remoteFailure(
  caller: GridConnection,
  handler: number,
  payload?: Uint8Array,
): Promise<RemoteError> {
  try {
    await caller.request(handler, payload);
  } catch (error) {
    assert.ok(error instanceof RemoteError, `expected a RemoteError, got ${String(error)}`);
    return error;
  }
  assert.fail('the request succeeded');
}

async function streamFailure(stream: AsyncIterable<unknown>): Promise<RemoteError> {
  try {
    for await (const item of stream) assert.fail(`unexpected item ${String(item)}`);
  } catch (error) {
    assert.ok(error instanceof RemoteError, `expected a RemoteError, got ${String(error)}`);
    return error;
  }
  assert.fail('the stream ended without an error');
}

/** Lets frames in flight arrive: an answered request queues behind them on the one socket. */
async function roundTrip(caller: GridConnection): Promise<void> {
  await caller.request(ECHO, undefined);
}

/** Thrown values whose `code` and `retryable` should survive, with what the caller should see. */
const keeps: readonly {
  readonly what: string;
  readonly thrown: () => unknown;
  readonly code: string;
  readonly retryable: boolean;
}[] = [
  {
    what: 'a Node system error',
    thrown: () => Object.assign(new Error('connect ECONNREFUSED 10.0.0.9:5432'), { code: 'ECONNREFUSED' }),
    code: 'ECONNREFUSED',
    retryable: false,
  },
  {
    what: 'an application error class with retryable true',
    thrown: () => {
      class BusyError extends Error {
        readonly code = 'APP_BUSY';
        readonly retryable = true;
      }
      return new BusyError('try again later');
    },
    code: 'APP_BUSY',
    retryable: true,
  },
  {
    what: 'a plain object',
    thrown: () => ({ code: 'ERR_QUOTA.exceeded:v2', message: 'quota', retryable: false }),
    code: 'ERR_QUOTA.exceeded:v2',
    retryable: false,
  },
  {
    what: 'a Weft error',
    thrown: () => new CapacityExceededError('downstream pool', 8),
    code: CapacityExceededError.code,
    retryable: true,
  },
  {
    what: 'a code of exactly 64 characters',
    thrown: () => ({ code: 'C'.repeat(64), message: 'long' }),
    code: 'C'.repeat(64),
    retryable: false,
  },
  {
    what: 'a boolean retryable beside a code that is refused',
    thrown: () => ({ code: 'not a code', retryable: true }),
    code: RemoteError.code,
    retryable: true,
  },
];

/** Thrown values whose code or retryability must not be trusted. */
const hostile: readonly {
  readonly what: string;
  readonly thrown: () => unknown;
}[] = [
  { what: 'a code of 65 characters', thrown: () => ({ code: 'C'.repeat(65), message: 'too long' }) },
  { what: 'a 1 MiB code', thrown: () => ({ code: 'X'.repeat(1024 * 1024) }) },
  { what: 'an empty code', thrown: () => ({ code: '' }) },
  { what: 'a code with a newline', thrown: () => ({ code: 'OK\nFAKE log line' }) },
  { what: 'a code with a space', thrown: () => ({ code: 'NOT OK' }) },
  { what: 'a code with an escape sequence', thrown: () => ({ code: '\u001b[2J' }) },
  { what: 'a code outside ASCII', thrown: () => ({ code: 'ÉCHEC' }) },
  { what: 'a numeric code', thrown: () => ({ code: 404, retryable: 1 }) },
  {
    what: 'a code that is an object',
    thrown: () => ({ code: { toString: () => 'SNEAKY' }, retryable: 'true' }),
  },
  {
    what: 'getters that throw',
    thrown: () => ({
      get code(): string {
        throw new Error('no code for you');
      },
      get retryable(): boolean {
        throw new Error('nor this');
      },
      message: 'getters',
    }),
  },
  {
    what: 'a Proxy that throws on every read',
    thrown: () =>
      new Proxy(
        {},
        {
          get() {
            throw new Error('trap');
          },
          getPrototypeOf() {
            throw new Error('trap');
          },
        },
      ),
  },
  { what: 'a string', thrown: () => 'just a string' },
  { what: 'undefined', thrown: () => undefined },
  { what: 'null', thrown: () => null },
];

describe('a handler error keeps its code and retryability', () => {
  test('any thrown object with a string code and a boolean retryable reaches the caller with both', async (t) => {
    const { caller, server } = await loggedPair(t);
    let next = 0;
    server.registerSingle(FAIL, () => {
      throw (keeps[next] ?? assert.fail()).thrown();
    });
    for (const [i, expected] of keeps.entries()) {
      next = i;
      const error = await remoteFailure(caller, FAIL);
      assert.equal(error.code, expected.code, expected.what);
      assert.equal(error.retryable, expected.retryable, expected.what);
    }
  });

  test('the same holds for a handler that rejects instead of throwing', async (t) => {
    const { caller, server } = await loggedPair(t);
    server.registerSingle(FAIL, () =>
      Promise.reject(Object.assign(new Error('gone'), { code: 'ENOENT', retryable: true })),
    );
    const error = await remoteFailure(caller, FAIL);
    assert.deepEqual([error.code, error.retryable, error.message], ['ENOENT', true, 'gone']);
  });

  test('a code that is not 1 to 64 printable ASCII characters, or a retryable that is not true, falls back to WEFT_GRID_REMOTE, terminal', async (t) => {
    const { caller, server } = await loggedPair(t);
    let next = 0;
    server.registerSingle(FAIL, () => {
      throw (hostile[next] ?? assert.fail()).thrown();
    });
    for (const [i, { what }] of hostile.entries()) {
      next = i;
      const error = await remoteFailure(caller, FAIL);
      assert.equal(error.code, RemoteError.code, what);
      assert.equal(error.retryable, false, what);
    }
    // The connection is none the worse for it.
    assert.equal(caller.state(), 'connected');
    await roundTrip(caller);
  });

  test('a stream handler’s error keeps its code and retryability too, and a hostile one falls back', async (t) => {
    const { caller, server } = await loggedPair(t);
    let thrown: () => unknown = () => undefined;
    server.registerStream(FAIL_STREAM, {
      inCapacity: 0,
      handle: async ({ send }) => {
        await send(Buffer.from('one item first'));
        throw thrown();
      },
    });
    const open = (): GridStream => caller.openStream(FAIL_STREAM, { outCapacity: 4 });
    for (const expected of keeps) {
      thrown = expected.thrown;
      const stream = open();
      const first = await stream[Symbol.asyncIterator]().next();
      assert.equal(Buffer.from(first.value ?? []).toString(), 'one item first');
      const error = await streamFailure(stream);
      assert.equal(error.code, expected.code, expected.what);
      assert.equal(error.retryable, expected.retryable, expected.what);
    }
    for (const { what, thrown: value } of hostile) {
      thrown = value;
      const stream = open();
      await stream[Symbol.asyncIterator]().next();
      const error = await streamFailure(stream);
      assert.equal(error.code, RemoteError.code, what);
      assert.equal(error.retryable, false, what);
    }
  });
});

describe('the serving node logs a handler’s failure', () => {
  test('once per failed request, with the handler id, the subroute and the error', async (t) => {
    const { caller, server, serverLog, callerLog } = await loggedPair(t);
    const thrown = Object.assign(new Error('disk on fire'), { code: 'EIO' });
    server.registerSingle(FAIL, () => {
      throw thrown;
    });
    server.registerSingle(FAIL, async () => Promise.reject(thrown), { subroute: 'disk/7' });
    const onDisk = defineSingle<null, null>(FAIL, { subroute: 'disk/7' });

    await remoteFailure(caller, FAIL);
    assert.equal(serverLog.lines.length, 1);
    const line = serverLog.lines[0];
    assert.ok(line !== undefined);
    assert.equal(line.level, 'error');
    assert.match(line.message, /handler 64 failed/);
    assert.equal(line.details?.['handler'], FAIL);
    assert.equal(line.details['error'], thrown);
    assert.equal(line.details['subroute'], undefined);

    await assert.rejects(onDisk.call(caller, null), RemoteError);
    assert.equal(serverLog.lines.length, 2);
    assert.match(serverLog.lines[1]?.message ?? '', /handler 64 on subroute disk\/7 failed/);
    assert.equal(serverLog.lines[1]?.details?.['subroute'], 'disk/7');

    assert.deepEqual(callerLog.lines, [], 'the calling node logs nothing: its caller got the error');
  });

  test('once per failed stream, with the handler id', async (t) => {
    const { caller, server, serverLog } = await loggedPair(t);
    server.registerStream(FAIL_STREAM, {
      inCapacity: 0,
      handle: () => Promise.reject(new Error('stream broke')),
    });
    await streamFailure(caller.openStream(FAIL_STREAM));
    await roundTrip(caller);
    assert.equal(serverLog.lines.length, 1);
    assert.match(serverLog.lines[0]?.message ?? '', /stream handler 65 failed/);
    assert.equal(serverLog.lines[0]?.details?.['handler'], FAIL_STREAM);
  });

  test('not when the caller caused it: its cancel, its deadline, a payload that does not decode', async (t) => {
    const { clock, caller, server, serverLog } = await loggedPair(t);
    // Handlers that fail because their signal aborted, as a well-written handler does.
    server.registerSingle(HANG, (_payload, { signal }) => abortion(signal));
    server.registerStream(HANG_STREAM, { inCapacity: 0, handle: ({ signal }) => abortion(signal) });
    const typed = defineSingle<{ n: number }, number>(TYPED);
    typed.register(server, ({ n }) => n + 1);
    const typedStream = defineStream<{ n: number }, number, number>(TYPED_STREAM, { inCapacity: 2 });
    typedStream.register(server, async ({ params, requests, send }) => {
      for await (const request of requests) await send(request + params.n);
    });

    // Cancelled by the caller.
    const controller = new AbortController();
    const cancelled = caller.request(HANG, undefined, { signal: controller.signal });
    await roundTrip(caller);
    controller.abort(new Error('user went away'));
    await assert.rejects(cancelled, CancelledError);
    const stream = caller.openStream(HANG_STREAM);
    await roundTrip(caller);
    stream.cancel();
    // Past the caller's deadline.
    const late = assert.rejects(caller.request(HANG, undefined, { timeoutMs: 1_000 }), DeadlineExceededError);
    await roundTrip(caller);
    await clock.advanceAsync(1_000);
    await late;
    // Payloads that do not decode: the caller hears of them, the server need not.
    const bad = Buffer.from([0x92, 0x01]); // an array of two that holds one
    const badRequest = await remoteFailure(caller, TYPED, bad);
    assert.equal(badRequest.code, ProtocolError.code);
    const badParams = await streamFailure(caller.openStream(TYPED_STREAM, { initial: bad }));
    assert.equal(badParams.code, ProtocolError.code);
    const badItems = caller.openStream(TYPED_STREAM, { initial: Buffer.from([0x81, 0xa1, 0x6e, 0x01]) });
    await badItems.send(bad);
    assert.equal((await streamFailure(badItems)).code, ProtocolError.code);

    await roundTrip(caller);
    assert.deepEqual(serverLog.lines, []);
  });

  test('a typed handler’s own failure is logged', async (t) => {
    const { caller, server, serverLog } = await loggedPair(t);
    const typed = defineSingle<null, number>(TYPED);
    typed.register(server, () => {
      throw new TypeError('handler bug');
    });
    await assert.rejects(typed.call(caller, null), RemoteError);
    assert.equal(serverLog.lines.length, 1);
    assert.match(String(serverLog.lines[0]?.details?.['error']), /handler bug/);
  });

  test('a logger that throws does not stop the caller from getting the error', async (t) => {
    const { caller, server, serverLog } = await loggedPair(t);
    serverLog.error = () => {
      throw new Error('log sink is down');
    };
    server.registerSingle(FAIL, () => {
      throw Object.assign(new Error('boom'), { code: 'APP_BOOM' });
    });
    assert.equal((await remoteFailure(caller, FAIL)).code, 'APP_BOOM');
    await roundTrip(caller);
  });

  test('a logger without warn and error is refused at construction, naming the field', () => {
    for (const logger of [{}, { error: () => undefined }, null, 'console']) {
      assert.throws(
        () =>
          new Manager({
            local: 'http://127.0.0.1:1',
            hosts: ['http://127.0.0.1:1'],
            auth: { secret: 'weft-handler-errors-secret' },
            logger: logger as unknown as Logger,
          }),
        (error) => error instanceof ConfigError && error.field === 'grid.logger',
      );
    }
  });
});

/** Rejects with the signal's reason once it aborts. */
function abortion(signal: AbortSignal): Promise<never> {
  return new Promise((_resolve, reject) => {
    if (signal.aborted) reject(signal.reason as Error);
    else
      signal.addEventListener(
        'abort',
        () => {
          reject(signal.reason as Error);
        },
        { once: true },
      );
  });
}
