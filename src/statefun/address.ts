// A function instance: its type and its id. Messages are sent to addresses; the runtime
// keeps one state per address.

import { ValueTypeError } from './errors.ts';
import { TypeName } from './type-name.ts';

export class Address {
  readonly type: TypeName;
  readonly id: string;

  private constructor(type: TypeName, id: string) {
    this.type = type;
    this.id = id;
  }

  /** The address of function `type` (a TypeName or `namespace/name`) with `id`. */
  static of(type: TypeName | string, id: string): Address {
    if (typeof id !== 'string') throw new ValueTypeError(`an address id is a string, got ${typeof id}`);
    return new Address(typeof type === 'string' ? TypeName.parse(type) : type, id);
  }

  equals(other: Address): boolean {
    return this.type.equals(other.type) && this.id === other.id;
  }

  toString(): string {
    return `${this.type.toString()}/${this.id}`;
  }
}
