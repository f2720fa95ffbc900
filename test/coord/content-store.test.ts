import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, test } from 'node:test';

import { ContentStore, type ContentStoreConfig } from '../../src/coord/content-store.ts';
import {
  BlobTooLargeError,
  DigestMismatchError,
  InvalidDigestError,
  InvalidRangeError,
} from '../../src/coord/errors.ts';
import { CapacityExceededError, ClosedError, ConfigError } from '../../src/internal/errors.ts';
import { FakeClock } from '../../src/internal/fake-clock.ts';

function sha256(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** A plain async-iterable source (not a Readable) of the given parts, one chunk each. */
async function* chunks(...parts: (string | Uint8Array)[]): AsyncGenerator<Uint8Array> {
  for (const part of parts) {
    await Promise.resolve(); // as a network source would, between chunks
    yield typeof part === 'string' ? Buffer.from(part) : part;
  }
}

async function readAll(stream: Readable | undefined): Promise<string> {
  assert.ok(stream, 'expected a stream');
  const parts: Buffer[] = [];
  for await (const chunk of stream) parts.push(chunk as Buffer);
  return Buffer.concat(parts).toString();
}

/** Destroys `stream` (when open) and waits until it has closed, which unpins its blob. */
async function closeStream(stream: Readable | undefined): Promise<void> {
  assert.ok(stream, 'expected a stream');
  if (stream.closed) return;
  const closed = once(stream, 'close');
  stream.destroy();
  await closed;
}

/** A source that yields `first` and then waits for `release()` before yielding `rest`. */
function gatedSource(first: string, rest: string) {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let pulled = 0;
  async function* source(): AsyncGenerator<Uint8Array> {
    pulled++;
    yield Buffer.from(first);
    await gate;
    yield Buffer.from(rest);
  }
  return { source: source(), release, pulled: () => pulled };
}

/** Everything under `directory`, as relative paths of files. */
async function filesUnder(directory: string): Promise<string[]> {
  const entries = await readdir(directory, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => path.relative(directory, path.join(e.parentPath, e.name)))
    .sort();
}

const HELLO = Buffer.from('hello');
const HELLO_DIGEST = 'sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824';

describe('ContentStore', () => {
  let directory: string;
  const opened: ContentStore[] = [];

  async function openStore(config: Partial<ContentStoreConfig> = {}): Promise<ContentStore> {
    const store = await ContentStore.open({ directory, maxBytes: 1024 * 1024, ...config });
    opened.push(store);
    return store;
  }

  beforeEach(async () => {
    directory = await mkdtemp(path.join(os.tmpdir(), 'weft-content-store-'));
  });

  afterEach(async () => {
    await Promise.all(opened.splice(0).map((s) => s.close()));
    await rm(directory, { recursive: true, force: true });
  });

  test('a written blob reads back byte for byte, under a path derived from its digest', async () => {
    const store = await openStore();
    assert.equal(sha256(HELLO), HELLO_DIGEST);
    assert.equal(store.has(HELLO_DIGEST), false);
    assert.equal(await store.read(HELLO_DIGEST), undefined);

    const result = await store.write(HELLO_DIGEST, chunks('hel', 'lo'), { expectedSize: 5 });
    assert.deepEqual(result, { digest: HELLO_DIGEST, size: 5, created: true });
    assert.equal(store.has(HELLO_DIGEST), true);
    assert.equal(store.size(HELLO_DIGEST), 5);
    assert.equal(await readAll(await store.read(HELLO_DIGEST)), 'hello');
    assert.deepEqual(await filesUnder(directory), [
      path.join('blobs', 'sha256', '2c', HELLO_DIGEST.slice('sha256:'.length)),
    ]);
    assert.deepEqual(store.stats(), {
      blobs: 1,
      bytes: 5,
      readers: 0,
      writesInFlight: 0,
      hits: 1,
      misses: 1,
      writes: 1,
      deduplicated: 0,
      evictions: 0,
      digestMismatches: 0,
      refused: 0,
    });
  });

  test('sha512 digests, Readable sources and the empty blob are stored', async () => {
    const store = await openStore();
    const bytes = Buffer.from('some layer');
    const digest = `sha512:${createHash('sha512').update(bytes).digest('hex')}`;
    await store.write(digest, Readable.from([bytes.subarray(0, 4), bytes.subarray(4)]));
    assert.equal(await readAll(await store.read(digest)), 'some layer');

    const empty = sha256(new Uint8Array(0));
    await store.write(empty, chunks());
    assert.equal(store.size(empty), 0);
    assert.equal(await readAll(await store.read(empty)), '');
  });

  test('byte ranges are inclusive and a range outside the blob is refused with its size', async () => {
    const store = await openStore();
    const bytes = Buffer.from('0123456789');
    const digest = sha256(bytes);
    await store.write(digest, chunks(bytes));
    assert.equal(await readAll(await store.read(digest, { start: 2, end: 5 })), '2345');
    assert.equal(await readAll(await store.read(digest, { start: 7 })), '789');
    assert.equal(await readAll(await store.read(digest, { end: 0 })), '0');
    assert.equal(await readAll(await store.read(digest, { start: 9, end: 9 })), '9');

    for (const range of [
      { start: 5, end: 4 },
      { start: 0, end: 10 },
      { start: 10 },
      { start: -1, end: 3 },
      { start: 1.5, end: 3 },
      { start: Number.NaN },
    ]) {
      await assert.rejects(store.read(digest, range), (error: unknown) => {
        assert.ok(error instanceof InvalidRangeError, `range ${JSON.stringify(range)}`);
        assert.equal(error.code, 'WEFT_COORD_INVALID_RANGE');
        assert.equal(error.size, 10);
        return true;
      });
    }
    const empty = sha256(new Uint8Array(0));
    await store.write(empty, chunks());
    await assert.rejects(store.read(empty, { start: 0 }), InvalidRangeError);
    assert.equal(store.stats().readers, 0, 'a refused range pins nothing');
  });

  test('bytes that hash to another digest are refused and leave nothing behind', async () => {
    const store = await openStore();
    await assert.rejects(store.write(HELLO_DIGEST, chunks('hellO')), (error: unknown) => {
      assert.ok(error instanceof DigestMismatchError);
      assert.equal(error.code, 'WEFT_COORD_DIGEST_MISMATCH');
      assert.equal(error.expectedDigest, HELLO_DIGEST);
      assert.equal(error.actualDigest, sha256(Buffer.from('hellO')));
      assert.equal(error.actualSize, 5);
      return true;
    });
    assert.equal(store.has(HELLO_DIGEST), false);
    assert.equal(await store.read(HELLO_DIGEST), undefined);
    assert.deepEqual(await filesUnder(directory), []);
    assert.equal(store.stats().digestMismatches, 1);
    assert.equal(store.stats().bytes, 0);
  });

  test('a byte count other than expectedSize is refused, whether short or long', async () => {
    const store = await openStore();
    await assert.rejects(
      store.write(HELLO_DIGEST, chunks('hello'), { expectedSize: 6 }),
      (error: unknown) => {
        assert.ok(error instanceof DigestMismatchError);
        assert.equal(error.expectedSize, 6);
        assert.equal(error.actualSize, 5);
        return true;
      },
    );
    // Too long is refused as soon as the excess arrives, without reading the rest.
    const { source, pulled } = gatedSource('hello, world', 'never read');
    await assert.rejects(store.write(HELLO_DIGEST, source, { expectedSize: 5 }), DigestMismatchError);
    assert.equal(pulled(), 1);
    assert.equal(store.has(HELLO_DIGEST), false);
    assert.deepEqual(await filesUnder(directory), []);
    assert.equal(store.stats().digestMismatches, 2);
  });

  test('keys that are not canonical OCI digests are refused before touching the disk', async () => {
    const store = await openStore();
    const hex = HELLO_DIGEST.slice('sha256:'.length);
    const hostile: unknown[] = [
      'sha256:../../etc',
      `sha256:../../${hex.slice(6)}`,
      `sha256:${hex.toUpperCase()}`,
      `sha256:${hex.slice(1)}`,
      `sha256:${hex}0`,
      `sha512:${hex}`,
      `md5:${hex}`,
      hex,
      `sha256:${hex.slice(0, 63)}/`,
      `SHA256:${hex}`,
      ` sha256:${hex}`,
      `sha256:${hex}\n`,
      '',
      `sha256:${'a'.repeat(10_000)}`,
      undefined,
      null,
      42,
    ];
    for (const key of hostile) {
      const label = typeof key === 'string' ? JSON.stringify(key) : String(key);
      assert.throws(() => store.has(key as string), InvalidDigestError, label);
      assert.throws(() => store.size(key as string), InvalidDigestError, label);
      await assert.rejects(store.read(key as string), InvalidDigestError, label);
      await assert.rejects(store.write(key as string, chunks('x')), (error: unknown) => {
        assert.ok(error instanceof InvalidDigestError, label);
        assert.equal(error.code, 'WEFT_COORD_INVALID_DIGEST');
        return true;
      });
    }
    assert.deepEqual(await filesUnder(directory), []);
  });

  test('concurrent writes of one digest store it once; the second reuses the first', async () => {
    const store = await openStore();
    const first = gatedSource('hel', 'lo');
    const second = gatedSource('hel', 'lo');
    const writing1 = store.write(HELLO_DIGEST, first.source);
    const writing2 = store.write(HELLO_DIGEST, second.source);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(store.has(HELLO_DIGEST), false, 'nothing visible while the first write streams');
    assert.equal(store.stats().writesInFlight, 1);
    first.release();
    assert.deepEqual(await writing1, { digest: HELLO_DIGEST, size: 5, created: true });
    assert.deepEqual(await writing2, { digest: HELLO_DIGEST, size: 5, created: false });
    assert.equal(second.pulled(), 0, 'the second source is never read');
    assert.equal(store.stats().writes, 1);
    assert.equal(store.stats().deduplicated, 1);
    assert.equal(await readAll(await store.read(HELLO_DIGEST)), 'hello');

    // A later write of a stored blob is answered at once too, and its Readable is released.
    const readable = Readable.from([HELLO]);
    assert.equal((await store.write(HELLO_DIGEST, readable)).created, false);
    assert.equal(readable.destroyed, true);
  });

  test('when the first of two concurrent writes fails, the second writes from its own source', async () => {
    const store = await openStore();
    const bad = gatedSource('hel', 'LO');
    const writingBad = store.write(HELLO_DIGEST, bad.source);
    const writingGood = store.write(HELLO_DIGEST, chunks('hello'));
    bad.release();
    await assert.rejects(writingBad, DigestMismatchError);
    assert.deepEqual(await writingGood, { digest: HELLO_DIGEST, size: 5, created: true });
    assert.equal(await readAll(await store.read(HELLO_DIGEST)), 'hello');
    assert.deepEqual(await filesUnder(path.join(directory, 'tmp')), []);
  });

  test('aborting a write mid-stream rejects with the reason and leaves nothing', async () => {
    const store = await openStore();
    const stalled = gatedSource('hel', 'lo'); // never released: the source goes quiet
    const controller = new AbortController();
    const writing = store.write(HELLO_DIGEST, stalled.source, { signal: controller.signal });
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal((await readdir(path.join(directory, 'tmp'))).length, 1, 'a temp file is being written');
    const reason = new Error('client went away');
    controller.abort(reason);
    await assert.rejects(writing, (error: unknown) => error === reason);
    assert.equal(store.has(HELLO_DIGEST), false);
    assert.deepEqual(await filesUnder(directory), []);
    assert.equal(store.stats().writesInFlight, 0);

    const readable = new Readable({ read: () => undefined });
    readable.push(Buffer.from('hel'));
    const writingReadable = store.write(HELLO_DIGEST, readable, { signal: AbortSignal.abort() });
    await assert.rejects(writingReadable, { name: 'AbortError' });
    assert.equal(readable.destroyed, true, 'the source is released');
  });

  test('a write over the limit evicts the least recently used blobs first', async () => {
    const store = await openStore({ maxBytes: 30 });
    const blob = (c: string) => Buffer.from(c.repeat(10));
    const [a, b, c, d] = [blob('a'), blob('b'), blob('c'), blob('d')];
    for (const bytes of [a, b, c]) await store.write(sha256(bytes), chunks(bytes));
    assert.equal(store.stats().bytes, 30);
    await readAll(await store.read(sha256(a))); // a is now more recent than b and c
    await store.write(sha256(d), chunks(d));
    assert.deepEqual(
      [a, b, c, d].map((x) => store.has(sha256(x))),
      [true, false, true, true],
    );
    assert.equal(await store.read(sha256(b)), undefined);
    assert.deepEqual(store.stats().evictions, 1);
    assert.deepEqual(store.stats().bytes, 30);
    assert.equal((await filesUnder(path.join(directory, 'blobs'))).length, 3);
  });

  test('each evicted digest is told to onEvicted, least recent first; digests() lists what is left', async () => {
    const evicted: string[] = [];
    const store = await openStore({ maxBytes: 30, onEvicted: (digest) => evicted.push(digest) });
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((x) => Buffer.from(x.repeat(15)));
    for (const bytes of [a, b] as Buffer[]) await store.write(sha256(bytes), chunks(bytes));
    await store.write(sha256(c as Buffer), chunks(c as Buffer));
    assert.deepEqual(evicted, [sha256(a as Buffer)]);
    await store.write(sha256(d as Buffer), chunks(d as Buffer));
    assert.deepEqual(evicted, [sha256(a as Buffer), sha256(b as Buffer)]);
    assert.deepEqual(store.digests(), [sha256(c as Buffer), sha256(d as Buffer)]);
  });

  test('a blob with an open reader is not evicted; with every blob pinned a write is refused', async () => {
    const store = await openStore({ maxBytes: 20 });
    const a = Buffer.from('a'.repeat(10));
    const b = Buffer.from('b'.repeat(10));
    const c = Buffer.from('c'.repeat(10));
    await store.write(sha256(a), chunks(a));
    await store.write(sha256(b), chunks(b));
    const readingA = await store.read(sha256(a)); // a is pinned (and least recent: b was not read)
    await closeStream(await store.read(sha256(b)));
    assert.equal(store.stats().readers, 1);
    await store.write(sha256(c), chunks(c));
    assert.equal(store.has(sha256(a)), true, 'the pinned blob stays');
    assert.equal(store.has(sha256(b)), false);

    const readingC = await store.read(sha256(c));
    const d = Buffer.from('d'.repeat(10));
    await assert.rejects(store.write(sha256(d), chunks(d)), CapacityExceededError);
    assert.equal(store.stats().evictions, 1, 'nothing evicted for a write that cannot fit');
    assert.equal(store.stats().refused, 1);
    assert.deepEqual(await filesUnder(path.join(directory, 'tmp')), []);

    // The pinned blob is still readable in full, and evictable once its stream closes.
    assert.equal(await readAll(readingA), 'a'.repeat(10));
    await closeStream(readingA);
    await closeStream(readingC);
    await store.write(sha256(d), chunks(d));
    assert.equal(store.has(sha256(a)), false);
    assert.equal(store.stats().readers, 0);
  });

  test('a blob larger than maxBytes is refused, announced or not', async () => {
    const store = await openStore({ maxBytes: 8 });
    const big = Buffer.from('0123456789');
    const announced = gatedSource('0123456789', '');
    await assert.rejects(
      store.write(sha256(big), announced.source, { expectedSize: 10 }),
      (error: unknown) => {
        assert.ok(error instanceof BlobTooLargeError);
        assert.equal(error.code, 'WEFT_COORD_BLOB_TOO_LARGE');
        assert.equal(error.maxBytes, 8);
        return true;
      },
    );
    assert.equal(announced.pulled(), 0);
    await assert.rejects(store.write(sha256(big), chunks('01234', '56789')), BlobTooLargeError);
    assert.equal(store.stats().refused, 2);
    assert.equal(store.has(sha256(big)), false);
    assert.deepEqual(await filesUnder(directory), []);
  });

  test('a source yielding something other than bytes is refused', async () => {
    const store = await openStore();
    const strings = Readable.from(['hello'], { objectMode: true });
    await assert.rejects(store.write(HELLO_DIGEST, strings as AsyncIterable<Uint8Array>), TypeError);
    assert.deepEqual(await filesUnder(directory), []);
  });

  test('reopening rebuilds the index in LRU order and removes leftover temp files', async () => {
    const clock = new FakeClock({ wallStartMs: Date.UTC(2026, 0, 1) });
    const a = Buffer.from('a'.repeat(10));
    const b = Buffer.from('b'.repeat(10));
    const c = Buffer.from('c'.repeat(10));
    const first = await openStore({ maxBytes: 20, clock });
    await first.write(sha256(a), chunks(a));
    clock.advance(60_000);
    await first.write(sha256(b), chunks(b));
    clock.advance(60_000);
    await readAll(await first.read(sha256(a))); // a becomes the most recent, on disk too
    await first.close();
    assert.ok(
      (await stat(path.join(directory, 'blobs', 'sha256', sha256(a).slice(7, 9), sha256(a).slice(7))))
        .mtimeMs > 0,
    );
    await writeFile(path.join(directory, 'tmp', 'half-written'), 'partial');

    const second = await openStore({ maxBytes: 20, clock });
    assert.deepEqual(await readdir(path.join(directory, 'tmp')), []);
    assert.equal(second.stats().blobs, 2);
    assert.equal(second.stats().bytes, 20);
    assert.equal(second.size(sha256(a)), 10);
    assert.equal(await readAll(await second.read(sha256(b), { start: 8 })), 'bb');
    // b was just read, but in this process only; write c to see the rebuilt order take effect.
    await second.close();

    const third = await openStore({ maxBytes: 20, clock });
    await third.write(sha256(c), chunks(c));
    assert.equal(third.has(sha256(a)), true, 'a, read last before the first restart, is kept');
    assert.equal(third.has(sha256(b)), false);
  });

  test('reopening with a smaller maxBytes evicts the oldest blobs', async () => {
    const clock = new FakeClock();
    const first = await openStore({ clock });
    const blobs = ['x', 'y', 'z'].map((ch) => Buffer.from(ch.repeat(10)));
    for (const bytes of blobs) {
      await first.write(sha256(bytes), chunks(bytes));
      clock.advance(10_000);
    }
    await first.close();
    const second = await openStore({ maxBytes: 15, clock });
    assert.deepEqual(
      blobs.map((bytes) => second.has(sha256(bytes))),
      [false, false, true],
    );
    assert.equal(second.stats().bytes, 10);
    assert.equal((await filesUnder(path.join(directory, 'blobs'))).length, 1);
  });

  test('files in the blob tree that the store did not write are ignored', async () => {
    const store = await openStore();
    await store.write(HELLO_DIGEST, chunks(HELLO));
    await store.close();
    const hex = HELLO_DIGEST.slice(7);
    await writeFile(path.join(directory, 'blobs', 'sha256', '2c', 'not-a-digest'), 'x');
    await writeFile(path.join(directory, 'blobs', 'sha256', '2c', hex.toUpperCase()), 'x');
    const reopened = await openStore();
    assert.equal(reopened.stats().blobs, 1);
    assert.equal(reopened.stats().bytes, 5);
  });

  test('close aborts writes in progress with ClosedError', async () => {
    const store = await openStore();
    const stalled = gatedSource('hel', 'lo');
    const writing = store.write(HELLO_DIGEST, stalled.source);
    await new Promise((resolve) => setImmediate(resolve));
    await store.close();
    await assert.rejects(writing, ClosedError);
    await assert.rejects(store.write(HELLO_DIGEST, chunks(HELLO)), ClosedError);
    await assert.rejects(store.read(HELLO_DIGEST), ClosedError);
    assert.deepEqual(await filesUnder(directory), []);
  });

  test('a bad configuration names the field', async () => {
    await assert.rejects(ContentStore.open({ directory, maxBytes: 0 }), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.equal(error.field, 'contentStore.maxBytes');
      return true;
    });
    await assert.rejects(ContentStore.open({ directory: '', maxBytes: 1 }), ConfigError);
  });
});
