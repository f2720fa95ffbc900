// A connector written by someone who has only the .proto files: two separate Node processes that
// use @grpc/grpc-js and @grpc/proto-loader, no Weft code, register with a hub in this process,
// pass packets through it and acknowledge them. Real processes over loopback, so real time with
// generous bounds.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';

import { Hub } from '../../src/hub/hub.ts';
import { parseStory } from '../../src/hub/story/index.ts';
import { FakeClock } from '../../src/internal/fake-clock.ts';

const connectorScript = path.join(import.meta.dirname, 'fixtures', 'generic-connector.mjs');
const PROCESS_TIMEOUT_MS = 20_000;

const story = parseStory(
  JSON.stringify({
    apiVersion: 'weft.dev/v1',
    kind: 'Story',
    metadata: { name: 'pipeline', namespace: 'media' },
    spec: {
      defaults: { delivery: { mode: 'at_least_once' } },
      steps: [{ id: 'ingest' }, { id: 'transcribe', needs: ['ingest'] }],
    },
  }),
  { format: 'json' },
);

/** One JSON line the connector printed. */
interface Line {
  readonly kind: 'packet' | 'ack' | 'end' | 'error';
  readonly ack?: string;
  readonly text?: string | null;
  readonly status?: number | null;
}

interface Finished {
  readonly code: number | null;
  readonly lines: Line[];
  readonly stderr: string;
}

/** Runs the generic connector; resolves when it exits, with the JSON lines it printed. */
function runConnector(t: TestContext, args: string[]): Promise<Finished> {
  const child = spawn(
    process.execPath,
    [connectorScript, ...args, '--timeout-ms', String(PROCESS_TIMEOUT_MS)],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  t.after(() => {
    if (child.exitCode === null) child.kill();
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      const lines = stdout
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => JSON.parse(line) as Line);
      resolve({ code, lines, stderr });
    });
  });
}

/** Polls on real time: the other side is a separate process. */
async function until(condition: () => boolean, what: string, timeoutMs = PROCESS_TIMEOUT_MS): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('a connector built only from the .proto files', () => {
  test('registers, receives every packet in order with its payload, and its acks reach the producer', async (t) => {
    // The fake clock keeps the hub's ticks (heartbeats, retries) out of the exchange.
    const hub = new Hub({ stories: [story], clock: new FakeClock() });
    const port = await hub.listen({ port: 0 });
    t.after(() => hub.close());
    const address = `127.0.0.1:${port}`;
    const count = 25;

    const consumer = runConnector(t, ['--address', address, '--role', 'consumer', '--count', String(count)]);
    await until(() => hub.stats().connections === 1, 'the consumer registered');
    const producer = runConnector(t, ['--address', address, '--role', 'producer', '--count', String(count)]);
    const [consumed, produced] = await Promise.all([consumer, producer]);

    assert.equal(consumed.code, 0, `consumer: ${consumed.stderr} ${JSON.stringify(consumed.lines)}`);
    assert.equal(produced.code, 0, `producer: ${produced.stderr} ${JSON.stringify(produced.lines)}`);

    const packets = consumed.lines.filter((line) => line.kind === 'packet');
    const expected = Array.from({ length: count }, (_, i) => ({
      kind: 'packet',
      sequence: String(i + 1),
      frame: 'binary',
      text: `packet-${i + 1}`,
      index: i + 1,
      origin: 'generic-connector',
    }));
    assert.deepEqual(packets, expected, 'every packet once, in order, payloads and metadata intact');

    const acks = produced.lines.filter((line) => line.kind === 'ack').map((line) => BigInt(line.ack ?? '0'));
    assert.ok(acks.length > 0, 'the producer was acknowledged');
    assert.equal(acks.at(-1), BigInt(count), 'acknowledged up to its last packet');
    for (let i = 1; i < acks.length; i++) {
      assert.ok((acks[i] ?? 0n) > (acks[i - 1] ?? 0n), `acks only advance: ${acks.join(',')}`);
    }
    assert.ok(
      produced.lines.every((line) => line.kind !== 'error'),
      'no error status for the producer',
    );

    const stats = hub.stats();
    assert.equal(stats.packetsIn, count);
    assert.deepEqual(stats.refused, {}, 'no call was refused');
  });

  test('a consumer that connects after the producer sent gets the buffered packets in order', async (t) => {
    const hub = new Hub({ stories: [story], clock: new FakeClock() });
    const port = await hub.listen({ port: 0 });
    t.after(() => hub.close());
    const address = `127.0.0.1:${port}`;
    const count = 5;

    const producer = runConnector(t, ['--address', address, '--role', 'producer', '--count', String(count)]);
    await until(() => hub.stats().streams.buffered === count, 'the packets were buffered');
    const consumed = await runConnector(t, [
      '--address',
      address,
      '--role',
      'consumer',
      '--count',
      String(count),
    ]);
    const produced = await producer;
    assert.equal(consumed.code, 0, consumed.stderr);
    assert.equal(produced.code, 0, produced.stderr);
    assert.deepEqual(
      consumed.lines.filter((line) => line.kind === 'packet').map((line) => line.text),
      Array.from({ length: count }, (_, i) => `packet-${i + 1}`),
    );
    assert.equal(
      produced.lines
        .filter((line) => line.kind === 'ack')
        .map((line) => line.ack)
        .at(-1),
      String(count),
    );
  });

  test('a connector that half-closes when done gets an OK status from the hub', async (t) => {
    const hub = new Hub({ stories: [story], clock: new FakeClock() });
    const port = await hub.listen({ port: 0 });
    t.after(() => hub.close());
    const address = `127.0.0.1:${port}`;
    const consumer = runConnector(t, ['--address', address, '--role', 'consumer', '--count', '1']);
    await until(() => hub.stats().connections === 1, 'the consumer registered');
    const producer = runConnector(t, ['--address', address, '--role', 'producer', '--count', '1']);
    const [consumed, produced] = await Promise.all([consumer, producer]);
    const endOf = (finished: Finished): unknown => finished.lines.find((line) => line.kind === 'end')?.status;
    assert.equal(endOf(consumed), 0, 'the consumer’s call ended with OK');
    assert.equal(endOf(produced), 0, 'the producer’s call ended with OK');
  });
});
