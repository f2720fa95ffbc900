import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

import {
  CancelledError,
  CapacityExceededError,
  ClosedError,
  ConfigError,
  DeadlineExceededError,
  isRetryable,
  WeftError,
} from '../../src/internal/errors.ts';

describe('errors', () => {
  test('each kind has a stable code, its class name and a retryable verdict', () => {
    const cases: [WeftError, string, string, boolean][] = [
      [new DeadlineExceededError(), 'WEFT_DEADLINE_EXCEEDED', 'DeadlineExceededError', true],
      [new CancelledError(), 'WEFT_CANCELLED', 'CancelledError', false],
      [new CapacityExceededError('stream table', 8), 'WEFT_CAPACITY_EXCEEDED', 'CapacityExceededError', true],
      [new ClosedError(), 'WEFT_CLOSED', 'ClosedError', false],
      [new ConfigError('grid.pingMs', 'must be > 0'), 'WEFT_INVALID_CONFIG', 'ConfigError', false],
    ];
    for (const [error, code, name, retryable] of cases) {
      assert.equal(error.code, code);
      assert.equal(error.name, name);
      assert.equal(error.retryable, retryable);
      assert.equal(isRetryable(error), retryable);
      assert.ok(error instanceof WeftError);
      assert.ok(error instanceof Error);
      assert.match(String(error.stack), new RegExp(name));
    }
  });

  test('messages name what failed', () => {
    assert.equal(
      new ConfigError('grid.pingMs', 'must be > 0').message,
      'invalid config grid.pingMs: must be > 0',
    );
    assert.equal(new ConfigError('grid.pingMs', 'x').field, 'grid.pingMs');
    assert.equal(new CapacityExceededError('stream table', 8).message, 'stream table is full (limit 8)');
  });

  test('the cause is kept', () => {
    const cause = new Error('socket reset');
    assert.equal(new ClosedError('connection closed', { cause }).cause, cause);
    assert.equal('cause' in new ClosedError(), false);
  });

  test('instanceof tells the kinds apart', () => {
    assert.equal(new ClosedError() instanceof DeadlineExceededError, false);
    assert.equal(new Error('plain') instanceof WeftError, false);
    assert.equal(isRetryable(new Error('plain')), false);
    assert.equal(isRetryable('not an error'), false);
  });

  test('instanceof works for an error made by another copy of the package', async (t) => {
    // Two copies on disk (a dependency pinned to another version) are two module
    // instances with their own classes; the Symbol.for brand is shared by the process.
    const dir = await mkdtemp(path.join(tmpdir(), 'weft-errors-copy-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const copy = path.join(dir, 'errors.ts');
    await copyFile(new URL('../../src/internal/errors.ts', import.meta.url), copy);
    const foreign = (await import(pathToFileURL(copy).href)) as typeof import('../../src/internal/errors.ts');
    assert.notEqual(foreign.DeadlineExceededError, DeadlineExceededError, 'really a second copy');

    const error = new foreign.DeadlineExceededError();
    assert.ok(error instanceof DeadlineExceededError);
    assert.ok(error instanceof WeftError);
    assert.equal(error instanceof ClosedError, false);
    assert.equal(isRetryable(error), true);
    assert.ok(new ClosedError() instanceof foreign.ClosedError, 'and the other way round');
  });

  test('a user subclass without its own brand still checks by prototype', () => {
    class AppError extends WeftError {
      constructor() {
        super('APP_FAILED', 'app failed', false);
      }
    }
    class OtherAppError extends WeftError {
      constructor() {
        super('APP_OTHER', 'other', false);
      }
    }
    assert.ok(new AppError() instanceof AppError);
    assert.ok(new AppError() instanceof WeftError);
    assert.equal(new OtherAppError() instanceof AppError, false);
  });
});
