// The partition of an address: FNV-1a 32 of `namespace/type/id` modulo the count. Golden vectors
// (the first three are FNV's published test vectors), so any node in any language agrees.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { ConfigError } from '../../src/internal/errors.ts';
import { DEFAULT_PARTITIONS, fnv1a32, partitionOf } from '../../src/runtime/cluster/partition.ts';

const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text);

describe('partitions', () => {
  test('FNV-1a 32 golden vectors', () => {
    assert.equal(fnv1a32(utf8('')), 0x811c9dc5);
    assert.equal(fnv1a32(utf8('a')), 0xe40c292c);
    assert.equal(fnv1a32(utf8('foobar')), 0xbf9cf968);
    assert.equal(fnv1a32(utf8('example/counter/ada')), 0x0cfa65f1);
  });

  test('an address maps to the same partition every time, UTF-8 ids included', () => {
    assert.equal(DEFAULT_PARTITIONS, 1024);
    assert.equal(partitionOf(['example', 'counter', 'ada']), 0x0cfa65f1 % 1024);
    assert.equal(partitionOf(['example', 'counter', 'Zoë']), 0x303b4c76 % 1024);
    assert.equal(partitionOf(['example', 'counter', 'ada'], 7), 0x0cfa65f1 % 7);
  });

  test('a partition count out of range is refused', () => {
    for (const count of [0, -1, 1.5, 65_537, Number.NaN]) {
      assert.throws(() => partitionOf(['a', 'b', 'c'], count), ConfigError);
    }
  });
});
