// Values as UTF-8 JSON under a type name of the application's choosing, as the StateFun
// SDKs' JSON types do. A trailing newline (what many JSON writers add) is accepted.

import { ValueTypeError } from './errors.ts';
import type { SimpleType } from './simple-type.ts';
import { TypeName } from './type-name.ts';

const decoder = new TextDecoder('utf-8', { fatal: true });
const encoder = new TextEncoder();

export function jsonType<T>(typeName: string | TypeName): SimpleType<T> {
  const name = typeof typeName === 'string' ? TypeName.parse(typeName) : typeName;
  return {
    typeName: name,
    serialize(value) {
      let text: unknown;
      try {
        text = JSON.stringify(value);
      } catch (error) {
        throw new ValueTypeError(`a ${name.toString()} value cannot be written as JSON`, { cause: error });
      }
      // Typed as string, but undefined for undefined, functions and symbols: nothing a peer could read.
      if (typeof text !== 'string') throw new ValueTypeError(`a ${name.toString()} value has no JSON form`);
      // A Buffer as before, but over an ArrayBuffer of its own: `Buffer.from(text)` may sit in
      // Node's shared pool, and a host may pass `.buffer` on.
      const bytes = encoder.encode(text);
      return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    },
    deserialize(bytes) {
      try {
        return JSON.parse(decoder.decode(bytes).replace(/\r?\n$/, '')) as T;
      } catch (error) {
        throw new ValueTypeError(`bytes are not a JSON ${name.toString()} value`, { cause: error });
      }
    },
  };
}
