// A connector registers through call metadata; bad registrations are refused with the status A1 names.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { Metadata, status } from '@grpc/grpc-js';

import {
  grpcStatusOf,
  InvalidConnectorGenerationError,
  InvalidHubRegistrationError,
} from '../../src/hub/wire/errors.ts';
import { parseRegistration } from '../../src/hub/wire/registration.ts';

function metadataOf(entries: Record<string, string | string[]>): Metadata {
  const metadata = new Metadata();
  for (const [key, value] of Object.entries(entries)) {
    for (const v of Array.isArray(value) ? value : [value]) metadata.add(key, v);
  }
  return metadata;
}

const valid = {
  'storyrun-name': 'run-1.a',
  'storyrun-namespace': 'team-a',
  'current-step-id': 'Fetch_data-2',
};

describe('parseRegistration', () => {
  test('reads the three names and builds the ns/run/step key', () => {
    const result = parseRegistration(metadataOf(valid));
    assert.ok(result.ok);
    assert.deepEqual(result.registration, {
      storyRunName: 'run-1.a',
      storyRunNamespace: 'team-a',
      currentStepId: 'Fetch_data-2',
      connectorGeneration: undefined,
      key: 'team-a/run-1.a/Fetch_data-2',
    });
  });

  test('a missing name is INVALID_ARGUMENT naming the key', () => {
    for (const key of Object.keys(valid)) {
      const entries = Object.fromEntries(Object.entries(valid).filter(([k]) => k !== key));
      const result = parseRegistration(metadataOf(entries));
      if (result.ok) assert.fail(`missing ${key} should be refused`);
      assert.ok(result.problem instanceof InvalidHubRegistrationError);
      assert.equal(result.problem.key, key);
      assert.match(result.problem.message, new RegExp(`${key} is required`));
      assert.equal(grpcStatusOf(result.problem).code, status.INVALID_ARGUMENT);
    }
  });

  test('names outside their character set or length are refused', () => {
    const bad: [string, string][] = [
      ['storyrun-namespace', 'Team'],
      ['storyrun-namespace', 'a'.repeat(64)],
      ['storyrun-namespace', 'a.b'],
      ['storyrun-name', '-run'],
      ['storyrun-name', 'a/b'],
      ['storyrun-name', 'a'.repeat(254)],
      ['current-step-id', 'step/1'],
      ['current-step-id', '_x'],
      ['current-step-id', 's'.repeat(64)],
    ];
    for (const [key, value] of bad) {
      const result = parseRegistration(metadataOf({ ...valid, [key]: value }));
      if (result.ok) assert.fail(`${key}=${value} should be refused`);
      assert.equal((result.problem as InvalidHubRegistrationError).key, key);
    }
    assert.ok(parseRegistration(metadataOf({ ...valid, 'storyrun-name': 'a'.repeat(253) })).ok);
  });

  test('a key sent twice is ambiguous and refused', () => {
    const result = parseRegistration(metadataOf({ ...valid, 'current-step-id': ['a', 'b'] }));
    if (result.ok) assert.fail('should be refused');
    assert.match(result.problem.message, /sent 2 times/);
  });

  test('connector-generation is optional; when present a canonical int32 > 0', () => {
    for (const [value, expected] of [
      ['1', 1],
      ['42', 42],
      ['2147483647', 2_147_483_647],
    ] as const) {
      const result = parseRegistration(metadataOf({ ...valid, 'connector-generation': value }));
      assert.ok(result.ok);
      assert.equal(result.registration.connectorGeneration, expected);
    }
    for (const value of ['0', '-1', '01', '+1', ' 1', '1.0', '1e3', '2147483648', '99999999999', 'x', '']) {
      const result = parseRegistration(metadataOf({ ...valid, 'connector-generation': value }));
      if (result.ok) assert.fail(`generation ${JSON.stringify(value)} should be refused`);
      assert.ok(result.problem instanceof InvalidConnectorGenerationError);
      assert.equal(result.problem.code, 'WEFT_HUB_INVALID_CONNECTOR_GENERATION');
      assert.equal(grpcStatusOf(result.problem).code, status.FAILED_PRECONDITION);
    }
  });
});
