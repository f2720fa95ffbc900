// The shopping cart (see cart-model.ts) written with weft/statefun. cart-logic-official.ts is the
// same logic written with the official Apache Flink StateFun JS SDK, line for line where it can be.

import {
  Address,
  StatefulFunctions,
  egressMessage,
  intType,
  jsonType,
  kafkaEgressMessage,
  messageBuilder,
  stringType,
  valueSpec,
  type Context,
  type Message,
} from '../../src/statefun/index.ts';
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

export const cartCommandType = jsonType<CartCommand>(CART_COMMAND_TYPENAME);
const stockChangeType = jsonType<StockChange>(STOCK_CHANGE_TYPENAME);
const itemsType = jsonType<Items>(ITEMS_TYPENAME);
const orderType = jsonType<Order>(ORDER_TYPENAME);
const receiptType = jsonType<Receipt>(RECEIPT_TYPENAME);

export const itemsSpec = valueSpec({ name: 'items', type: itemsType, expireAfterWrite: ITEMS_TTL_MS });
export const lastSeenSpec = valueSpec({
  name: 'last_seen',
  type: stringType,
  expireAfterCall: SESSION_TTL_MS,
});
export const reservedSpec = valueSpec({ name: 'reserved', type: intType });
export const soldSpec = valueSpec({ name: 'sold', type: intType });
export const lastCallerSpec = valueSpec({ name: 'last_caller', type: stringType });

/** A command for cart `cartId`, as an ingress would send it. */
export function cartMessage(cartId: string, command: unknown): Message {
  return messageBuilder({
    target: Address.of(CART_TYPE, cartId),
    value: command as CartCommand,
    valueType: cartCommandType,
  });
}

/** A stock change for `item`, from a function or (with no caller) from an ingress. */
export function stockMessage(item: string, change: StockChange): Message {
  return messageBuilder({ target: Address.of(STOCK_TYPE, item), value: change, valueType: stockChangeType });
}

export function registerWeftCart(functions: StatefulFunctions): StatefulFunctions {
  return functions.withSpec({
    typeName: CART_TYPE,
    specs: [itemsSpec, lastSeenSpec],
    fn: cart,
  });
}

export function registerWeftStock(functions: StatefulFunctions): StatefulFunctions {
  return functions.withSpec({
    typeName: STOCK_TYPE,
    specs: [reservedSpec, soldSpec, lastCallerSpec],
    fn: stock,
  });
}

function cart(context: Context, message: Message): void {
  const command = message.is(cartCommandType) ? parseCommand(message.as(cartCommandType)) : undefined;
  if (command === undefined) return;
  const cartId = context.self.id;
  let items = parseItems(context.storage.get(itemsSpec));
  switch (command.action) {
    case 'add': {
      const { item, quantity } = command;
      const held = items[item] ?? 0;
      if (held + quantity > MAX_QUANTITY) return;
      const token = reservationToken(item);
      // The item is held already: a new hold replaces that one (a pending token cannot be reused).
      if (held > 0) context.cancelDelayedMessage(token);
      items[item] = held + quantity;
      context.storage.set(itemsSpec, items);
      context.storage.set(lastSeenSpec, `add ${item}`);
      context.send(stockMessage(item, { kind: 'reserve', quantity, cart: cartId }));
      context.sendAfter(RESERVATION_MS, cartMessage(cartId, { action: 'expire-reservation', item }), token);
      return;
    }
    case 'remove': {
      const { item } = command;
      context.storage.set(lastSeenSpec, `remove ${item}`);
      const quantity = items[item];
      if (quantity === undefined) return;
      items = without(items, item);
      context.storage.set(itemsSpec, items);
      context.cancelDelayedMessage(reservationToken(item));
      context.send(stockMessage(item, { kind: 'release', quantity, cart: cartId }));
      return;
    }
    case 'expire-reservation': {
      // Only the cart's own delayed message may drop an item: it arrives with the cart as caller.
      if (context.caller?.toString() !== context.self.toString()) return;
      const { item } = command;
      const quantity = items[item];
      if (quantity === undefined) return;
      items = without(items, item);
      context.storage.set(itemsSpec, items);
      context.send(stockMessage(item, { kind: 'release', quantity, cart: cartId }));
      return;
    }
    case 'checkout': {
      context.storage.set(lastSeenSpec, 'checkout');
      if (unitsOf(items) === 0) return;
      context.sendEgress(
        kafkaEgressMessage({
          typeName: ORDERS_EGRESS,
          topic: ORDERS_TOPIC,
          key: cartId,
          value: { cart: cartId, items },
          valueType: orderType,
        }),
      );
      context.sendEgress(
        egressMessage({
          typeName: RECEIPTS_EGRESS,
          value: { cart: cartId, items, units: unitsOf(items) },
          valueType: receiptType,
        }),
      );
      for (const [item, quantity] of Object.entries(items)) {
        context.cancelDelayedMessage(reservationToken(item));
        context.send(stockMessage(item, { kind: 'sell', quantity, cart: cartId }));
      }
      context.storage.remove(itemsSpec);
      return;
    }
    case 'heartbeat':
      return;
  }
}

function stock(context: Context, message: Message): void {
  const change = message.is(stockChangeType) ? parseStockChange(message.as(stockChangeType)) : undefined;
  if (change === undefined) return;
  const reserved = context.storage.get(reservedSpec) ?? 0;
  const sold = context.storage.get(soldSpec) ?? 0;
  switch (change.kind) {
    case 'reserve':
      context.storage.set(reservedSpec, reserved + change.quantity);
      break;
    case 'release':
      context.storage.set(reservedSpec, Math.max(0, reserved - change.quantity));
      break;
    case 'sell':
      context.storage.set(reservedSpec, Math.max(0, reserved - change.quantity));
      context.storage.set(soldSpec, sold + change.quantity);
      break;
  }
  context.storage.set(lastCallerSpec, context.caller?.toString() ?? 'ingress');
}
