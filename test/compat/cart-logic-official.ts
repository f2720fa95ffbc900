// The shopping cart (see cart-model.ts) written with the official Apache Flink StateFun JS SDK
// (apache-flink-statefun@3.3.0). cart-logic-weft.ts is the same logic written with weft/statefun.
// Where the SDKs differ in idiom: storage is a property per value (null when unset, assigning
// null deletes), egress goes through `send`, messages name their target by typename and id.

import {
  CART_COMMAND_TYPENAME,
  CART_TYPE,
  ITEMS_TTL_MS,
  ITEMS_TYPENAME,
  MAX_QUANTITY,
  ORDER_TYPENAME,
  ORDERS_EGRESS,
  ORDERS_TOPIC,
  RECEIPT_TYPENAME,
  RECEIPTS_EGRESS,
  RESERVATION_MS,
  SESSION_TTL_MS,
  STOCK_CHANGE_TYPENAME,
  STOCK_TYPE,
  parseCommand,
  parseItems,
  parseStockChange,
  reservationToken,
  unitsOf,
  without,
  type CartCommand,
  type Items,
  type Order,
  type Receipt,
  type StockChange,
} from './cart-model.ts';
import {
  official,
  type OfficialContext,
  type OfficialMessage,
  type OfficialStateFun,
} from './official-sdk.ts';

const { StateFun } = official;

const cartCommandType = StateFun.jsonType<CartCommand>(CART_COMMAND_TYPENAME);
const stockChangeType = StateFun.jsonType<StockChange>(STOCK_CHANGE_TYPENAME);
const itemsType = StateFun.jsonType<Items>(ITEMS_TYPENAME);
const orderType = StateFun.jsonType<Order>(ORDER_TYPENAME);
const receiptType = StateFun.jsonType<Receipt>(RECEIPT_TYPENAME);

interface CartStorage {
  items: Items | null;
  last_seen: string | null;
}

interface StockStorage {
  reserved: number | null;
  sold: number | null;
  last_caller: string | null;
}

function cartMessage(cartId: string, command: CartCommand): OfficialMessage {
  return official.messageBuilder({
    typename: CART_TYPE,
    id: cartId,
    value: command,
    valueType: cartCommandType,
  });
}

function stockMessage(item: string, change: StockChange): OfficialMessage {
  return official.messageBuilder({
    typename: STOCK_TYPE,
    id: item,
    value: change,
    valueType: stockChangeType,
  });
}

export function bindOfficialCart(statefun: OfficialStateFun): void {
  statefun.bind<CartStorage>({
    typename: CART_TYPE,
    specs: [
      { name: 'items', type: itemsType, expireAfterWrite: ITEMS_TTL_MS },
      { name: 'last_seen', type: StateFun.stringType(), expireAfterCall: SESSION_TTL_MS },
    ],
    fn: cart,
  });
}

export function bindOfficialStock(statefun: OfficialStateFun): void {
  statefun.bind<StockStorage>({
    typename: STOCK_TYPE,
    specs: [
      { name: 'reserved', type: StateFun.intType() },
      { name: 'sold', type: StateFun.intType() },
      { name: 'last_caller', type: StateFun.stringType() },
    ],
    fn: stock,
  });
}

function cart(context: OfficialContext<CartStorage>, message: OfficialMessage): void {
  const command = message.is(cartCommandType) ? parseCommand(message.as(cartCommandType)) : undefined;
  if (command === undefined) return;
  const cartId = context.self.id;
  let items = parseItems(context.storage.items);
  switch (command.action) {
    case 'add': {
      const { item, quantity } = command;
      const held = items[item] ?? 0;
      if (held + quantity > MAX_QUANTITY) return;
      const token = reservationToken(item);
      // The item is held already: a new hold replaces that one (a pending token cannot be reused).
      if (held > 0) context.cancelDelayedMessage(token);
      items[item] = held + quantity;
      context.storage.items = items;
      context.storage.last_seen = `add ${item}`;
      context.send(stockMessage(item, { kind: 'reserve', quantity, cart: cartId }));
      context.sendAfter(RESERVATION_MS, cartMessage(cartId, { action: 'expire-reservation', item }), token);
      return;
    }
    case 'remove': {
      const { item } = command;
      context.storage.last_seen = `remove ${item}`;
      const quantity = items[item];
      if (quantity === undefined) return;
      items = without(items, item);
      context.storage.items = items;
      context.cancelDelayedMessage(reservationToken(item));
      context.send(stockMessage(item, { kind: 'release', quantity, cart: cartId }));
      return;
    }
    case 'expire-reservation': {
      // Only the cart's own delayed message may drop an item: it arrives with the cart as caller.
      const caller = context.caller;
      if (caller?.typename !== context.self.typename || caller.id !== context.self.id) return;
      const { item } = command;
      const quantity = items[item];
      if (quantity === undefined) return;
      items = without(items, item);
      context.storage.items = items;
      context.send(stockMessage(item, { kind: 'release', quantity, cart: cartId }));
      return;
    }
    case 'checkout': {
      context.storage.last_seen = 'checkout';
      if (unitsOf(items) === 0) return;
      context.send(
        official.kafkaEgressMessage({
          typename: ORDERS_EGRESS,
          topic: ORDERS_TOPIC,
          key: cartId,
          value: { cart: cartId, items },
          valueType: orderType,
        }),
      );
      context.send(
        official.egressMessageBuilder({
          typename: RECEIPTS_EGRESS,
          value: { cart: cartId, items, units: unitsOf(items) },
          valueType: receiptType,
        }),
      );
      for (const [item, quantity] of Object.entries(items)) {
        context.cancelDelayedMessage(reservationToken(item));
        context.send(stockMessage(item, { kind: 'sell', quantity, cart: cartId }));
      }
      context.storage.items = null;
      return;
    }
    case 'heartbeat':
      return;
  }
}

function stock(context: OfficialContext<StockStorage>, message: OfficialMessage): void {
  const change = message.is(stockChangeType) ? parseStockChange(message.as(stockChangeType)) : undefined;
  if (change === undefined) return;
  const reserved = context.storage.reserved ?? 0;
  const sold = context.storage.sold ?? 0;
  switch (change.kind) {
    case 'reserve':
      context.storage.reserved = reserved + change.quantity;
      break;
    case 'release':
      context.storage.reserved = Math.max(0, reserved - change.quantity);
      break;
    case 'sell':
      context.storage.reserved = Math.max(0, reserved - change.quantity);
      context.storage.sold = sold + change.quantity;
      break;
  }
  const caller = context.caller;
  context.storage.last_caller = caller === null ? 'ingress' : `${caller.typename}/${caller.id}`;
}
