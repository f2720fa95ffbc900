import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';

import fc from 'fast-check';

import { joinRoute, subrouteId, subrouteKey } from '../../src/grid/subroute.ts';

const sha256 = (route: string): Buffer => createHash('sha256').update(route, 'utf8').digest();

describe('subroute ids', () => {
  test('byte 0 is the handler id, byte 1 is 0 and the rest is SHA-256 of the route', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 255 }),
        fc.string({ minLength: 1, unit: 'grapheme' }),
        (handler, route) => {
          const id = subrouteId(handler, route);
          const digest = sha256(route);
          assert.equal(id.length, 32);
          assert.equal(id[0], handler);
          assert.equal(id[1], 0);
          assert.deepEqual([...id.subarray(2)], [...digest.subarray(2)]);
        },
      ),
    );
  });

  test('the id of "disk/1" for handler 65 is the one in the wire document', () => {
    assert.equal(
      subrouteId(65, 'disk/1').toString('hex'),
      '4100d67bf5dc8cc3df67ef672be53903ebba716503b7f653b6e842da0be08f6c',
    );
  });

  test('different routes give different ids, and so does the same route under another handler', () => {
    assert.notDeepEqual(subrouteId(64, 'disk/1'), subrouteId(64, 'disk/2'));
    assert.notDeepEqual(subrouteId(64, 'disk/1'), subrouteId(65, 'disk/1'));
    fc.assert(
      fc.property(fc.string({ minLength: 1 }), fc.string({ minLength: 1 }), (a, b) => {
        fc.pre(a !== b);
        assert.notEqual(subrouteKey(subrouteId(64, a)), subrouteKey(subrouteId(64, b)));
      }),
    );
  });

  test('an empty route is refused', () => {
    assert.throws(() => subrouteId(64, ''), RangeError);
  });

  test('nested routes are joined with a slash', () => {
    assert.equal(joinRoute('bucket', 'disk', '1'), 'bucket/disk/1');
    assert.deepEqual(subrouteId(64, joinRoute('disk', '1')), subrouteId(64, 'disk/1'));
  });

  test('the map key is the hex of the id, also for a view into a larger buffer', () => {
    const id = subrouteId(64, 'disk/1');
    const framed = Buffer.concat([Buffer.from('ffff', 'hex'), id, Buffer.from('ff', 'hex')]);
    assert.equal(subrouteKey(framed.subarray(2, 34)), id.toString('hex'));
    assert.equal(subrouteKey(new Uint8Array(framed.buffer, framed.byteOffset + 2, 32)), id.toString('hex'));
  });
});
