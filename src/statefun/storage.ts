// The persisted values of one address during one batch. Every invocation of the batch sees
// the writes of the ones before it; only the final value of each value touched is reported
// back to the runtime (MODIFY or DELETE), under the type name its spec registered.

import type { TypedValue } from '../gen/statefun/request-reply_pb.ts';
import { ConfigError } from '../internal/errors.ts';
import { ValueTypeError } from './errors.ts';
import { serializeValue } from './simple-type.ts';
import type { ValueSpec } from './value-spec.ts';
import type { StateMutation } from './wire/from-function-encoder.ts';
import { NO_BYTES, typedValue } from './wire/typed-value.ts';

// Stands for a value the request named but sent without a TypedValue: present, with no value.
const ABSENT = typedValue('', false, NO_BYTES);

interface Cell {
  readonly spec: ValueSpec<unknown>;
  /** What the request carried for it; undefined when it carried nothing under its name. */
  loaded: TypedValue | undefined;
  /** undefined: no value. */
  bytes: Uint8Array | undefined;
  touched: boolean;
}

export interface AddressScopedStorage {
  /** The value, or undefined when there is none (a present zero is returned as zero). */
  get<T>(spec: ValueSpec<T>): T | undefined;
  set<T>(spec: ValueSpec<T>, value: T): void;
  remove(spec: ValueSpec<unknown>): void;
}

/** A persisted value as a request carries it: its name, and its value if it has one. */
export interface CarriedValue {
  readonly name: string;
  readonly value: TypedValue | undefined;
}

export class BatchStorage implements AddressScopedStorage {
  // One cell per declared spec, by name.
  readonly #cells = new Map<string, Cell>();

  constructor(specs: ReadonlyMap<string, ValueSpec<unknown>>) {
    for (const [name, spec] of specs) {
      this.#cells.set(name, { spec, loaded: undefined, bytes: undefined, touched: false });
    }
  }

  /**
   * Takes the values a request carried (values nobody declared are ignored; of a repeated
   * name the last counts). Returns the declared specs the request lacked, if any, and then
   * leaves the storage unusable; throws `ValueTypeError` for a value under another typename
   * than its spec's.
   */
  load(carried: readonly CarriedValue[]): ValueSpec<unknown>[] | undefined {
    const cells = this.#cells;
    let found = 0;
    for (const value of carried) {
      const cell = cells.get(value.name);
      if (cell === undefined) continue;
      if (cell.loaded === undefined) found++;
      cell.loaded = value.value ?? ABSENT;
    }
    if (found < cells.size) {
      const missing: ValueSpec<unknown>[] = [];
      for (const cell of cells.values()) if (cell.loaded === undefined) missing.push(cell.spec);
      return missing;
    }
    for (const [name, cell] of cells) {
      const value = cell.loaded as TypedValue;
      if (!value.hasValue) continue;
      const typename = cell.spec.type.typeName.toString();
      if (value.typename !== typename) {
        throw new ValueTypeError(
          `state ${name} holds a ${value.typename} value, but its spec says ${typename}`,
        );
      }
      cell.bytes = value.value;
    }
    return undefined;
  }

  get<T>(spec: ValueSpec<T>): T | undefined {
    const cell = this.#cell(spec);
    return cell.bytes === undefined ? undefined : spec.type.deserialize(cell.bytes);
  }

  set<T>(spec: ValueSpec<T>, value: T): void {
    const cell = this.#cell(spec);
    // Serialized now, so a value the type cannot hold fails where it is set.
    cell.bytes = serializeValue(spec.type, value);
    cell.touched = true;
  }

  remove(spec: ValueSpec<unknown>): void {
    const cell = this.#cell(spec);
    cell.bytes = undefined;
    cell.touched = true;
  }

  /** The final change of every value touched during the batch. */
  mutations(): StateMutation[] {
    const mutations: StateMutation[] = [];
    for (const [name, cell] of this.#cells) {
      if (cell.touched)
        mutations.push({ name, typename: cell.spec.type.typeName.toString(), bytes: cell.bytes });
    }
    return mutations;
  }

  #cell(spec: ValueSpec<unknown>): Cell {
    const cell = this.#cells.get(spec.name);
    // The same name with another type is a mistake too: its bytes would not read back.
    if (cell === undefined || (cell.spec !== spec && !cell.spec.type.typeName.equals(spec.type.typeName))) {
      throw new ConfigError(`state ${spec.name}`, 'is not one of the specs this function declared');
    }
    return cell;
  }
}
