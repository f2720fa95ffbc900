import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { encode as msgpackEncode } from '@msgpack/msgpack';
import fc from 'fast-check';

import { ProtocolError, REFUSAL_REASONS, RemoteError } from '../../src/grid/errors.ts';
import {
  decodeConnect,
  decodeConnectResponse,
  decodeError,
  decodePing,
  decodePong,
  decodeStreamOpen,
  decodeWindow,
  encodeConnect,
  encodeConnectResponse,
  encodeError,
  encodePing,
  encodePong,
  encodeStreamOpen,
  encodeWindow,
  pack,
  type ConnectRequest,
} from '../../src/grid/messages.ts';
import { CapacityExceededError, DeadlineExceededError, WeftError } from '../../src/internal/errors.ts';

const nodeId = Uint8Array.from({ length: 16 }, (_, i) => i);
const connect: ConnectRequest = {
  version: 1,
  nodeId,
  host: 'http://10.0.0.1:9000',
  timeMs: 1_700_000_000_000,
  token: 'xh4OiDGfMXFPFLczYQ7-688x5JMGwXGmGZFVWK3L_fM',
};

/** Asserts that `fn` throws a `ProtocolError` whose message matches `pattern`. */
function refuses(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof ProtocolError, `expected a ProtocolError, got ${String(error)}`);
    assert.match(error.message, pattern);
    return true;
  });
}

/** Plain bytes for comparison: decoders may return Buffers or other views. */
const bytes = (value: Uint8Array | undefined): number[] | undefined =>
  value === undefined ? undefined : [...value];

// Doubles that MessagePack carries exactly (it has no -0 distinct from 0 once written as an int).
const numberArb = fc
  .oneof(fc.maxSafeInteger(), fc.double({ noNaN: true, noDefaultInfinity: true }))
  .map((n) => (Object.is(n, -0) ? 0 : n));

describe('control payloads round-trip', () => {
  test('Connect comes back field for field', () => {
    fc.assert(
      fc.property(
        fc.maxSafeNat(),
        fc.uint8Array({ minLength: 16, maxLength: 16 }),
        fc.string({ unit: 'grapheme', maxLength: 80 }),
        numberArb,
        fc.string({ maxLength: 64 }),
        (version, id, host, timeMs, token) => {
          const decoded = decodeConnect(encodeConnect({ version, nodeId: id, host, timeMs, token }));
          assert.deepEqual(
            { ...decoded, nodeId: bytes(decoded.nodeId) },
            {
              version,
              nodeId: bytes(id),
              host,
              timeMs,
              token,
            },
          );
        },
      ),
      { numRuns: 200 },
    );
  });

  test('an accepting ConnectResponse carries the node id and no reason', () => {
    const decoded = decodeConnectResponse(encodeConnectResponse({ nodeId, accepted: true }));
    assert.deepEqual(bytes(decoded.nodeId), bytes(nodeId));
    assert.equal(decoded.accepted, true);
    assert.equal(decoded.reason, undefined);
    assert.equal(decoded.detail, undefined);
  });

  test('a refusing ConnectResponse carries each reason and its detail', () => {
    for (const reason of REFUSAL_REASONS) {
      const decoded = decodeConnectResponse(
        encodeConnectResponse({ nodeId, accepted: false, reason, detail: `because ${reason}` }),
      );
      assert.equal(decoded.accepted, false);
      assert.equal(decoded.reason, reason);
      assert.equal(decoded.detail, `because ${reason}`);
    }
  });

  test('a refusal without a reason goes out as bad-handshake with an empty detail', () => {
    const decoded = decodeConnectResponse(encodeConnectResponse({ nodeId, accepted: false }));
    assert.equal(decoded.reason, 'bad-handshake');
    assert.equal(decoded.detail, '');
  });

  test('a refusal reason the reader does not know reads as bad-handshake, keeping the detail', () => {
    const payload = pack({ id: nodeId, ok: false, reason: 'solar-flare', detail: 'try later' });
    const decoded = decodeConnectResponse(payload);
    assert.equal(decoded.reason, 'bad-handshake');
    assert.equal(decoded.detail, 'try later');
  });

  test('Ping and Pong carry the time, and Pong says whether the mux was found', () => {
    fc.assert(
      fc.property(numberArb, fc.boolean(), (t, notFound) => {
        assert.equal(decodePing(encodePing(t)), t);
        assert.deepEqual(decodePong(encodePong({ sentAt: t, notFound })), { sentAt: t, notFound });
      }),
    );
  });

  test('ConnectMux keeps the window and tells an absent initial payload from an empty one', () => {
    fc.assert(
      fc.property(
        fc.maxSafeNat(),
        fc.option(fc.uint8Array({ maxLength: 300 }), { nil: undefined }),
        (outWindow, initial) => {
          const decoded = decodeStreamOpen(encodeStreamOpen({ outWindow, initial }));
          assert.equal(decoded.outWindow, outWindow);
          assert.deepEqual(bytes(decoded.initial), bytes(initial));
        },
      ),
    );
    assert.equal(decodeStreamOpen(encodeStreamOpen({ outWindow: 1, initial: undefined })).initial, undefined);
    assert.equal(
      decodeStreamOpen(encodeStreamOpen({ outWindow: 1, initial: new Uint8Array(0) })).initial?.length,
      0,
    );
  });

  test('AckMux carries the window as a bare integer', () => {
    fc.assert(
      fc.property(fc.maxSafeNat(), (window) => {
        assert.equal(decodeWindow(encodeWindow(window)), window);
      }),
    );
    assert.equal(encodeWindow(4).toString('hex'), '04');
  });

  test('ConnectMux is a two-element array, readable by any MessagePack library', () => {
    assert.equal(
      encodeStreamOpen({ outWindow: 8, initial: Buffer.from('hi') }).toString('hex'),
      '9208c4026869',
    );
    assert.equal(encodeStreamOpen({ outWindow: 0, initial: undefined }).toString('hex'), '9200c0');
    const foreign = msgpackEncode([3, new Uint8Array([1, 2])]);
    assert.deepEqual(bytes(decodeStreamOpen(foreign).initial), [1, 2]);
  });

  test('a Connect written by another MessagePack library is read', () => {
    // @msgpack/msgpack writes small maps as fixmap and the node id as bin8.
    const foreign = msgpackEncode({ v: 1, id: nodeId, host: 'h', t: 12_345, token: 'x' });
    assert.equal(decodeConnect(foreign).timeMs, 12_345);
  });
});

describe('errors on the wire', () => {
  test('a WeftError keeps its code, message and retryable', () => {
    for (const error of [
      new DeadlineExceededError('too slow'),
      new CapacityExceededError('stream table', 8),
    ]) {
      const decoded = decodeError(encodeError(error));
      assert.ok(decoded instanceof RemoteError);
      assert.equal(decoded.code, error.code);
      assert.equal(decoded.message, error.message);
      assert.equal(decoded.retryable, error.retryable);
    }
    const terminal = new WeftError('APP_NOT_FOUND', 'no such key', false);
    assert.deepEqual(pick(decodeError(encodeError(terminal))), {
      code: 'APP_NOT_FOUND',
      message: 'no such key',
      retryable: false,
    });
  });

  test('a plain Error becomes WEFT_GRID_REMOTE with its message, not retryable', () => {
    assert.deepEqual(pick(decodeError(encodeError(new TypeError('bad input')))), {
      code: 'WEFT_GRID_REMOTE',
      message: 'bad input',
      retryable: false,
    });
  });

  test('a thrown value that is not an Error travels as its string', () => {
    assert.deepEqual(pick(decodeError(encodeError('just a string'))), {
      code: 'WEFT_GRID_REMOTE',
      message: 'just a string',
      retryable: false,
    });
  });

  test('an error payload that cannot be read still yields a RemoteError', () => {
    for (const payload of [
      undefined,
      Buffer.from('c4', 'hex'),
      Buffer.from('92', 'hex'),
      pack([1, 2]),
      pack('x'),
    ]) {
      const decoded = decodeError(payload);
      assert.ok(decoded instanceof RemoteError);
      assert.equal(decoded.code, 'WEFT_GRID_REMOTE');
      assert.equal(decoded.retryable, false);
      assert.match(decoded.message, /unreadable payload/);
      assert.ok(decoded.cause instanceof ProtocolError);
    }
  });

  test('an error map with missing or mistyped fields falls back field by field', () => {
    assert.deepEqual(pick(decodeError(pack({}))), {
      code: 'WEFT_GRID_REMOTE',
      message: 'remote error',
      retryable: false,
    });
    assert.deepEqual(pick(decodeError(pack({ code: 7, message: 'kept', retryable: 'yes' }))), {
      code: 'WEFT_GRID_REMOTE',
      message: 'kept',
      retryable: false,
    });
  });
});

function pick(error: RemoteError): { code: string; message: string; retryable: boolean } {
  return { code: error.code, message: error.message, retryable: error.retryable };
}

describe('malformed control payloads', () => {
  const decoders: readonly [string, (b: Uint8Array | undefined) => unknown][] = [
    ['Connect', decodeConnect],
    ['ConnectResponse', decodeConnectResponse],
    ['Ping', decodePing],
    ['Pong', decodePong],
    ['ConnectMux', decodeStreamOpen],
    ['AckMux', decodeWindow],
  ];

  test('a missing payload is refused, naming the message', () => {
    for (const [name, decode] of decoders)
      refuses(() => decode(undefined), new RegExp(`^${name}: payload missing$`));
  });

  test('bytes that are not MessagePack are refused, naming the message', () => {
    for (const [name, decode] of decoders) {
      for (const garbage of ['', 'c4', '92', 'de0005', 'a5616263', '0102']) {
        refuses(
          () => decode(Buffer.from(garbage, 'hex')),
          new RegExp(`^${name}: payload is not MessagePack$`),
        );
      }
    }
  });

  test('a payload that is not a map is refused where a map is expected', () => {
    for (const [name, decode] of decoders.slice(0, 4)) {
      for (const value of [[1, 2], 'text', 5, null, new Uint8Array(3)]) {
        refuses(() => decode(pack(value)), new RegExp(`^${name}: expected a map$`));
      }
    }
  });

  test('each Connect field that is missing or of the wrong type is named', () => {
    const good = { v: 1, id: nodeId, host: 'h', t: 5, token: 'x' };
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ v: undefined }, /^Connect: field v must be an unsigned integer$/],
      [{ v: -1 }, /^Connect: field v must be an unsigned integer$/],
      [{ v: 1.5 }, /^Connect: field v must be an unsigned integer$/],
      [{ v: '1' }, /^Connect: field v must be an unsigned integer$/],
      [{ id: undefined }, /^Connect: field id must be 16 bytes$/],
      [{ id: 'abc' }, /^Connect: field id must be 16 bytes$/],
      [{ id: new Uint8Array(15) }, /^Connect: field id must be 16 bytes$/],
      [{ id: new Uint8Array(17) }, /^Connect: field id must be 16 bytes$/],
      [{ host: undefined }, /^Connect: field host must be a string$/],
      [{ host: 5 }, /^Connect: field host must be a string$/],
      [{ t: undefined }, /^Connect: field t must be a number$/],
      [{ t: '5' }, /^Connect: field t must be a number$/],
      [{ t: Number.NaN }, /^Connect: field t must be a number$/],
      [{ t: Number.POSITIVE_INFINITY }, /^Connect: field t must be a number$/],
      [{ token: undefined }, /^Connect: field token must be a string$/],
      [{ token: new Uint8Array(2) }, /^Connect: field token must be a string$/],
    ];
    for (const [change, pattern] of cases) {
      // A field set to undefined is left out of the map.
      const merged: Record<string, unknown> = { ...good, ...change };
      const map = Object.fromEntries(Object.entries(merged).filter(([, v]) => v !== undefined));
      refuses(() => decodeConnect(pack(map)), pattern);
    }
  });

  test('each ConnectResponse field that is missing or of the wrong type is named', () => {
    refuses(() => decodeConnectResponse(pack({ ok: true })), /^ConnectResponse: field id must be 16 bytes$/);
    refuses(
      () => decodeConnectResponse(pack({ id: nodeId })),
      /^ConnectResponse: field ok must be a boolean$/,
    );
    refuses(
      () => decodeConnectResponse(pack({ id: nodeId, ok: 1 })),
      /^ConnectResponse: field ok must be a boolean$/,
    );
    refuses(
      () => decodeConnectResponse(pack({ id: nodeId, ok: false, detail: '' })),
      /^ConnectResponse: field reason must be a string$/,
    );
    refuses(
      () => decodeConnectResponse(pack({ id: nodeId, ok: false, reason: 'bad-token' })),
      /^ConnectResponse: field detail must be a string$/,
    );
  });

  test('a ConnectResponse node id that is not 16 bytes is refused', () => {
    for (const length of [0, 15, 17]) {
      refuses(
        () => decodeConnectResponse(pack({ id: new Uint8Array(length), ok: true })),
        /^ConnectResponse: field id must be 16 bytes$/,
      );
    }
  });

  test('Ping and Pong without a numeric t are refused', () => {
    refuses(() => decodePing(pack({})), /^Ping: field t must be a number$/);
    refuses(() => decodePing(pack({ t: 'now' })), /^Ping: field t must be a number$/);
    refuses(() => decodePong(pack({ nf: true })), /^Pong: field t must be a number$/);
  });

  test('a Pong with nf other than true counts as found', () => {
    assert.equal(decodePong(pack({ t: 1, nf: 'yes' })).notFound, false);
    assert.equal(decodePong(pack({ t: 1, nf: false })).notFound, false);
  });

  test('a malformed ConnectMux payload is refused, naming what is wrong', () => {
    for (const value of [{ w: 1 }, [1], [1, null, 2], 'x']) {
      refuses(() => decodeStreamOpen(pack(value)), /^ConnectMux: expected \[window, payload\]$/);
    }
    for (const window of [-1, 1.5, '1', null]) {
      refuses(
        () => decodeStreamOpen(pack([window, null])),
        /^ConnectMux: window must be an unsigned integer$/,
      );
    }
    for (const initial of ['hi', 5, [1], {}]) {
      refuses(() => decodeStreamOpen(pack([1, initial])), /^ConnectMux: payload must be bytes or nil$/);
    }
  });

  test('an AckMux window that is not an unsigned integer is refused', () => {
    for (const value of [-1, 2.5, 'four', null, [4], { w: 4 }]) {
      refuses(() => decodeWindow(pack(value)), /^AckMux: window must be an unsigned integer$/);
    }
  });

  test('integers in their 64-bit MessagePack forms are read as numbers', () => {
    // Any encoder that writes the smallest integer form (Go msgp, @msgpack/msgpack, rmp)
    // writes a wall time in ms as uint64: cf 00 00 01 8b cf e5 68 00.
    const foreign = msgpackEncode({ v: 1, id: nodeId, host: 'h', t: 1_700_000_000_000, token: 'x' });
    assert.equal(decodeConnect(foreign).timeMs, 1_700_000_000_000);
    assert.equal(decodePing(Buffer.from('81a174d30000018bcfe56800', 'hex')), 1_700_000_000_000);
    assert.equal(decodeWindow(Buffer.from('cf0000000000000003', 'hex')), 3);
  });

  test('random bytes give a value or a ProtocolError from every decoder, never another exception', () => {
    const all = [...decoders, ['error', decodeError] as const];
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 64 }),
          fc.uint8Array({ maxLength: 64 }).map((rest) => Buffer.concat([Buffer.from('de0005', 'hex'), rest])),
          fc
            .constantFrom(encodeConnect(connect), encodePong({ sentAt: 1, notFound: true }))
            .chain((valid) =>
              fc
                .tuple(fc.nat(valid.length - 1), fc.nat(255))
                .map(([at, value]) =>
                  Buffer.concat([valid.subarray(0, at), Buffer.of(value), valid.subarray(at + 1)]),
                ),
            ),
        ),
        (input) => {
          for (const [, decode] of all) {
            try {
              decode(input);
            } catch (error) {
              if (!(error instanceof ProtocolError)) throw error;
            }
          }
        },
      ),
      { numRuns: 100_000, plugins: [fc.interruptAfterTimeLimit(1_000)] },
    );
  });
});
