// The default codec of typed handlers claims only what the wire keeps: every documented type
// comes back as it went, and a value that would come back as something else (a Map as an
// object, a Set as an array…) is refused where it is sent, at compile time where the type
// says so and at run time whatever the type says.

import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';

import { defineSingle, defineStream, msgpackCodec, RemoteError, type Codec } from '../../src/grid/index.ts';
import { MAX_MSGPACK_DEPTH } from '../../src/grid/msgpack-value.ts';
import { FakeClock } from '../../src/internal/fake-clock.ts';
import { TestGrid } from '../../src/testing/index.ts';

const codec = msgpackCodec<unknown>();

function roundTrip(value: unknown): unknown {
  return codec.decode(codec.encode(value));
}

class Point {
  readonly x: number;
  readonly y: number;

  constructor(x: number, y: number) {
    this.x = x;
    this.y = y;
  }
}

/** Every kind of value docs/grid.md lists as surviving, each as it should arrive. */
const survivors: readonly { readonly what: string; readonly value: unknown; readonly arrives?: unknown }[] = [
  { what: 'null', value: null },
  { what: 'booleans', value: [true, false] },
  {
    what: 'numbers',
    value: [
      0,
      1,
      -1,
      255,
      256,
      65_536,
      2 ** 32,
      2 ** 40,
      Number.MAX_SAFE_INTEGER,
      -Number.MAX_SAFE_INTEGER,
      1.5,
      -0.1,
      1e300,
      Number.MIN_VALUE,
    ],
  },
  { what: 'NaN and the infinities', value: [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY] },
  { what: '-0, which arrives as 0', value: -0, arrives: 0 },
  { what: 'strings', value: ['', 'ascii', 'é 漢字 🧵', 'x'.repeat(70_000)] },
  { what: 'bigints within 64 bits', value: [0n, -1n, 2n ** 63n - 1n, -(2n ** 63n), 2n ** 64n - 1n] },
  {
    what: 'a Uint8Array, as a Buffer',
    value: Uint8Array.of(0, 1, 254, 255),
    arrives: Buffer.of(0, 1, 254, 255),
  },
  { what: 'an empty Uint8Array', value: new Uint8Array(0), arrives: Buffer.alloc(0) },
  { what: 'a Buffer', value: Buffer.from('bytes') },
  {
    what: 'a view into a larger buffer',
    value: Buffer.from('0123456789').subarray(3, 6),
    arrives: Buffer.from('345'),
  },
  {
    what: 'Dates, to the millisecond, before 1970 and far ahead',
    value: [new Date(1_767_225_600_123), new Date(-1), new Date(0), new Date(8.64e15), new Date(-8.64e15)],
  },
  { what: 'nested arrays and objects', value: { a: [1, [2, [3, { b: 'c' }]]], d: { e: { f: null } } } },
  { what: 'keys that are not identifiers', value: { '': 1, 'a b': 2, '1': 3, ü: 4 } },
  { what: 'undefined inside an object', value: { present: 1, absent: undefined } },
  { what: 'undefined inside an array', value: [undefined, 1, undefined] },
  { what: 'undefined at the top, an absent payload', value: undefined },
  {
    what: 'an object without a prototype',
    value: Object.assign(Object.create(null) as object, { k: 'v' }),
    arrives: { k: 'v' },
  },
  {
    what: 'an instance of a class of fields, as a plain object',
    value: new Point(1, 2),
    arrives: { x: 1, y: 2 },
  },
];

/** Values the wire would not give back as they are, with where the error must point. */
const refused: readonly { readonly what: string; readonly value: unknown; readonly message: RegExp }[] = [
  { what: 'a Map', value: new Map([['a', 1]]), message: /a Map at the top would arrive as an object/ },
  { what: 'a Set', value: new Set([1]), message: /a Set at the top would arrive as an array/ },
  {
    what: 'a Map deep inside',
    value: { items: [{}, { tags: new Map() }] },
    message: /a Map at \.items\[1\]\.tags/,
  },
  { what: 'a Set under an odd key', value: { 'odd key': new Set() }, message: /a Set at \["odd key"\]/ },
  { what: 'an Error', value: new Error('x'), message: /an Error at the top/ },
  { what: 'a RegExp', value: [/x/g], message: /a RegExp at \[0\]/ },
  { what: 'a Float64Array', value: new Float64Array([1.5]), message: /a Float64Array at the top/ },
  { what: 'an Int32Array', value: { v: new Int32Array(2) }, message: /an Int32Array at \.v/ },
  { what: 'an ArrayBuffer', value: new ArrayBuffer(4), message: /an ArrayBuffer at the top/ },
  { what: 'a DataView', value: new DataView(new ArrayBuffer(4)), message: /a DataView/ },
  { what: 'a function', value: { f: () => 1 }, message: /a function at \.f would be dropped/ },
  { what: 'a symbol', value: [Symbol('s')], message: /a symbol at \[0\]/ },
  { what: 'a bigint past 64 bits', value: 2n ** 64n, message: /a bigint at the top does not fit in 64 bits/ },
  { what: 'a negative bigint past 64 bits', value: -(2n ** 63n) - 1n, message: /does not fit in 64 bits/ },
  {
    what: 'a __proto__ key',
    value: JSON.parse('{"a":{"__proto__":1}}') as unknown,
    message: /__proto__ at \.a would arrive renamed/,
  },
];

describe('msgpackCodec round trips', () => {
  test('every documented type comes back as it went', () => {
    for (const { what, value, arrives } of survivors) {
      assert.deepStrictEqual(roundTrip(value), arrives ?? value, what);
    }
    // Bytes arrive as a Buffer, which is a Uint8Array.
    assert.ok(roundTrip(Uint8Array.of(1)) instanceof Uint8Array);
    assert.ok(Object.is(roundTrip(-0), 0));
  });

  test('a value the wire would change is refused with a TypeError naming where it is', () => {
    for (const { what, value, message } of refused) {
      assert.throws(
        () => codec.encode(value),
        (error) => {
          assert.ok(error instanceof TypeError, `${what}: ${String(error)}`);
          assert.match(error.message, message, what);
          return true;
        },
      );
    }
  });

  test('a cycle or a value nested past the depth limit is refused, not a stack overflow', () => {
    const cycle: { self?: unknown } = {};
    cycle.self = cycle;
    assert.throws(() => codec.encode(cycle), /nested over 512 levels deep/);
    // As deep as allowed: MAX_MSGPACK_DEPTH arrays, one inside the other.
    let deep: unknown = 'leaf';
    for (let i = 0; i < MAX_MSGPACK_DEPTH; i++) deep = [deep];
    assert.deepStrictEqual(roundTrip(deep), deep);
    assert.throws(() => codec.encode([deep]), /nested over 512 levels deep/);
  });
});

describe('typed handlers over the wire', () => {
  async function grid(t: TestContext): Promise<TestGrid> {
    const g = await TestGrid.start(2, { clock: new FakeClock() });
    t.after(() => g.close());
    await g.waitAllConnected();
    return g;
  }

  test('a typed echo returns every documented type as it was sent', async (t) => {
    const g = await grid(t);
    const echo = defineSingle<unknown, unknown>(64);
    echo.register(g.manager(1), (value) => value);
    for (const { what, value, arrives } of survivors) {
      assert.deepStrictEqual(await echo.call(g.connection(0, 1), value), arrives ?? value, what);
    }
  });

  test('a typed stream carries Dates, bigints and bytes in its params, requests and responses', async (t) => {
    const g = await grid(t);
    interface Tick {
      readonly at: Date;
      readonly n: bigint;
      readonly raw: Uint8Array;
    }
    const ticks = defineStream<{ from: Date }, Tick, Tick>(65, { inCapacity: 2, outCapacity: 2 });
    ticks.register(g.manager(1), async ({ params, requests, send }) => {
      for await (const tick of requests) {
        await send({
          at: new Date(params.from.getTime() + tick.at.getTime()),
          n: tick.n * 2n,
          raw: tick.raw,
        });
      }
    });
    const stream = ticks.open(g.connection(0, 1), { from: new Date(1_000) });
    const got: Tick[] = [];
    const reading = (async () => {
      for await (const tick of stream) got.push(tick);
    })();
    await stream.send({ at: new Date(5), n: 2n ** 62n, raw: Uint8Array.of(7) });
    stream.end();
    await reading;
    assert.deepStrictEqual(got, [{ at: new Date(1_005), n: 2n ** 63n, raw: Buffer.of(7) }]);
  });

  test('a call with a Map is refused before anything is sent; a handler answering with one fails on its side', async (t) => {
    const g = await grid(t);
    let calls = 0;
    const lookup = defineSingle<unknown, unknown>(66);
    lookup.register(g.manager(1), () => {
      calls += 1;
      return new Map([['a', 1]]);
    });
    await assert.rejects(lookup.call(g.connection(0, 1), { keys: new Set(['a']) }), /a Set at \.keys/);
    assert.equal(calls, 0, 'the request never left');
    await assert.rejects(lookup.call(g.connection(0, 1), null), (error) => {
      assert.ok(error instanceof RemoteError);
      assert.match(error.message, /a Map at the top would arrive as an object/);
      return true;
    });
  });

  test('types the wire does not keep need a codec of their own: without one the definition does not compile', () => {
    // Each line below would not compile without its expectation (tsc checks the tests).
    // @ts-expect-error -- a Map would arrive as an object
    defineSingle<Map<string, number>, null>(64);
    // @ts-expect-error -- deep inside too
    defineSingle<null, { tags: Set<string> }>(64, {});
    // @ts-expect-error -- a class with methods would lose them
    defineStream<Point & { norm(): number }, never, null>(64);
    // @ts-expect-error -- an Error would arrive as an array
    defineSingle<Error, null>(64);
    // @ts-expect-error -- a Float64Array's elements would be written as bytes
    defineSingle<Float64Array, null>(64);
    // @ts-expect-error -- and the codec itself
    msgpackCodec<Map<string, number>>();

    // With a codec for the type that needs one, it compiles; the other codecs stay optional.
    const entries: Codec<Map<string, number>> = {
      encode: (map) => msgpackCodec<[string, number][]>().encode([...map]),
      decode: (bytes) => new Map(msgpackCodec<[string, number][]>().decode(bytes)),
    };
    defineSingle<Map<string, number>, null>(64, { request: entries });
    defineStream<null, never, Map<string, number>>(64, { response: entries, outCapacity: 4 });
    // And every documented type compiles without one.
    defineSingle<
      { at: Date; n: bigint; raw: Uint8Array; list: readonly (string | null)[]; opt?: number },
      Point
    >(64);
    defineStream<unknown, Buffer, Record<string, Date>>(64);
    msgpackCodec<{ deep: { deeper: Date[] } }>();
  });
});
