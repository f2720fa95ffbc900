// The runtime runs functions written with the official Apache Flink StateFun JS SDK
// (apache-flink-statefun@3.3.0, served over HTTP by its own `handler()`, reached as a remote
// endpoint) exactly as it runs the same functions written with weft/statefun in-process.
//
// One application, a shopping cart and its stock (cart-model.ts), is written once with each SDK
// (cart-logic-weft.ts, cart-logic-official.ts). Four deployments run side by side on their own
// RuntimeHarness (memory store, FakeClock): both functions in-process, both official over HTTP,
// and the two mixes, so that messages cross between SDKs both ways. Each test feeds all four the
// same messages and moves their clocks in step; after every step the deployments must agree on
// everything observable: every stored value (its typename, bytes and time left to live), the
// egress records, and the runtime's counts (batches, requests, registrations, delayed messages).
// Each test also states what the outcome is, so that four equally wrong runtimes cannot pass.

import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test, type TestContext } from 'node:test';

import { fromBinary } from '@bufbuild/protobuf';

import { KafkaProducerRecordSchema } from '../../src/gen/statefun/kafka-egress_pb.ts';
import { FakeClock } from '../../src/internal/fake-clock.ts';
import type { RuntimeLogger } from '../../src/runtime/runtime.ts';
import type { EndpointSpec } from '../../src/runtime/remote/endpoint-config.ts';
import type { StateEntry } from '../../src/runtime/store/state-store.ts';
import { KAFKA_PRODUCER_RECORD_TYPENAME } from '../../src/statefun/egress.ts';
import { StatefulFunctions, intType, stringType } from '../../src/statefun/index.ts';
import { RuntimeHarness } from '../../src/testing/runtime-harness.ts';
import { bindOfficialCart, bindOfficialStock } from './cart-logic-official.ts';
import {
  cartCommandType,
  cartMessage,
  registerWeftCart,
  registerWeftStock,
  stockMessage,
} from './cart-logic-weft.ts';
import {
  CART_TYPE,
  ITEMS_TTL_MS,
  ITEMS_TYPENAME,
  ORDERS_EGRESS,
  RECEIPTS_EGRESS,
  RESERVATION_MS,
  SESSION_TTL_MS,
  STOCK_TYPE,
  type StockChange,
} from './cart-model.ts';
import { describeReply, hex, invokeOfficial, official, toFunction, typed } from './official-sdk.ts';

const MINUTE = 60_000;

// ---------------------------------------------------------------------------------------------
// Deployments: which SDK serves which function.
// ---------------------------------------------------------------------------------------------

type Sdk = 'weft' | 'official';

interface Deployment {
  readonly cart: Sdk;
  readonly stock: Sdk;
}

const DEPLOYMENTS: readonly Deployment[] = [
  { cart: 'weft', stock: 'weft' },
  { cart: 'official', stock: 'official' },
  { cart: 'weft', stock: 'official' },
  { cart: 'official', stock: 'weft' },
];

/** The addresses every observation reads. */
const CARTS = ['c1', 'c2'] as const;
const ITEMS = ['apple', 'pear', 'kiwi'] as const;

/** A stored value as the runtime keeps it, decoded for reading and in bytes for comparing. */
interface StoredView {
  readonly typename: string;
  readonly value: unknown;
  readonly hex: string;
  /** Time left before it expires, or null for a value without TTL. */
  readonly expiresInMs: number | null;
}

type AddressView = Readonly<Record<string, StoredView>>;

interface Observation {
  readonly carts: Readonly<Record<string, AddressView>>;
  readonly stock: Readonly<Record<string, AddressView>>;
  /** Kafka records, decoded from the KafkaProducerRecord the function emitted. */
  readonly orders: readonly {
    readonly typename: string;
    readonly topic: string;
    readonly key: string;
    readonly value: unknown;
    readonly recordHex: string;
  }[];
  readonly receipts: readonly { readonly typename: string; readonly value: unknown; readonly hex: string }[];
  readonly runtime: {
    readonly batches: number;
    readonly requests: number;
    readonly batchFailures: number;
    readonly registrations: unknown;
    readonly delayedFired: number;
    /** From the store, so cancellations count at once. */
    readonly delayedPending: number;
    readonly inbox: number;
  };
  /** What the runtime logged as an error: nothing, in every test. */
  readonly errors: readonly string[];
}

function decodeStored(typename: string, bytes: Uint8Array): unknown {
  if (typename === intType.typeName.toString()) return intType.deserialize(bytes);
  if (typename === stringType.typeName.toString()) return stringType.deserialize(bytes);
  return JSON.parse(Buffer.from(bytes).toString('utf8')) as unknown;
}

class RunningDeployment {
  readonly name: string;
  readonly harness: RuntimeHarness;
  /** Requests the official SDK's HTTP server answered; none when every function is in-process. */
  readonly served: { requests: number };
  readonly #server: http.Server | undefined;
  readonly #errors: string[];

  private constructor(
    name: string,
    harness: RuntimeHarness,
    server: http.Server | undefined,
    served: { requests: number },
    errors: string[],
  ) {
    this.name = name;
    this.harness = harness;
    this.#server = server;
    this.served = served;
    this.#errors = errors;
  }

  static async start(deployment: Deployment): Promise<RunningDeployment> {
    const functions = new StatefulFunctions();
    const statefun = new official.StateFun();
    const officialTypes: string[] = [];
    if (deployment.cart === 'weft') registerWeftCart(functions);
    else {
      bindOfficialCart(statefun);
      officialTypes.push(CART_TYPE);
    }
    if (deployment.stock === 'weft') registerWeftStock(functions);
    else {
      bindOfficialStock(statefun);
      officialTypes.push(STOCK_TYPE);
    }

    let server: http.Server | undefined;
    const served = { requests: 0 };
    const endpoints: EndpointSpec[] = [];
    if (officialTypes.length > 0) {
      const handle = statefun.handler();
      server = http.createServer((request, response) => {
        served.requests += 1;
        void handle(request, response);
      });
      await new Promise<void>((resolve) => {
        server?.listen(0, '127.0.0.1', resolve);
      });
      const { port } = server.address() as AddressInfo;
      for (const type of officialTypes) {
        endpoints.push({ functions: type, urlPathTemplate: `http://127.0.0.1:${port}/{function.name}` });
      }
    }

    const errors: string[] = [];
    const logger: RuntimeLogger = {
      warn: () => undefined,
      error: (message) => errors.push(message),
    };
    const harness = await RuntimeHarness.start({
      ...(officialTypes.length < 2 ? { functions } : {}),
      ...(endpoints.length > 0 ? { endpoints } : {}),
      egress: [ORDERS_EGRESS, RECEIPTS_EGRESS],
      clock: new FakeClock(),
      logger,
    });
    const name = `cart: ${deployment.cart}, stock: ${deployment.stock}`;
    return new RunningDeployment(name, harness, server, served, errors);
  }

  async observe(): Promise<Observation> {
    const { harness } = this;
    const now = harness.clock.wallTimeMs();
    const view = async (type: string, id: string): Promise<AddressView> => {
      const [namespace, name] = type.split('/') as [string, string];
      const entries: Map<string, StateEntry> = await harness.store.readState([namespace, name, id], now);
      const values: Record<string, StoredView> = {};
      for (const [valueName, entry] of [...entries].sort(([a], [b]) => a.localeCompare(b))) {
        values[valueName] = {
          typename: entry.typename,
          value: decodeStored(entry.typename, entry.value),
          hex: hex(entry.value),
          expiresInMs: entry.expiresAt === undefined ? null : entry.expiresAt - now,
        };
      }
      return values;
    };
    const carts: Record<string, AddressView> = {};
    for (const id of CARTS) carts[id] = await view(CART_TYPE, id);
    const stock: Record<string, AddressView> = {};
    for (const id of ITEMS) stock[id] = await view(STOCK_TYPE, id);
    const stats = harness.runtime.stats();
    const counts = await harness.store.counts();
    return {
      carts,
      stock,
      orders: harness.egress(ORDERS_EGRESS).map((record) => {
        assert.equal(record.typename, KAFKA_PRODUCER_RECORD_TYPENAME);
        const kafka = fromBinary(KafkaProducerRecordSchema, record.value);
        return {
          typename: record.typename,
          topic: kafka.topic,
          key: kafka.key,
          value: JSON.parse(Buffer.from(kafka.valueBytes).toString('utf8')) as unknown,
          recordHex: hex(record.value),
        };
      }),
      receipts: harness.egress(RECEIPTS_EGRESS).map((record) => ({
        typename: record.typename,
        value: JSON.parse(Buffer.from(record.value).toString('utf8')) as unknown,
        hex: hex(record.value),
      })),
      runtime: {
        batches: stats.batches,
        requests: stats.requests,
        batchFailures: stats.batchFailures,
        registrations: stats.registrations,
        delayedFired: stats.delayed.fired,
        delayedPending: counts.delayedMessages,
        inbox: counts.inboxMessages,
      },
      errors: [...this.#errors],
    };
  }

  async close(): Promise<void> {
    await this.harness.close();
    const server = this.#server;
    if (server === undefined) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => {
      server.close(() => {
        resolve();
      });
    });
  }
}

/**
 * The four deployments driven in step. Times are given from the test's start (`at(15 * MINUTE)`),
 * so a test reads as a timeline.
 */
class Shop {
  readonly deployments: readonly RunningDeployment[];
  #elapsedMs = 0;

  private constructor(deployments: readonly RunningDeployment[]) {
    this.deployments = deployments;
  }

  static async open(t: TestContext): Promise<Shop> {
    const deployments: RunningDeployment[] = [];
    const shop = new Shop(deployments);
    t.after(() => shop.close());
    for (const deployment of DEPLOYMENTS) deployments.push(await RunningDeployment.start(deployment));
    return shop;
  }

  /** Sends a command to cart `cartId` from outside (no caller), as an ingress does, and settles. */
  async command(cartId: string, command: unknown): Promise<void> {
    for (const deployment of this.deployments) await deployment.harness.send(cartMessage(cartId, command));
  }

  /**
   * Sends the commands without waiting in between, so that those arriving while a batch runs
   * go as the next batch, then settles. Where the batches split depends on timing.
   */
  async burst(commands: readonly (readonly [cartId: string, command: unknown])[]): Promise<void> {
    for (const { harness } of this.deployments) {
      for (const [cartId, command] of commands)
        await harness.runtime.sendMessage(cartMessage(cartId, command));
      await harness.settle();
    }
  }

  /** Sends a stock change from outside (no caller). */
  async stockChange(item: string, change: StockChange): Promise<void> {
    for (const deployment of this.deployments) await deployment.harness.send(stockMessage(item, change));
  }

  /** Moves every clock to `ms` after the test's start. */
  async at(ms: number): Promise<void> {
    const step = ms - this.#elapsedMs;
    assert.ok(step >= 0, `time only moves forward (at ${ms} ms, now ${this.#elapsedMs} ms)`);
    for (const deployment of this.deployments) await deployment.harness.advance(step);
    this.#elapsedMs = ms;
  }

  /**
   * What every deployment shows, checked to be the same everywhere. `sameBatching: false` leaves
   * out the counts of batches and requests, which depend on how messages fell into batches.
   */
  async observe(options: { sameBatching?: boolean } = {}): Promise<Observation> {
    const comparable = (observation: Observation): unknown =>
      options.sameBatching === false
        ? { ...observation, runtime: { ...observation.runtime, batches: 0, requests: 0 } }
        : observation;
    const [first, ...others] = this.deployments as [RunningDeployment, ...RunningDeployment[]];
    const expected = await first.observe();
    for (const deployment of others) {
      assert.deepEqual(
        comparable(await deployment.observe()),
        comparable(expected),
        `(${deployment.name}) and (${first.name}) differ`,
      );
    }
    assert.deepEqual(expected.errors, [], 'the runtime logged no error');
    assert.equal(expected.runtime.batchFailures, 0, 'no batch failed');
    assert.equal(expected.runtime.inbox, 0, 'every message ran');
    return expected;
  }

  async close(): Promise<void> {
    for (const deployment of this.deployments) await deployment.close();
  }
}

/** The decoded values of an address, by name. */
function valuesOf(view: AddressView | undefined): Record<string, unknown> {
  return Object.fromEntries(Object.entries(view ?? {}).map(([name, stored]) => [name, stored.value]));
}

/** Time left to live of each value of an address, by name. */
function expiriesOf(view: AddressView | undefined): Record<string, number | null> {
  return Object.fromEntries(Object.entries(view ?? {}).map(([name, stored]) => [name, stored.expiresInMs]));
}

// ---------------------------------------------------------------------------------------------
// The tests.
// ---------------------------------------------------------------------------------------------

describe('the runtime runs official-SDK functions over HTTP as it runs weft/statefun in-process', () => {
  test('state after each step, and messages between functions carrying the sender as caller', async (t) => {
    const shop = await Shop.open(t);

    await shop.command('c1', { action: 'add', item: 'apple', quantity: 2 });
    let seen = await shop.observe();
    assert.deepEqual(valuesOf(seen.carts['c1']), { items: { apple: 2 }, last_seen: 'add apple' });
    assert.deepEqual(valuesOf(seen.stock['apple']), { last_caller: 'shop/cart/c1', reserved: 2 });
    assert.equal(seen.carts['c1']?.['items']?.typename, ITEMS_TYPENAME);

    await shop.command('c2', { action: 'add', item: 'apple', quantity: 1 });
    await shop.command('c2', { action: 'add', item: 'pear', quantity: 3 });
    seen = await shop.observe();
    assert.deepEqual(valuesOf(seen.carts['c2']), { items: { apple: 1, pear: 3 }, last_seen: 'add pear' });
    assert.deepEqual(valuesOf(seen.stock['apple']), { last_caller: 'shop/cart/c2', reserved: 3 });
    assert.deepEqual(valuesOf(seen.stock['pear']), { last_caller: 'shop/cart/c2', reserved: 3 });

    await shop.command('c1', { action: 'remove', item: 'apple' });
    seen = await shop.observe();
    assert.deepEqual(valuesOf(seen.carts['c1']), { items: {}, last_seen: 'remove apple' });
    assert.deepEqual(valuesOf(seen.stock['apple']), { last_caller: 'shop/cart/c1', reserved: 1 });

    // A stock change from an ingress has no caller.
    await shop.stockChange('kiwi', { kind: 'reserve', quantity: 4, cart: 'walk-in' });
    seen = await shop.observe();
    assert.deepEqual(valuesOf(seen.stock['kiwi']), { last_caller: 'ingress', reserved: 4 });
  });

  test('a delayed message arrives at its due time and not before; a cancelled one never arrives', async (t) => {
    const shop = await Shop.open(t);
    await shop.command('c1', { action: 'add', item: 'apple', quantity: 2 }); // held until 15 min
    await shop.at(1 * MINUTE);
    await shop.command('c1', { action: 'add', item: 'pear', quantity: 1 }); // held until 16 min
    await shop.at(2 * MINUTE);
    await shop.command('c1', { action: 'remove', item: 'pear' }); // its hold is cancelled
    await shop.at(4 * MINUTE);
    await shop.command('c1', { action: 'add', item: 'kiwi', quantity: 1 }); // held until 19 min
    await shop.at(5 * MINUTE);
    // Cancels the hold until 19 min and holds again until 20 min, in one batch, under one token.
    await shop.command('c1', { action: 'add', item: 'kiwi', quantity: 1 });
    let seen = await shop.observe();
    assert.deepEqual(seen.carts['c1']?.['items']?.value, { apple: 2, kiwi: 2 });
    assert.equal(seen.runtime.delayedPending, 2);

    await shop.at(RESERVATION_MS - 1);
    seen = await shop.observe();
    assert.deepEqual(seen.carts['c1']?.['items']?.value, { apple: 2, kiwi: 2 }, 'not before its due time');
    assert.equal(seen.runtime.delayedFired, 0);

    await shop.at(RESERVATION_MS);
    seen = await shop.observe();
    assert.deepEqual(seen.carts['c1']?.['items']?.value, { kiwi: 2 }, 'the apples are no longer held');
    assert.deepEqual(valuesOf(seen.stock['apple']), { last_caller: 'shop/cart/c1', reserved: 0 });
    assert.equal(seen.runtime.delayedFired, 1);

    await shop.at(19 * MINUTE);
    seen = await shop.observe();
    assert.deepEqual(seen.carts['c1']?.['items']?.value, { kiwi: 2 }, 'the replaced hold never fires');
    assert.deepEqual(valuesOf(seen.stock['pear']), { last_caller: 'shop/cart/c1', reserved: 0 });
    assert.equal(seen.runtime.delayedFired, 1, 'the cancelled pear hold never fired');

    await shop.at(20 * MINUTE - 1);
    seen = await shop.observe();
    assert.deepEqual(seen.carts['c1']?.['items']?.value, { kiwi: 2 });

    await shop.at(20 * MINUTE);
    seen = await shop.observe();
    assert.deepEqual(seen.carts['c1']?.['items']?.value, {});
    assert.deepEqual(valuesOf(seen.stock['kiwi']), { last_caller: 'shop/cart/c1', reserved: 0 });
    assert.equal(seen.runtime.delayedFired, 2);
    assert.equal(seen.runtime.delayedPending, 0);
  });

  test('a delayed message to itself sent from outside is not honoured: the caller tells them apart', async (t) => {
    const shop = await Shop.open(t);
    await shop.command('c1', { action: 'add', item: 'apple', quantity: 2 });
    await shop.command('c1', { action: 'expire-reservation', item: 'apple' });
    const seen = await shop.observe();
    assert.deepEqual(seen.carts['c1']?.['items']?.value, { apple: 2 });
  });

  test('expire-after-write counts from the last write; expire-after-call from the last call', async (t) => {
    const shop = await Shop.open(t);
    await shop.command('c2', { action: 'add', item: 'kiwi', quantity: 1 });
    let seen = await shop.observe();
    assert.deepEqual(expiriesOf(seen.carts['c2']), { items: ITEMS_TTL_MS, last_seen: SESSION_TTL_MS });

    await shop.at(1 * MINUTE);
    await shop.command('c2', { action: 'remove', item: 'kiwi' }); // the last write of `items`
    // Heartbeats are calls that write nothing: they keep `last_seen` alive, not `items`.
    for (const minute of [9, 18, 27]) {
      await shop.at(minute * MINUTE);
      await shop.command('c2', { action: 'heartbeat' });
      seen = await shop.observe();
      assert.deepEqual(expiriesOf(seen.carts['c2']), {
        items: ITEMS_TTL_MS - (minute - 1) * MINUTE,
        last_seen: SESSION_TTL_MS,
      });
    }

    await shop.at(ITEMS_TTL_MS + 1 * MINUTE - 1);
    seen = await shop.observe();
    assert.deepEqual(valuesOf(seen.carts['c2']), { items: {}, last_seen: 'remove kiwi' });

    await shop.at(ITEMS_TTL_MS + 1 * MINUTE);
    seen = await shop.observe();
    assert.deepEqual(valuesOf(seen.carts['c2']), { last_seen: 'remove kiwi' }, '30 min after the last write');

    await shop.at(27 * MINUTE + SESSION_TTL_MS - 1);
    seen = await shop.observe();
    assert.deepEqual(valuesOf(seen.carts['c2']), { last_seen: 'remove kiwi' });

    await shop.at(27 * MINUTE + SESSION_TTL_MS);
    seen = await shop.observe();
    assert.deepEqual(valuesOf(seen.carts['c2']), {}, '10 min after the last call');

    // The functions never see an expired value: the cart starts afresh.
    await shop.command('c2', { action: 'add', item: 'pear', quantity: 1 });
    seen = await shop.observe();
    assert.deepEqual(valuesOf(seen.carts['c2']), { items: { pear: 1 }, last_seen: 'add pear' });
  });

  test('checkout: the same Kafka record and generic egress record, and no hold fires after it', async (t) => {
    const shop = await Shop.open(t);
    await shop.command('c1', { action: 'add', item: 'apple', quantity: 2 });
    await shop.command('c1', { action: 'add', item: 'pear', quantity: 1 });
    await shop.command('c1', { action: 'checkout' });
    await shop.command('c2', { action: 'checkout' }); // an empty cart: nothing to send
    let seen = await shop.observe();
    assert.deepEqual(
      seen.orders.map(({ topic, key, value }) => ({ topic, key, value })),
      [{ topic: 'orders', key: 'c1', value: { cart: 'c1', items: { apple: 2, pear: 1 } } }],
    );
    assert.deepEqual(
      seen.receipts.map(({ typename, value }) => ({ typename, value })),
      [
        {
          typename: 'com.example.shop/Receipt',
          value: { cart: 'c1', items: { apple: 2, pear: 1 }, units: 3 },
        },
      ],
    );
    assert.deepEqual(valuesOf(seen.carts['c1']), { last_seen: 'checkout' });
    assert.deepEqual(valuesOf(seen.stock['apple']), { last_caller: 'shop/cart/c1', reserved: 0, sold: 2 });
    assert.deepEqual(valuesOf(seen.stock['pear']), { last_caller: 'shop/cart/c1', reserved: 0, sold: 1 });
    assert.equal(seen.runtime.delayedPending, 0, 'checkout cancelled both holds');

    await shop.at(RESERVATION_MS + MINUTE);
    seen = await shop.observe();
    assert.equal(seen.runtime.delayedFired, 0);
    assert.deepEqual(valuesOf(seen.stock['apple']), { last_caller: 'shop/cart/c1', reserved: 0, sold: 2 });
  });

  test('commands the cart cannot read are dropped alike, without failing a batch', async (t) => {
    const shop = await Shop.open(t);
    for (const command of [
      { action: 'explode' },
      { action: 'add', item: '__proto__', quantity: 1 },
      { action: 'add', item: 'apple', quantity: -1 },
      { action: 'add', item: 'apple', quantity: 1.5 },
      { action: 'add', item: 'apple', quantity: 1_001 },
      null,
      'add apple',
    ]) {
      await shop.command('c1', command);
    }
    const seen = await shop.observe();
    assert.deepEqual(valuesOf(seen.carts['c1']), {});
    assert.equal(seen.runtime.batches, 7);
  });

  test('the incomplete-context round trip: one resend per function type, the same registrations', async (t) => {
    const shop = await Shop.open(t);
    await shop.command('c1', { action: 'add', item: 'apple', quantity: 1 });
    let seen = await shop.observe();
    // A cart batch and a stock batch, each sent twice: first with no values, then with them.
    assert.equal(seen.runtime.batches, 2);
    assert.equal(seen.runtime.requests, 4);
    assert.deepEqual(seen.runtime.registrations, { functionTypes: 2, values: 5, conflicts: 0, refused: 0 });

    await shop.command('c2', { action: 'add', item: 'pear', quantity: 1 });
    await shop.command('c1', { action: 'heartbeat' });
    seen = await shop.observe();
    // New addresses of registered types need no round trip.
    assert.equal(seen.runtime.batches, 5);
    assert.equal(seen.runtime.requests, 7);
    assert.deepEqual(seen.runtime.registrations, { functionTypes: 2, values: 5, conflicts: 0, refused: 0 });
    // Over HTTP indeed: the official SDK's server answered every request of its functions.
    const served = shop.deployments.map(({ name, served }) => [name, served.requests]);
    assert.deepEqual(served, [
      ['cart: weft, stock: weft', 0],
      ['cart: official, stock: official', 7],
      ['cart: weft, stock: official', 3],
      ['cart: official, stock: weft', 4],
    ]);
  });

  test('a backlog run as one batch: each invocation sees the writes before it, in both SDKs', async (t) => {
    const shop = await Shop.open(t);
    // Every value registered first, so that only batching is at stake here.
    await shop.command('c1', { action: 'add', item: 'apple', quantity: 1 });
    await shop.command('c1', { action: 'add', item: 'pear', quantity: 1 });
    await shop.command('c1', { action: 'add', item: 'kiwi', quantity: 1 });
    await shop.command('c1', { action: 'checkout' });
    await shop.burst([
      ['c1', { action: 'add', item: 'apple', quantity: 1 }],
      ['c1', { action: 'add', item: 'pear', quantity: 1 }],
      ['c1', { action: 'add', item: 'apple', quantity: 2 }], // replaces the apple hold, maybe in one batch
      ['c1', { action: 'remove', item: 'pear' }],
      ['c1', { action: 'add', item: 'kiwi', quantity: 1 }],
    ]);
    let seen = await shop.observe({ sameBatching: false });
    assert.deepEqual(valuesOf(seen.carts['c1']), { items: { apple: 3, kiwi: 1 }, last_seen: 'add kiwi' });
    assert.deepEqual(valuesOf(seen.stock['apple']), { last_caller: 'shop/cart/c1', reserved: 3, sold: 1 });
    assert.deepEqual(valuesOf(seen.stock['pear']), { last_caller: 'shop/cart/c1', reserved: 0, sold: 1 });
    assert.equal(seen.runtime.delayedPending, 2);

    await shop.at(RESERVATION_MS);
    seen = await shop.observe({ sameBatching: false });
    assert.deepEqual(valuesOf(seen.carts['c1']), { items: {} });
    assert.equal(seen.runtime.delayedFired, 2);
  });

  // The first request to each address of a type carries no values. Over HTTP, the first batches
  // of several addresses are in flight at once, and each gets an incomplete-context reply; the
  // replies after the first teach the registry nothing new, but their requests did lack the values.
  test('first batches of several addresses of one type in flight at once all complete the round trip', async (t) => {
    const shop = await Shop.open(t);
    await shop.burst([
      ['c1', { action: 'add', item: 'apple', quantity: 1 }],
      ['c2', { action: 'add', item: 'pear', quantity: 1 }],
    ]);
    const seen = await shop.observe({ sameBatching: false });
    assert.deepEqual(valuesOf(seen.carts['c1']), { items: { apple: 1 }, last_seen: 'add apple' });
    assert.deepEqual(valuesOf(seen.carts['c2']), { items: { pear: 1 }, last_seen: 'add pear' });
    assert.deepEqual(valuesOf(seen.stock['pear']), { last_caller: 'shop/cart/c2', reserved: 1 });
  });
});

describe('the two SDKs declare the same values', () => {
  test('names, typenames and expirations in the incomplete-context reply are the same', async () => {
    const ours = registerWeftStock(registerWeftCart(new StatefulFunctions()));
    const theirs = new official.StateFun();
    bindOfficialCart(theirs);
    bindOfficialStock(theirs);
    const heartbeat = typed(cartCommandType, { action: 'heartbeat' });
    const expected = {
      [CART_TYPE]: [
        {
          name: 'items',
          typename: ITEMS_TYPENAME,
          expiration: { mode: 'AFTER_WRITE', afterMs: BigInt(ITEMS_TTL_MS) },
        },
        {
          name: 'last_seen',
          typename: 'io.statefun.types/string',
          expiration: { mode: 'AFTER_INVOKE', afterMs: BigInt(SESSION_TTL_MS) },
        },
      ],
      [STOCK_TYPE]: [
        { name: 'reserved', typename: 'io.statefun.types/int', expiration: null },
        { name: 'sold', typename: 'io.statefun.types/int', expiration: null },
        { name: 'last_caller', typename: 'io.statefun.types/string', expiration: null },
      ],
    };
    for (const [type, missing] of Object.entries(expected)) {
      const request = toFunction(`${type}/x`, [], [{ argument: heartbeat }]);
      const theirReply = await invokeOfficial(theirs, request);
      assert.equal(theirReply.status, 200);
      assert.deepEqual(describeReply(theirReply.body), { kind: 'incomplete', missing }, `official ${type}`);
      assert.deepEqual(
        describeReply(await ours.invoke(request)),
        { kind: 'incomplete', missing },
        `weft ${type}`,
      );
    }
  });
});
