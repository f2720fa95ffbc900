import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';

import {
  defineSingle,
  RemoteError,
  subrouteId,
  UnknownHandlerError,
  type GridConnection,
} from '../../src/grid/index.ts';
import { deadlineOf } from '../../src/internal/deadline.ts';
import { CapacityExceededError, ConfigError, DeadlineExceededError } from '../../src/internal/errors.ts';
import { FakeClock } from '../../src/internal/fake-clock.ts';
import { TestGrid } from '../../src/testing/index.ts';

const ECHO = 64;
const FAIL = 65;

async function grid(t: TestContext, nodes = 2, clock = new FakeClock()): Promise<TestGrid> {
  const g = await TestGrid.start(nodes, { clock });
  t.after(() => g.close());
  for (const manager of g.managers) {
    manager.registerSingle(ECHO, (payload) => payload);
  }
  await g.waitAllConnected();
  return g;
}

describe('single requests', () => {
  test('echo keeps the bytes exactly, for empty, small and 1 MiB payloads', async (t) => {
    const g = await grid(t);
    const connection = g.connection(0, 1);
    for (const size of [0, 1, 512, 64 * 1024, 1024 * 1024]) {
      const payload = Buffer.alloc(size, size % 251);
      const reply = await connection.request(ECHO, payload);
      assert.ok(reply !== undefined, `${size} B came back absent`);
      assert.equal(Buffer.compare(Buffer.from(reply), payload), 0, `${size} B echo differs`);
    }
  });

  test('an absent payload and an empty one stay different', async (t) => {
    const g = await grid(t);
    const connection = g.connection(0, 1);
    assert.equal(await connection.request(ECHO, undefined), undefined);
    const empty = await connection.request(ECHO, new Uint8Array(0));
    assert.ok(empty !== undefined);
    assert.equal(empty.length, 0);
  });

  test('requests work in both directions of a pair, whichever side dialled', async (t) => {
    const g = await grid(t, 3);
    for (const [from, to] of [
      [0, 1],
      [1, 0],
      [0, 2],
      [2, 0],
      [1, 2],
      [2, 1],
    ] as const) {
      const reply = await g.connection(from, to).request(ECHO, Buffer.from(`${from}->${to}`));
      assert.equal(Buffer.from(reply ?? []).toString(), `${from}->${to}`);
    }
  });

  test('a handler error reaches the caller as a RemoteError with its code, retryability and the caller’s stack', async (t) => {
    const g = await grid(t);
    g.manager(1).registerSingle(FAIL, (payload) => {
      if (payload?.[0] === 1) throw new CapacityExceededError('downstream pool', 8);
      throw new Error('disk on fire');
    });
    const connection = g.connection(0, 1);
    // Awaited, not returned: async stack traces follow awaits.
    async function callThatFails(): Promise<unknown> {
      const reply = await connection.request(FAIL, Buffer.from([0]));
      return reply;
    }
    await assert.rejects(callThatFails(), (error) => {
      assert.ok(error instanceof RemoteError);
      assert.equal(error.code, 'WEFT_GRID_REMOTE');
      assert.equal(error.message, 'disk on fire');
      assert.equal(error.retryable, false);
      assert.match(String(error.stack), /callThatFails/, 'the stack leads back to the calling function');
      return true;
    });
    await assert.rejects(connection.request(FAIL, Buffer.from([1])), (error) => {
      assert.ok(error instanceof RemoteError);
      assert.equal(error.code, CapacityExceededError.code, 'the remote error keeps its identity');
      assert.equal(error.retryable, true);
      return true;
    });
  });

  test('an unknown handler fails fast, without waiting for the deadline', async (t) => {
    // The clock never moves: only an immediate answer can settle this call.
    const g = await grid(t);
    await assert.rejects(g.connection(0, 1).request(200, undefined, { timeoutMs: 60_000 }), (error) => {
      assert.ok(error instanceof RemoteError);
      assert.equal(error.code, UnknownHandlerError.code);
      return true;
    });
  });

  test('the handler sees the caller’s deadline, and a nested call inherits what is left of it', async (t) => {
    const clock = new FakeClock();
    const g = await grid(t, 3, clock);
    const NESTED = 66;
    const seen: number[] = [];
    g.manager(2).registerSingle(ECHO + 10, (_payload, context) => {
      seen.push(deadlineOf(context.signal) - clock.now());
      return undefined;
    });
    g.manager(1).registerSingle(NESTED, async (_payload, context) => {
      seen.push(deadlineOf(context.signal) - clock.now());
      // A longer timeout of its own cannot extend the caller's deadline.
      await g.connection(1, 2).request(ECHO + 10, undefined, { signal: context.signal, timeoutMs: 600_000 });
      return undefined;
    });
    await g.connection(0, 1).request(NESTED, undefined, { timeoutMs: 5_000 });
    assert.deepEqual(seen, [5_000, 5_000]);
  });

  test('the default deadline is 60 s', async (t) => {
    const clock = new FakeClock();
    const g = await grid(t, 2, clock);
    let remaining = 0;
    g.manager(1).registerSingle(FAIL, (_payload, context) => {
      remaining = deadlineOf(context.signal) - clock.now();
      return undefined;
    });
    await g.connection(0, 1).request(FAIL, undefined);
    assert.equal(remaining, 60_000);
  });

  test('a deadline under 1 ms fails locally', async (t) => {
    const g = await grid(t);
    let called = false;
    g.manager(1).registerSingle(FAIL, () => {
      called = true;
      return undefined;
    });
    await assert.rejects(
      g.connection(0, 1).request(FAIL, undefined, { timeoutMs: 0.5 }),
      DeadlineExceededError,
    );
    await g.connection(0, 1).request(ECHO, undefined);
    assert.equal(called, false);
  });

  test('subroutes reach the handler registered for that route only', async (t) => {
    const g = await grid(t);
    const DISK = 70;
    for (const route of ['disk-a', 'disk-b']) {
      g.manager(1).registerSingle(DISK, () => Buffer.from(route), { subroute: route });
    }
    const connection = g.connection(0, 1);
    for (const route of ['disk-a', 'disk-b']) {
      const reply = await connection.request(DISK, undefined, { subroute: subrouteId(DISK, route) });
      assert.equal(Buffer.from(reply ?? []).toString(), route);
    }
    await assert.rejects(connection.request(DISK, undefined), (e) => e instanceof RemoteError);
    await assert.rejects(
      connection.request(DISK, undefined, { subroute: subrouteId(DISK, 'disk-c') }),
      (e) => e instanceof RemoteError && e.code === UnknownHandlerError.code,
    );
  });

  test('ids below 64 are reserved for Weft modules, and an id is registered once', async (t) => {
    const g = await grid(t);
    assert.throws(() => {
      g.manager(0).registerSingle(5, () => undefined);
    }, ConfigError);
    assert.throws(() => {
      g.manager(0).registerSingle(256, () => undefined);
    }, ConfigError);
    g.manager(0).registerSingle(5, () => undefined, { reserved: true });
    assert.throws(() => {
      g.manager(0).registerSingle(ECHO, () => undefined);
    }, /already registered/);
  });
});

describe('typed single handlers', () => {
  interface Sum {
    readonly numbers: readonly number[];
  }

  test('one definition registers the handler and calls it', async (t) => {
    const g = await grid(t);
    const sum = defineSingle<Sum, { total: number }>(80);
    sum.register(g.manager(1), (request) => ({ total: request.numbers.reduce((a, b) => a + b, 0) }));
    assert.deepEqual(await sum.call(g.connection(0, 1), { numbers: [1, 2, 39] }), { total: 42 });
  });

  test('a payload that is not MessagePack is refused with a clear remote error', async (t) => {
    const g = await grid(t);
    const typed = defineSingle<Sum, number>(81);
    typed.register(g.manager(1), () => 0);
    // An array header announcing two items, followed by one.
    const garbage = Buffer.from([0x92, 0x01]);
    await assert.rejects(
      (g.connection(0, 1) satisfies GridConnection).request(81, garbage),
      (e) =>
        e instanceof RemoteError &&
        e.code === 'WEFT_GRID_PROTOCOL' &&
        /not valid MessagePack/.test(e.message),
    );
  });
});

describe('handler mistakes never take the node down', () => {
  test('a handler that throws something unprintable still answers the caller', async (t) => {
    const g = await grid(t);
    g.manager(1).registerSingle(FAIL, () => {
      throw Object.create(null) as Error;
    });
    g.manager(1).registerSingle(FAIL + 1, () => Promise.reject(Object.create(null) as Error));
    for (const handler of [FAIL, FAIL + 1]) {
      await assert.rejects(
        g.connection(0, 1).request(handler, undefined),
        (e) => e instanceof RemoteError && e.message === 'unprintable error',
      );
    }
    assert.equal(g.connection(0, 1).state(), 'connected');
  });

  test('a handler that returns something other than bytes gets the caller a clear error', async (t) => {
    const g = await grid(t);
    g.manager(1).registerSingle(FAIL, () => 'a string' as unknown as Uint8Array);
    await assert.rejects(
      g.connection(0, 1).request(FAIL, undefined),
      (e) => e instanceof RemoteError && /returned string, not bytes/.test(e.message),
    );
  });
});
