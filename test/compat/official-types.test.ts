// Our primitive and JSON types against the official Apache Flink StateFun JavaScript SDK
// (apache-flink-statefun@3.3.0, CommonJS): what one writes, the other reads, both ways.
// The official SDK has no long and no double type (its sources leave them commented out), so
// those two are checked against protobuf encodings only, in test/statefun/types.test.ts.

import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, test } from 'node:test';

import fc from 'fast-check';

import { jsonType } from '../../src/statefun/json-type.ts';
import { boolType, floatType, intType, stringType } from '../../src/statefun/primitive-types.ts';
import type { SimpleType } from '../../src/statefun/simple-type.ts';

interface OfficialType<T> {
  readonly typename: string;
  serialize(value: T): Uint8Array;
  deserialize(bytes: Uint8Array): T;
}

interface OfficialStateFun {
  intType(): OfficialType<number>;
  stringType(): OfficialType<string>;
  booleanType(): OfficialType<boolean>;
  floatType(): OfficialType<number>;
  jsonType<T>(typename: string): OfficialType<T>;
}

// CommonJS, with google-protobuf's global `proto` namespace: loaded through require.
const require = createRequire(import.meta.url);
const { StateFun } = require('apache-flink-statefun') as { StateFun: OfficialStateFun };

function bothWays<T>(
  ours: SimpleType<T>,
  official: OfficialType<T>,
  value: T,
  same: (a: T, b: T) => boolean,
): void {
  assert.equal(ours.typeName.toString(), official.typename);
  const fromOfficial = ours.deserialize(official.serialize(value));
  assert.ok(
    same(fromOfficial, value),
    `ours read ${String(fromOfficial)} from the official ${String(value)}`,
  );
  const fromOurs = official.deserialize(ours.serialize(value));
  assert.ok(same(fromOurs, value), `the official SDK read ${String(fromOurs)} from our ${String(value)}`);
  assert.equal(
    Buffer.from(ours.serialize(value)).toString('hex'),
    Buffer.from(official.serialize(value)).toString('hex'),
    'the same bytes',
  );
}

describe('primitive types against the official StateFun SDK', () => {
  test('int', () => {
    fc.assert(
      fc.property(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), (v) => {
        bothWays(intType, StateFun.intType(), v, (a, b) => a === b);
      }),
    );
  });

  test('string', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), (v) => {
        bothWays(stringType, StateFun.stringType(), v, (a, b) => a === b);
      }),
    );
  });

  test('bool', () => {
    for (const v of [true, false]) bothWays(boolType, StateFun.booleanType(), v, (a, b) => a === b);
  });

  test('float', () => {
    fc.assert(
      // -0 aside: protobuf writes it (its bits are not the default's), as we do, but
      // google-protobuf, under the official SDK, compares with === and drops it as zero.
      fc.property(
        fc.float({ noNaN: true }).filter((v) => !Object.is(v, -0)),
        (v) => {
          bothWays(floatType, StateFun.floatType(), v, (a, b) => Object.is(a, b));
        },
      ),
    );
  });

  test('JSON', () => {
    const ours = jsonType<unknown>('com.example/doc');
    const official = StateFun.jsonType<unknown>('com.example/doc');
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        assert.deepEqual(
          ours.deserialize(official.serialize(v)),
          official.deserialize(official.serialize(v)),
        );
        assert.deepEqual(official.deserialize(ours.serialize(v)), ours.deserialize(ours.serialize(v)));
      }),
    );
  });
});
