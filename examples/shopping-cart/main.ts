// A small shop on Weft's runtime, in one process: the cart is a weft/statefun function run
// in-process (cart.ts), the stock is a function of the official Apache Flink StateFun JS SDK
// served over HTTP (stock.ts), state lives in an embedded lmdb store in a temporary directory,
// and what the functions send to egress is printed as it arrives. It shows messages between the
// two SDKs, stock holds that expire by delayed message (and ones cancelled before they fire), a
// session value that expires after a time without calls, and a receipt at checkout.
//
// From the repository root: npx tsx --conditions=weft-source examples/shopping-cart/main.ts

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { InProcessSink, Runtime } from 'weft/runtime';

import { cartCommand, cartFunctions } from './cart.ts';
import {
  CART_UPDATES,
  HOLD_MS,
  RECEIPTS,
  SESSION_TTL_MS,
  STOCK,
  STOCK_UPDATES,
  type CartUpdate,
  type Receipt,
  type StockUpdate,
} from './shop.ts';
import { serveStock } from './stock.ts';

const startedAt = Date.now();

function say(line: string): void {
  const seconds = ((Date.now() - startedAt) / 1000).toFixed(1);
  console.log(`${seconds.padStart(5)} s  ${line}`);
}

/** Each egress record, printed, and kept so that the steps below can wait for the one they expect. */
class Egress {
  readonly #records: { readonly egress: string; readonly value: unknown }[] = [];
  #arrived: () => void = () => undefined;

  /** A sink for `egress`, whose records are JSON; `describe` says what one means. */
  sink(egress: string, describe: (value: unknown) => string): InProcessSink {
    return new InProcessSink((record) => {
      const value = JSON.parse(Buffer.from(record.value.value).toString('utf8')) as unknown;
      say(describe(value));
      this.#records.push({ egress, value });
      this.#arrived();
    });
  }

  /** Waits for a record of `egress` that `match`es (one already printed counts). */
  async next<T>(egress: string, match: (value: T) => boolean, timeoutMs = 10_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.#records.find((record) => record.egress === egress && match(record.value as T));
      if (found !== undefined) return found.value as T;
      if (Date.now() >= deadline) throw new Error(`no record on ${egress} within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, deadline - Date.now());
        this.#arrived = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  /** A record of `egress` that `match`es, if one was printed already. */
  find<T>(egress: string, match: (value: T) => boolean): T | undefined {
    return this.#records.find((record) => record.egress === egress && match(record.value as T))?.value as
      T | undefined;
  }
}

const egress = new Egress();
const cartUpdates = egress.sink(CART_UPDATES, (value) => {
  const update = value as CartUpdate;
  const lastSeen = update.lastSeen === null ? '(session expired)' : JSON.stringify(update.lastSeen);
  return `cart ${update.cart}: ${update.event}; items ${JSON.stringify(update.items)}, last seen ${lastSeen}`;
});
const stockUpdates = egress.sink(STOCK_UPDATES, (value) => {
  const update = value as StockUpdate;
  return `  stock ${update.item}: ${update.reserved} reserved, ${update.sold} sold (asked by ${update.by})`;
});
const receipts = egress.sink(RECEIPTS, (value) => {
  const receipt = value as Receipt;
  return `  receipt for ${receipt.cart}: ${receipt.units} unit(s), ${JSON.stringify(receipt.items)}`;
});
const stockOf = (item: string) => (update: StockUpdate) => update.item === item;

const dataDir = await mkdtemp(path.join(tmpdir(), 'weft-shop-'));
const stock = await serveStock();
const runtime = await Runtime.open({
  dataDir,
  functions: cartFunctions,
  endpoints: [{ functions: STOCK, urlPathTemplate: stock.url }],
  egress: { [CART_UPDATES]: cartUpdates, [STOCK_UPDATES]: stockUpdates, [RECEIPTS]: receipts },
});
say(`runtime open on ${dataDir}; stock served by the official SDK at ${stock.url}`);

try {
  say(`alice adds apples and a pear; each item holds its stock for ${HOLD_MS} ms`);
  await runtime.sendMessage(cartCommand('alice', { action: 'add', item: 'apple', quantity: 2 }));
  await egress.next(STOCK_UPDATES, stockOf('apple'));
  await runtime.sendMessage(cartCommand('alice', { action: 'add', item: 'pear', quantity: 1 }));
  await egress.next(STOCK_UPDATES, stockOf('pear'));

  say('alice removes the pear: its hold is cancelled before it fires');
  await runtime.sendMessage(cartCommand('alice', { action: 'remove', item: 'pear' }));
  await egress.next<StockUpdate>(STOCK_UPDATES, (update) => update.item === 'pear' && update.reserved === 0);

  say('bob adds a kiwi and checks out: his hold is cancelled too');
  await runtime.sendMessage(cartCommand('bob', { action: 'add', item: 'kiwi', quantity: 1 }));
  await egress.next(STOCK_UPDATES, stockOf('kiwi'));
  await runtime.sendMessage(cartCommand('bob', { action: 'checkout' }));
  await egress.next<StockUpdate>(STOCK_UPDATES, (update) => update.item === 'kiwi' && update.sold === 1);

  say('waiting for the apples’ hold to expire…');
  await egress.next<CartUpdate>(CART_UPDATES, (update) => update.event === 'hold on apple expired');
  await egress.next<StockUpdate>(STOCK_UPDATES, (update) => update.item === 'apple' && update.reserved === 0);
  const cancelled = egress.find<CartUpdate>(CART_UPDATES, (update) =>
    /hold on (pear|kiwi)/.test(update.event),
  );
  say(`cancelled holds that fired anyway: ${cancelled === undefined ? 'none' : cancelled.event}`);

  say(`no call to alice's cart for ${SESSION_TTL_MS} ms: her session value expires`);
  await sleep(SESSION_TTL_MS + 250);
  await runtime.sendMessage(cartCommand('alice', { action: 'view' }));
  await egress.next<CartUpdate>(
    CART_UPDATES,
    (update) => update.cart === 'alice' && update.event === 'viewed',
  );

  const stats = runtime.stats();
  say(
    `runtime: ${stats.batches} batches, ${stats.requests} requests (incomplete-context resends included), ` +
      `${stats.delayed.fired} delayed message fired, ${stats.registrations.values} values registered`,
  );
} finally {
  await runtime.close();
  await stock.close();
  await rm(dataDir, { recursive: true, force: true });
}
say('closed');
