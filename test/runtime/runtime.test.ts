import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { CapacityExceededError } from '../../src/internal/errors.ts';
import { UnknownFunctionTypeError } from '../../src/runtime/errors.ts';
import { MemoryStateStore } from '../../src/runtime/store/memory-store.ts';
import type { Appended, BatchEffects, Envelope } from '../../src/runtime/store/state-store.ts';
import { Runtime } from '../../src/runtime/runtime.ts';
import {
  Address,
  StatefulFunctions,
  egressMessage,
  intType,
  messageBuilder,
  stringType,
  valueSpec,
  type Context,
  type Message,
} from '../../src/statefun/index.ts';
import { FakeClock } from '../../src/internal/fake-clock.ts';
import { RuntimeHarness } from '../../src/testing/runtime-harness.ts';

const count = valueSpec({ name: 'count', type: intType });
const seenBy = valueSpec({ name: 'seen_by', type: stringType });
const counter = (id: string): Address => Address.of('test/counter', id);
const bump = (id: string): Message => messageBuilder({ target: counter(id), value: 1 });
const quiet = { warn: () => undefined, error: () => undefined };

function counterFunctions(
  onCall?: (context: Context, message: Message) => void | Promise<void>,
): StatefulFunctions {
  return new StatefulFunctions().withSpec({
    typeName: 'test/counter',
    specs: [count, seenBy],
    fn: async (context, message) => {
      await onCall?.(context, message);
      context.storage.set(count, (context.storage.get(count) ?? 0) + message.asInt());
      if (context.caller !== null) context.storage.set(seenBy, context.caller.toString());
    },
  });
}

async function countOf(store: MemoryStateStore, id: string, clock: FakeClock): Promise<number> {
  const state = await store.readState(['test', 'counter', id], clock.wallTimeMs());
  const value = state.get('count')?.value;
  return value === undefined ? 0 : intType.deserialize(value);
}

describe('runtime', () => {
  test('runs an in-process function and keeps its state, registering its values on the way', async () => {
    const harness = await RuntimeHarness.start({ functions: counterFunctions(), logger: quiet });
    await harness.send(bump('a'));
    await harness.send(bump('a'));
    await harness.send(bump('b'));
    assert.equal(await harness.state(counter('a'), count), 2);
    assert.equal(await harness.state(counter('b'), count), 1);
    const stats = harness.runtime.stats();
    assert.equal(stats.batches, 3);
    // The first request learned the values through an incomplete-context reply, then ran again.
    assert.equal(stats.requests, 4);
    assert.equal(stats.registrations.values, 2);
    await harness.close();
  });

  test('one batch in flight per address: what arrives meanwhile goes as the next batch', async () => {
    let release: () => void = () => undefined;
    let gate: Promise<void> | undefined = new Promise<void>((resolve) => {
      release = resolve;
    });
    const batchSizes: number[] = [];
    let inBatch = 0;
    const harness = await RuntimeHarness.start({
      functions: counterFunctions(async () => {
        inBatch += 1;
        await gate;
      }),
      logger: quiet,
    });
    const first = harness.runtime.sendMessage(bump('a'));
    await first;
    // Let the first batch start and block.
    for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
    for (let i = 0; i < 5; i++) await harness.runtime.sendMessage(bump('a'));
    batchSizes.push(inBatch);
    gate = undefined;
    release();
    await harness.settle();
    assert.equal(await harness.state(counter('a'), count), 6);
    // The first batch had 1 message; the five that came meanwhile went as one batch.
    assert.equal(harness.runtime.stats().batches, 2);
    assert.deepEqual(batchSizes, [1]);
    await harness.close();
  });

  test('messages between functions carry the sender as caller', async () => {
    const functions = counterFunctions().withSpec({
      typeName: 'test/forwarder',
      fn: (context, message) => {
        context.send(messageBuilder({ target: counter(message.asString()), value: 5 }));
      },
    });
    const harness = await RuntimeHarness.start({ functions, logger: quiet });
    await harness.send(messageBuilder({ target: Address.of('test/forwarder', 'f1'), value: 'x' }));
    assert.equal(await harness.state(counter('x'), count), 5);
    assert.equal(await harness.state(counter('x'), seenBy), 'test/forwarder/f1');
    await harness.close();
  });

  test('delayed messages fire when due, and a cancelled one never does', async () => {
    const functions = counterFunctions().withSpec({
      typeName: 'test/scheduler',
      fn: (context, message) => {
        const command = message.asString();
        if (command === 'schedule') {
          context.sendAfter(60_000, bump('late'), 'late-token');
          context.sendAfter(30_000, bump('soon'));
        } else if (command === 'cancel') {
          context.cancelDelayedMessage('late-token');
        }
      },
    });
    const harness = await RuntimeHarness.start({ functions, logger: quiet });
    const scheduler = Address.of('test/scheduler', 's');
    await harness.send(messageBuilder({ target: scheduler, value: 'schedule' }));
    await harness.advance(29_999);
    assert.equal(await harness.state(counter('soon'), count), undefined);
    await harness.advance(1);
    assert.equal(await harness.state(counter('soon'), count), 1);
    await harness.send(messageBuilder({ target: scheduler, value: 'cancel' }));
    await harness.advance(60_000);
    assert.equal(await harness.state(counter('late'), count), undefined);
    assert.equal(harness.runtime.stats().delayed.fired, 1);
    await harness.close();
  });

  test('egress records reach their sink', async () => {
    const functions = new StatefulFunctions().withSpec({
      typeName: 'test/echo',
      fn: (context, message) => {
        context.sendEgress(
          egressMessage({ typeName: 'test/out', value: message.asString(), valueType: stringType }),
        );
      },
    });
    const harness = await RuntimeHarness.start({ functions, egress: ['test/out'], logger: quiet });
    await harness.send(messageBuilder({ target: Address.of('test/echo', 'e'), value: 'hello' }));
    await harness.send(messageBuilder({ target: Address.of('test/echo', 'e'), value: 'world' }));
    const out = harness.egress('test/out').map((record) => stringType.deserialize(record.value));
    assert.deepEqual(out, ['hello', 'world']);
    await harness.close();
  });

  test('a function that throws parks its address, which runs again later; others go on', async () => {
    let failures = 2;
    const harness = await RuntimeHarness.start({
      functions: counterFunctions((context) => {
        if (context.self.id === 'bad' && failures > 0) {
          failures -= 1;
          throw new Error('boom');
        }
      }),
      logger: quiet,
    });
    await harness.send(bump('bad'));
    await harness.send(bump('good'));
    assert.equal(await harness.state(counter('good'), count), 1);
    assert.equal(await harness.state(counter('bad'), count), undefined);
    assert.equal(harness.runtime.stats().parkedAddresses, 1);
    await harness.advance(60_000);
    await harness.advance(60_000);
    assert.equal(await harness.state(counter('bad'), count), 1);
    assert.equal(harness.runtime.stats().batchFailures, 2);
    assert.equal(harness.runtime.stats().parkedAddresses, 0);
    await harness.close();
  });

  test('a store that fails a commit loses nothing: the batch runs again', async () => {
    class FlakyStore extends MemoryStateStore {
      failNext = 1;
      override async commit(batches: readonly BatchEffects[], now: number): Promise<void> {
        if (this.failNext > 0) {
          this.failNext -= 1;
          throw new Error('disk on fire');
        }
        await super.commit(batches, now);
      }
    }
    const store = new FlakyStore();
    const clock = new FakeClock();
    const runtime = await Runtime.open({ store, functions: counterFunctions(), clock, logger: quiet });
    await runtime.sendMessage(bump('a'));
    for (let i = 0; i < 50; i++) await new Promise((resolve) => setImmediate(resolve));
    assert.equal(runtime.stats().parkedAddresses, 1);
    await clock.advanceAsync(60_000);
    for (let i = 0; i < 50; i++) await new Promise((resolve) => setImmediate(resolve));
    const state = await store.readState(['test', 'counter', 'a'], clock.wallTimeMs());
    assert.equal(intType.deserialize(state.get('count')?.value ?? new Uint8Array()), 1);
    await runtime.close();
  });

  test('a grouped append that fails for an unknown reason fails every send in it, and stores nothing twice', async () => {
    // As if the connection dropped after COMMIT: the messages were stored, the append rejected.
    class LandsThenFails extends MemoryStateStore {
      failNext = true;
      override async append(envelopes: readonly Envelope[], now: number): Promise<Appended[]> {
        const appended = await super.append(envelopes, now);
        if (this.failNext) {
          this.failNext = false;
          throw new Error('connection lost after COMMIT');
        }
        return appended;
      }
    }
    const store = new LandsThenFails();
    const clock = new FakeClock();
    const runtime = await Runtime.open({ store, functions: counterFunctions(), clock, logger: quiet });
    const sends = [runtime.sendMessage(bump('a')), runtime.sendMessage(bump('b'))];
    const outcomes = await Promise.allSettled(sends);
    assert.deepEqual(
      outcomes.map((outcome) => outcome.status),
      ['rejected', 'rejected'],
    );
    // Each message is in the store once: not appended again one by one after the group failed;
    // and what was stored runs now, not after a restart.
    for (let i = 0; i < 50; i++) await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual([await countOf(store, 'a', clock), await countOf(store, 'b', clock)], [1, 1]);
    assert.equal(
      (await store.counts()).inboxMessages +
        (await countOf(store, 'a', clock)) +
        (await countOf(store, 'b', clock)),
      2,
    );
    await runtime.close();
  });

  test('ingress for an unknown type is refused, and a full backlog pushes back', async () => {
    const harness = await RuntimeHarness.start({
      functions: counterFunctions(async () => {
        await new Promise(() => undefined); // never finishes: the backlog only grows
      }),
      limits: { maxNumBatchRequests: 3 },
      logger: quiet,
    });
    await assert.rejects(
      harness.runtime.sendMessage(messageBuilder({ target: Address.of('test/nobody', 'x'), value: 1 })),
      UnknownFunctionTypeError,
    );
    for (let i = 0; i < 3; i++) await harness.runtime.sendMessage(bump('a'));
    await assert.rejects(harness.runtime.sendMessage(bump('a')), CapacityExceededError);
    assert.equal(harness.runtime.stats().ingress.refused, 1);
    // Another address is not held back.
    await harness.runtime.sendMessage(bump('b'));
  });

  test('recovers: messages left in a store run when a runtime opens on it', async () => {
    const store = new MemoryStateStore();
    const clock = new FakeClock();
    await store.append(
      [
        {
          target: ['test', 'counter', 'a'],
          argument: { typename: 'io.statefun.types/int', value: intType.serialize(7) },
        },
      ],
      clock.wallTimeMs(),
    );
    const runtime = await Runtime.open({ store, functions: counterFunctions(), clock, logger: quiet });
    for (let i = 0; i < 50; i++) await new Promise((resolve) => setImmediate(resolve));
    const state = await store.readState(['test', 'counter', 'a'], clock.wallTimeMs());
    assert.equal(intType.deserialize(state.get('count')?.value ?? new Uint8Array()), 7);
    await runtime.close();
  });
});
