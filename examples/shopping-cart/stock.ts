// The stock, written with the official Apache Flink StateFun JavaScript SDK
// (`apache-flink-statefun`) and served over HTTP by that SDK's own handler, as it would be for a
// Flink StateFun cluster. The runtime reaches it as a remote endpoint; nothing here knows Weft.
//
// One address per item: how many units are reserved by carts and how many are sold. Every
// change is reported on the egress `shop/stock-updates`.

import http from 'node:http';
import type { AddressInfo } from 'node:net';

import { StateFun, egressMessageBuilder, type Context, type Message } from 'apache-flink-statefun';

import {
  STOCK,
  STOCK_CHANGE,
  STOCK_UPDATE,
  STOCK_UPDATES,
  parseStockChange,
  type StockChange,
} from './shop.ts';

const stockChangeType = StateFun.jsonType<StockChange>(STOCK_CHANGE);
const stockUpdateType = StateFun.jsonType(STOCK_UPDATE);

/** The official SDK's storage: one property per value, null when unset. */
interface StockStorage {
  reserved: number | null;
  sold: number | null;
}

function stock(context: Context, message: Message): void {
  const change = message.is(stockChangeType) ? parseStockChange(message.as(stockChangeType)) : undefined;
  if (change === undefined) return;
  const storage = context.storage as StockStorage;
  const reserved = storage.reserved ?? 0;
  const sold = storage.sold ?? 0;
  const released = Math.min(reserved, change.quantity);
  switch (change.kind) {
    case 'reserve':
      storage.reserved = reserved + change.quantity;
      break;
    case 'release':
      storage.reserved = reserved - released;
      break;
    case 'sell':
      storage.reserved = reserved - released;
      storage.sold = sold + change.quantity;
      break;
  }
  const caller = context.caller;
  const update = {
    item: context.self.id,
    reserved: storage.reserved,
    sold: storage.sold ?? 0,
    by: caller === null ? 'outside' : `${caller.typename}/${caller.id}`,
  };
  context.send(egressMessageBuilder({ typename: STOCK_UPDATES, value: update, valueType: stockUpdateType }));
}

/** Serves the stock function on 127.0.0.1 at a free port; `url` is the endpoint's URL template. */
export async function serveStock(): Promise<{ url: string; close(): Promise<void> }> {
  const statefun = new StateFun();
  statefun.bind({
    typename: STOCK,
    specs: [
      { name: 'reserved', type: StateFun.intType() },
      { name: 'sold', type: StateFun.intType() },
    ],
    fn: stock,
  });
  const handle = statefun.handler();
  const server = http.createServer((request, response) => {
    void handle(request, response);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/{function.name}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  };
}
