// The shopping cart application that test/compat/runtime-interop.test.ts writes twice, once with
// each SDK (cart-logic-weft.ts, cart-logic-official.ts): what both share and what does not depend
// on an SDK. Its messages, state and egress records are JSON, so both SDKs write the same bytes.
//
// `shop/cart` (id: the cart id) keeps the items in the cart (`items`, gone 30 min after its last
// write) and what the shopper last did (`last_seen`, gone after 10 min without any call: a
// session). Adding an item reserves stock by messaging `shop/stock` (id: the item) and holds the
// reservation for 15 min with a delayed `expire-reservation` message to itself, under the token
// `reservation-<item>`; adding the item again replaces the hold, removing it cancels the hold.
// Checkout sends the order to Kafka (`shop/orders`, topic `orders`, key: the cart id) and a
// receipt to the generic egress `shop/receipts`. A heartbeat (the shopper's page is still open)
// changes nothing, but it is a call: it keeps `last_seen` alive and not `items`.
// `shop/stock` keeps how many units are `reserved` and `sold`, and who asked last (`last_caller`).

export const CART_TYPE = 'shop/cart';
export const STOCK_TYPE = 'shop/stock';
export const ORDERS_EGRESS = 'shop/orders';
export const RECEIPTS_EGRESS = 'shop/receipts';
export const ORDERS_TOPIC = 'orders';

export const CART_COMMAND_TYPENAME = 'com.example.shop/CartCommand';
export const STOCK_CHANGE_TYPENAME = 'com.example.shop/StockChange';
export const ITEMS_TYPENAME = 'com.example.shop/Items';
export const ORDER_TYPENAME = 'com.example.shop/Order';
export const RECEIPT_TYPENAME = 'com.example.shop/Receipt';

const MINUTE_MS = 60_000;
export const ITEMS_TTL_MS = 30 * MINUTE_MS;
export const SESSION_TTL_MS = 10 * MINUTE_MS;
export const RESERVATION_MS = 15 * MINUTE_MS;

export type CartCommand =
  | { readonly action: 'add'; readonly item: string; readonly quantity: number }
  | { readonly action: 'remove'; readonly item: string }
  | { readonly action: 'checkout' }
  | { readonly action: 'heartbeat' }
  /** Sent by the cart to itself; honoured only with the cart itself as caller. */
  | { readonly action: 'expire-reservation'; readonly item: string };

export interface StockChange {
  readonly kind: 'reserve' | 'release' | 'sell';
  readonly quantity: number;
  readonly cart: string;
}

/** Units per item. */
export type Items = Record<string, number>;

export interface Order {
  readonly cart: string;
  readonly items: Items;
}

export interface Receipt {
  readonly cart: string;
  readonly items: Items;
  readonly units: number;
}

export const reservationToken = (item: string): string => `reservation-${item}`;

// Item names become keys of `Items`: no `__proto__`, nothing unbounded.
const ITEM_NAME = /^[a-z][a-z0-9-]{0,39}$/;
/** Units of one item in one cart, at most: the stock counts stay far below 32 bits. */
export const MAX_QUANTITY = 1_000;

/**
 * A command as the cart may act on it, or undefined for anything else. Messages come from
 * outside: a command the cart cannot use is dropped rather than thrown on, since a throw would
 * fail the batch and the runtime would run the same message again and again.
 */
export function parseCommand(value: unknown): CartCommand | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const { action, item, quantity } = value as Record<string, unknown>;
  switch (action) {
    case 'add':
      return isItem(item) && isQuantity(quantity) ? { action, item, quantity } : undefined;
    case 'remove':
    case 'expire-reservation':
      return isItem(item) ? { action, item } : undefined;
    case 'checkout':
    case 'heartbeat':
      return { action };
    default:
      return undefined;
  }
}

/** A stock change, or undefined when the message is not one. */
export function parseStockChange(value: unknown): StockChange | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const { kind, quantity, cart } = value as Record<string, unknown>;
  if (kind !== 'reserve' && kind !== 'release' && kind !== 'sell') return undefined;
  if (!isQuantity(quantity) || typeof cart !== 'string') return undefined;
  return { kind, quantity, cart };
}

/** Items as stored: anything else (a value from an older version, say) counts as an empty cart. */
export function parseItems(value: unknown): Items {
  const items: Items = {};
  if (typeof value !== 'object' || value === null) return items;
  for (const [item, quantity] of Object.entries(value)) {
    if (isItem(item) && isQuantity(quantity)) items[item] = quantity;
  }
  return items;
}

/** `items` without `item`. */
export function without(items: Items, item: string): Items {
  return Object.fromEntries(Object.entries(items).filter(([name]) => name !== item));
}

export function unitsOf(items: Items): number {
  return Object.values(items).reduce((sum, quantity) => sum + quantity, 0);
}

function isItem(value: unknown): value is string {
  return typeof value === 'string' && ITEM_NAME.test(value);
}

function isQuantity(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) > 0 && (value as number) <= MAX_QUANTITY;
}
