// What survives `msgpackCodec`: the values that come back from a MessagePack round trip as
// they went in, as a type (checked at compile time) and as a check (run on every encode).
//
// The codec writes plain MessagePack so that peers in other languages can read it, and
// plain MessagePack has one map type and one array type. So a `Map` would arrive as an
// object (its keys turned into strings) and a `Set` as an array; msgpackr would write an
// `Error` as an array, drop a function, and copy a `Float64Array` as if its elements were
// bytes. Rather than change a value on the way, the codec refuses it, naming where it is.
//
// What survives: null, booleans, numbers (-0 arrives as 0), strings, bigints that fit 64
// bits (signed, or unsigned above 2^63), `Uint8Array` (arriving as a Buffer, a Uint8Array
// subclass), `Date` (to the millisecond, as the MessagePack timestamp extension), arrays and
// plain objects of these, and `undefined` (a top-level `undefined` is an absent payload;
// inside a value msgpackr writes it as fixext 1 type 0, which other MessagePack libraries
// may read as an unknown extension). An instance of a class arrives as a plain object of its
// own enumerable fields, or as what its `toJSON` returns.

/**
 * `T` where every part of it survives a round trip through `msgpackCodec`, `never` in the
 * parts that do not (a Map, a Set, an Error, a typed array other than Uint8Array, a function,
 * a class with methods). `unknown` and `any` pass: those values are checked when encoded.
 */
export type Msgpackable<T> = unknown extends T
  ? T
  : T extends string | number | boolean | bigint | null | undefined | Date | Uint8Array
    ? T
    : T extends
          | ReadonlyMap<unknown, unknown>
          | ReadonlySet<unknown>
          | Error
          | RegExp
          | ArrayBuffer
          | SharedArrayBuffer
          | DataView
          | symbol
          // eslint-disable-next-line @typescript-eslint/no-unsafe-function-type -- any function
          | Function
      ? never
      : T extends object
        ? { [K in keyof T]: Msgpackable<T[K]> }
        : never;

/** How deep `checkMsgpackable` follows a value: deeper is refused (most likely a cycle). */
export const MAX_MSGPACK_DEPTH = 512;

const MIN_INT64 = -(2n ** 63n);
const MAX_UINT64 = 2n ** 64n - 1n;

/**
 * Throws a `TypeError` naming the first part of `value` that would not come back from a
 * MessagePack round trip as it went in (see the module comment); returns if there is none.
 */
export function checkMsgpackable(value: unknown): void {
  const problem = find(value, 0);
  if (problem !== undefined) {
    throw new TypeError(`msgpackCodec: ${problem.what} at ${problem.path || 'the top'} ${problem.why}`);
  }
}

interface Problem {
  readonly what: string;
  /** Where it is, built on the way back up: `.items[2].tags`. */
  path: string;
  readonly why: string;
}

/** True for what needs a closer look: containers, and the primitives that may not survive. */
function needsLook(value: unknown): boolean {
  const type = typeof value;
  return (
    (type === 'object' && value !== null) || type === 'bigint' || type === 'function' || type === 'symbol'
  );
}

// Hot: every typed payload passes here before msgpackr packs it, and costs about a fifth of
// the packing. Strings, numbers, booleans and undefined are skipped in the loops without a
// call; plain objects are recognised as msgpackr does (by their constructor) and walked with
// for…in, which allocates no array of keys.
function find(value: unknown, depth: number): Problem | undefined {
  switch (typeof value) {
    case 'bigint':
      return value < MIN_INT64 || value > MAX_UINT64
        ? { what: 'a bigint', path: '', why: 'does not fit in 64 bits' }
        : undefined;
    case 'symbol':
      return { what: 'a symbol', path: '', why: 'has no MessagePack form' };
    case 'function':
      return { what: 'a function', path: '', why: 'would be dropped' };
    case 'object':
      break;
    default:
      return undefined;
  }
  if (value === null) return undefined;
  if (depth >= MAX_MSGPACK_DEPTH) {
    return { what: 'a value', path: '', why: `is nested over ${MAX_MSGPACK_DEPTH} levels deep (a cycle?)` };
  }
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      if (!needsLook(item)) continue;
      const problem = find(item, depth + 1);
      if (problem !== undefined) return under(problem, `[${i}]`);
    }
    return undefined;
  }
  if ((value as { constructor?: unknown }).constructor === Object) {
    return fields(value as Record<string, unknown>, depth);
  }
  if (value instanceof Uint8Array || value instanceof Date) return undefined;
  const refused = refusedKind(value);
  if (refused !== undefined) return refused;
  // No prototype, or another class: msgpackr writes what a class's toJSON returns, or else
  // the own fields.
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== null && typeof (value as { toJSON?: unknown }).toJSON === 'function') return undefined;
  return fields(value as Record<string, unknown>, depth);
}

function fields(object: Record<string, unknown>, depth: number): Problem | undefined {
  // for…in also visits inherited enumerable keys, which msgpackr skips: only a polluted
  // Object.prototype has any, and checking them too does no harm.
  for (const key in object) {
    // msgpackr reads it back as `__proto_`, so that it cannot set a prototype.
    if (key === '__proto__') return { what: 'a key __proto__', path: '', why: 'would arrive renamed' };
    const item = object[key];
    if (!needsLook(item)) continue;
    const problem = find(item, depth + 1);
    if (problem !== undefined) {
      return under(problem, /^[A-Za-z_$][\w$]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`);
    }
  }
  return undefined;
}

function refusedKind(value: object): Problem | undefined {
  if (value instanceof Map) {
    return {
      what: 'a Map',
      path: '',
      why: 'would arrive as an object: send an object or an array of entries',
    };
  }
  if (value instanceof Set)
    return { what: 'a Set', path: '', why: 'would arrive as an array: send an array' };
  if (value instanceof Error) {
    return { what: 'an Error', path: '', why: 'would arrive as an array: send its fields' };
  }
  if (value instanceof RegExp) return { what: 'a RegExp', path: '', why: 'would arrive as an array' };
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer || value instanceof SharedArrayBuffer) {
    return {
      what: /^[AEIOU]/.test(value.constructor.name)
        ? `an ${value.constructor.name}`
        : `a ${value.constructor.name}`,
      path: '',
      why: 'would not arrive as it is: send a Uint8Array of its bytes',
    };
  }
  return undefined;
}

function under(problem: Problem, step: string): Problem {
  problem.path = `${step}${problem.path}`;
  return problem;
}
