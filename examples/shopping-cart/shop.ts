// What the shop's functions say to each other and to the outside world. Everything is JSON
// under a type name of the shop's own, so functions written with any StateFun SDK read it.
//
// Messages come from outside (a web page, a queue): each is checked before it is used, and one
// that does not fit is dropped. Throwing instead would fail the batch, and the runtime would run
// the same message again and again.

export const CART = 'shop/cart';
export const STOCK = 'shop/stock';

/** Egress ids: where the functions' records leave the runtime. */
export const CART_UPDATES = 'shop/cart-updates';
export const STOCK_UPDATES = 'shop/stock-updates';
export const RECEIPTS = 'shop/receipts';

export const CART_COMMAND = 'com.example.shop/CartCommand';
export const STOCK_CHANGE = 'com.example.shop/StockChange';
export const CART_UPDATE = 'com.example.shop/CartUpdate';
export const STOCK_UPDATE = 'com.example.shop/StockUpdate';
export const RECEIPT = 'com.example.shop/Receipt';
export const ITEMS = 'com.example.shop/Items';

/** How long an item added to a cart holds its stock. Short, so that the example shows it. */
export const HOLD_MS = 2_000;
/** A shopper's session (`last_seen`) ends this long after the cart's last call. */
export const SESSION_TTL_MS = 2_000;
/** A cart nobody changed for this long is emptied. */
export const ITEMS_TTL_MS = 10 * 60_000;

export type CartCommand =
  | { readonly action: 'add'; readonly item: string; readonly quantity: number }
  | { readonly action: 'remove'; readonly item: string }
  | { readonly action: 'checkout' }
  /** Reports the cart as it is, changing nothing. */
  | { readonly action: 'view' }
  /** The cart's delayed message to itself when an item's hold is over. */
  | { readonly action: 'hold-expired'; readonly item: string };

export interface StockChange {
  readonly kind: 'reserve' | 'release' | 'sell';
  readonly quantity: number;
}

/** Units per item. */
export type Items = Record<string, number>;

export interface CartUpdate {
  readonly cart: string;
  readonly event: string;
  readonly items: Items;
  /** What the shopper last did, or null once the session has expired. */
  readonly lastSeen: string | null;
}

export interface StockUpdate {
  readonly item: string;
  readonly reserved: number;
  readonly sold: number;
  /** The function that asked for the change, `namespace/name/id`. */
  readonly by: string;
}

export interface Receipt {
  readonly cart: string;
  readonly items: Items;
  readonly units: number;
}

export const holdToken = (item: string): string => `hold-${item}`;

// Item names become object keys: no `__proto__`, nothing long.
const ITEM_NAME = /^[a-z][a-z0-9-]{0,39}$/;
const MAX_QUANTITY = 1_000;

export function parseCommand(value: unknown): CartCommand | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const { action, item, quantity } = value as Record<string, unknown>;
  switch (action) {
    case 'add':
      return isItem(item) && isQuantity(quantity) ? { action, item, quantity } : undefined;
    case 'remove':
    case 'hold-expired':
      return isItem(item) ? { action, item } : undefined;
    case 'checkout':
    case 'view':
      return { action };
    default:
      return undefined;
  }
}

export function parseStockChange(value: unknown): StockChange | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const { kind, quantity } = value as Record<string, unknown>;
  if (kind !== 'reserve' && kind !== 'release' && kind !== 'sell') return undefined;
  return isQuantity(quantity) ? { kind, quantity } : undefined;
}

/** Items as stored; anything unreadable counts as an empty cart. */
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

/** Whether `quantity` more units of an item fit in one cart. */
export function fits(items: Items, item: string, quantity: number): boolean {
  return (items[item] ?? 0) + quantity <= MAX_QUANTITY;
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
