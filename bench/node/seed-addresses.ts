// Fills a node's `functions` view: one message to each of `count` distinct counter addresses
// through its HTTP ingress, `concurrency` in flight, then waits until the view holds them all.

const ingressPrefix = '/v1/ingress';
const functionsView = '/v1/views/functions';
export const counterType = 'example/counter';
export const jsonMessageType = 'weft/json';
/** The body every message carries: the JSON text `"x"`. */
export const messageBody = '"x"';
const viewTimeoutMs = 60_000;

/** The id of the i-th seeded address: `id-<i>`. */
export function seededId(i: number): string {
  return `id-${i}`;
}

/** POSTs one message to `example/counter/<id>`; resolves once the node answered 202 (durable). */
export async function sendCount(nodeUrl: string, id: string): Promise<void> {
  const response = await fetch(`${nodeUrl}${ingressPrefix}/${counterType}/${encodeURIComponent(id)}`, {
    method: 'POST',
    headers: { 'Weft-Message-Type': jsonMessageType },
    body: messageBody,
  });
  const text = await response.text();
  if (response.status !== 202) {
    throw new Error(`ingress to ${counterType}/${id} answered ${response.status}: ${text.slice(0, 200)}`);
  }
}

export async function seedAddresses(nodeUrl: string, count: number, concurrency: number): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) await sendCount(nodeUrl, seededId(next++));
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  await waitForView(nodeUrl, (entries) => Object.keys(entries).length >= count, `${count} addresses`);
}

/** The `functions` view's entries, keyed by address (`<type>/<id>`). */
export type FunctionEntries = Readonly<Record<string, { readonly state?: unknown } | undefined>>;

/** Follows the view with blocking queries until `done` holds; returns the value that made it hold. */
export async function waitForView(
  nodeUrl: string,
  done: (entries: FunctionEntries) => boolean,
  what: string,
): Promise<FunctionEntries> {
  const deadline = performance.now() + viewTimeoutMs;
  let index = 0;
  while (performance.now() < deadline) {
    const response = await fetch(`${nodeUrl}${functionsView}?index=${index}&wait=5s`);
    if (response.status === 503) {
      await response.body?.cancel();
      continue;
    }
    if (!response.ok) throw new Error(`${functionsView} answered ${response.status}`);
    const entries = (await response.json()) as FunctionEntries;
    if (done(entries)) return entries;
    index = Number(response.headers.get('X-Weft-Index') ?? '0');
  }
  throw new Error(`the functions view did not reach ${what} within ${viewTimeoutMs} ms`);
}
