// The cart, written with weft/statefun and run by the runtime in its own process.
//
// It keeps the items (`items`, emptied 10 min after the last change) and what the shopper last
// did (`last_seen`, gone 2 s after the cart's last call: the session). Adding an item reserves
// stock by messaging `shop/stock` and holds it for 2 s with a delayed message to itself under
// the token `hold-<item>`; removing the item cancels that message, and when it does fire, the
// item leaves the cart and its stock is released. Every change is reported on the egress
// `shop/cart-updates`, checkout sends a receipt to `shop/receipts`.

import {
  Address,
  StatefulFunctions,
  egressMessage,
  jsonType,
  messageBuilder,
  stringType,
  valueSpec,
  type Context,
  type Message,
} from 'weft/statefun';

import {
  CART,
  CART_COMMAND,
  CART_UPDATE,
  CART_UPDATES,
  HOLD_MS,
  ITEMS,
  ITEMS_TTL_MS,
  RECEIPT,
  RECEIPTS,
  SESSION_TTL_MS,
  STOCK,
  STOCK_CHANGE,
  fits,
  holdToken,
  parseCommand,
  parseItems,
  unitsOf,
  without,
  type CartCommand,
  type CartUpdate,
  type Items,
  type Receipt,
  type StockChange,
} from './shop.ts';

const cartCommandType = jsonType<CartCommand>(CART_COMMAND);
const stockChangeType = jsonType<StockChange>(STOCK_CHANGE);
const cartUpdateType = jsonType<CartUpdate>(CART_UPDATE);
const receiptType = jsonType<Receipt>(RECEIPT);

const itemsSpec = valueSpec({ name: 'items', type: jsonType<Items>(ITEMS), expireAfterWrite: ITEMS_TTL_MS });
const lastSeenSpec = valueSpec({ name: 'last_seen', type: stringType, expireAfterCall: SESSION_TTL_MS });

/** A command for cart `cartId`. */
export function cartCommand(cartId: string, command: CartCommand): Message {
  return messageBuilder({ target: Address.of(CART, cartId), value: command, valueType: cartCommandType });
}

export const cartFunctions = new StatefulFunctions().withSpec({
  typeName: CART,
  specs: [itemsSpec, lastSeenSpec],
  fn: cart,
});

function cart(context: Context, message: Message): void {
  const command = message.is(cartCommandType) ? parseCommand(message.as(cartCommandType)) : undefined;
  if (command === undefined) return;
  const cartId = context.self.id;
  let items = parseItems(context.storage.get(itemsSpec));
  const changeStock = (item: string, change: StockChange): void => {
    context.send(
      messageBuilder({ target: Address.of(STOCK, item), value: change, valueType: stockChangeType }),
    );
  };

  let event: string;
  switch (command.action) {
    case 'add': {
      const { item, quantity } = command;
      if (!fits(items, item, quantity)) return;
      // Held already: the new hold replaces the old one (a token cannot be pending twice).
      if (items[item] !== undefined) context.cancelDelayedMessage(holdToken(item));
      items[item] = (items[item] ?? 0) + quantity;
      changeStock(item, { kind: 'reserve', quantity });
      context.sendAfter(HOLD_MS, cartCommand(cartId, { action: 'hold-expired', item }), holdToken(item));
      event = `added ${quantity} ${item}`;
      break;
    }
    case 'remove': {
      const quantity = items[command.item];
      if (quantity === undefined) return;
      items = without(items, command.item);
      context.cancelDelayedMessage(holdToken(command.item));
      changeStock(command.item, { kind: 'release', quantity });
      event = `removed ${command.item}`;
      break;
    }
    case 'hold-expired': {
      // Only the cart's own delayed message counts: it arrives with the cart as its caller.
      if (context.caller?.toString() !== context.self.toString()) return;
      const quantity = items[command.item];
      if (quantity === undefined) return;
      items = without(items, command.item);
      changeStock(command.item, { kind: 'release', quantity });
      // The shopper did nothing: the session is not renewed, but this call keeps it alive.
      context.storage.set(itemsSpec, items);
      report(context, `hold on ${command.item} expired`, items);
      return;
    }
    case 'checkout': {
      if (unitsOf(items) === 0) return;
      const receipt = { cart: cartId, items, units: unitsOf(items) };
      context.sendEgress(egressMessage({ typeName: RECEIPTS, value: receipt, valueType: receiptType }));
      for (const [item, quantity] of Object.entries(items)) {
        context.cancelDelayedMessage(holdToken(item));
        changeStock(item, { kind: 'sell', quantity });
      }
      items = {};
      event = 'checked out';
      break;
    }
    case 'view':
      report(context, 'viewed', items);
      return;
  }
  context.storage.set(itemsSpec, items);
  context.storage.set(lastSeenSpec, event);
  report(context, event, items);
}

function report(context: Context, event: string, items: Items): void {
  const update = { cart: context.self.id, event, items, lastSeen: context.storage.get(lastSeenSpec) ?? null };
  context.sendEgress(egressMessage({ typeName: CART_UPDATES, value: update, valueType: cartUpdateType }));
}
