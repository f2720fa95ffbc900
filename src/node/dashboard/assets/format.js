// Turns the numbers the node publishes into short text. Every input may be missing or of the
// wrong type (the data comes from the network), so each function answers a dash for that.

export const DASH = '—';

const integer = new Intl.NumberFormat('en', { maximumFractionDigits: 0 });
const oneDecimal = new Intl.NumberFormat('en', { maximumFractionDigits: 1 });
const percent = new Intl.NumberFormat('en', { style: 'percent', maximumFractionDigits: 1 });

export function isNumber(value) {
  return typeof value === 'number' && Number.isFinite(value);
}

export function isRecord(value) {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function formatCount(value) {
  return isNumber(value) ? integer.format(value) : DASH;
}

/** A rate or a latency: one decimal below 10, whole numbers above. */
export function formatAmount(value) {
  if (!isNumber(value)) return DASH;
  return Math.abs(value) < 10 ? oneDecimal.format(value) : integer.format(value);
}

export function formatPercent(ratio) {
  return isNumber(ratio) ? percent.format(ratio) : DASH;
}

const BYTE_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

export function formatBytes(value) {
  if (!isNumber(value)) return DASH;
  let amount = value;
  let unit = 0;
  while (Math.abs(amount) >= 1024 && unit < BYTE_UNITS.length - 1) {
    amount /= 1024;
    unit += 1;
  }
  return `${unit === 0 ? integer.format(amount) : oneDecimal.format(amount)} ${BYTE_UNITS[unit]}`;
}

/** "3d 4h", "5m 12s", "42s": the two largest units are enough to read at a glance. */
export function formatDuration(ms) {
  if (!isNumber(ms)) return DASH;
  const totalSeconds = Math.max(0, Math.floor(ms / 1000));
  const parts = [
    [Math.floor(totalSeconds / 86_400), 'd'],
    [Math.floor(totalSeconds / 3600) % 24, 'h'],
    [Math.floor(totalSeconds / 60) % 60, 'm'],
    [totalSeconds % 60, 's'],
  ];
  const first = parts.findIndex(([amount]) => amount > 0);
  if (first === -1) return '0s';
  return parts
    .slice(first, first + 2)
    .filter(([amount], index) => index === 0 || amount > 0)
    .map(([amount, unit]) => `${amount}${unit}`)
    .join(' ');
}

export function formatAgo(thenMs, nowMs) {
  if (!isNumber(thenMs) || !isNumber(nowMs)) return DASH;
  const elapsed = nowMs - thenMs;
  return elapsed < 1000 ? 'just now' : `${formatDuration(elapsed)} ago`;
}

export function formatTimestamp(epochMs) {
  if (!isNumber(epochMs)) return '';
  const date = new Date(epochMs);
  return Number.isNaN(date.getTime()) ? '' : date.toISOString();
}

/** JSON on one line, cut at `maxChars` with an ellipsis. */
export function compactJson(value, maxChars) {
  let text;
  try {
    text = JSON.stringify(value);
  } catch {
    text = String(value);
  }
  if (text === undefined) return DASH;
  return text.length > maxChars ? `${text.slice(0, maxChars - 1)}…` : text;
}

/** "activeStreams" → "Active streams", for fields the page has no label for. */
export function humanizeKey(key) {
  const words = String(key)
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .replace(/[_-]+/g, ' ')
    .trim()
    .toLowerCase();
  return words.length === 0 ? String(key) : words[0].toUpperCase() + words.slice(1);
}
