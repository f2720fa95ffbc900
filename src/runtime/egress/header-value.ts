// Header values built from record content (a typename, a Kafka key) cross into NATS and HTTP
// headers, which cannot carry CR or LF (a header could be injected), trim surrounding spaces and,
// for HTTP, refuse most non-ASCII text. So a value is sent as it is only when it is visible ASCII
// with no surrounding space; any other value is sent base64-encoded (of its UTF-8 bytes) with a
// companion header `<name>-Encoding: base64`. Nothing is lost and nothing can be injected.

/** The header naming a record's typename, for destinations that receive the value as it is. */
export const WEFT_TYPE_HEADER = 'Weft-Type';

/** Visible ASCII, spaces only inside; the empty string too. */
const PLAIN_HEADER_VALUE = /^(?:[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?)?$/;

export type HeaderField = readonly [name: string, value: string];

/** True when `value` goes into a header unchanged. */
export function isPlainHeaderValue(value: string): boolean {
  return PLAIN_HEADER_VALUE.test(value);
}

/** The header fields that carry `value` under `name`: itself, or its base64 form and the marker. */
export function headerFields(name: string, value: string): HeaderField[] {
  if (isPlainHeaderValue(value)) return [[name, value]];
  return [
    [name, Buffer.from(value, 'utf8').toString('base64')],
    [`${name}-Encoding`, 'base64'],
  ];
}
