// The persisted values of one address during one batch. Every invocation of the batch sees
// the writes of the ones before it; only the final value of each value touched is reported
// back to the runtime (MODIFY or DELETE), under the type name its spec registered.

import type { TypedValue } from '../gen/statefun/request-reply_pb.ts';
import { ConfigError } from '../internal/errors.ts';
import { appended } from './appended.ts';
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

/**
 * The values a function declared, in order, found by name: made once per function, so that
 * a batch's storage is an array of cells rather than a map built per request.
 */
export class StorageLayout {
  readonly specs: readonly ValueSpec<unknown>[];
  readonly #indexByName = new Map<string, number>();

  /** `specs` have distinct names (the registry checks). */
  constructor(specs: readonly ValueSpec<unknown>[]) {
    this.specs = specs;
    specs.forEach((spec, index) => this.#indexByName.set(spec.name, index));
  }

  /** The index of the value named `name`, or -1 when none is. */
  indexOfName(name: string): number {
    return this.#indexByName.get(name) ?? -1;
  }

  /**
   * The index of `spec`: the very spec declared, or one of the same name and type (its bytes
   * read back alike); -1 for any other.
   */
  indexOf(spec: ValueSpec<unknown>): number {
    const specs = this.specs;
    // Functions pass the specs they declared, and have few: found without hashing the name.
    for (let i = 0; i < specs.length; i++) if (specs[i] === spec) return i;
    const index = this.indexOfName(spec.name);
    return index >= 0 && (specs[index] as ValueSpec<unknown>).type.typeName.equals(spec.type.typeName)
      ? index
      : -1;
  }
}

export class BatchStorage implements AddressScopedStorage {
  readonly #layout: StorageLayout;
  // One cell per declared spec, in the layout's order.
  readonly #cells: Cell[];

  constructor(layout: StorageLayout) {
    this.#layout = layout;
    let cells: Cell[] = [];
    for (const spec of layout.specs) {
      cells = appended(cells, { spec, loaded: undefined, bytes: undefined, touched: false });
    }
    this.#cells = cells;
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
      const index = this.#layout.indexOfName(value.name);
      if (index < 0) continue;
      const cell = cells[index] as Cell;
      if (cell.loaded === undefined) found++;
      cell.loaded = value.value ?? ABSENT;
    }
    if (found < cells.length) {
      const missing: ValueSpec<unknown>[] = [];
      for (const cell of cells) if (cell.loaded === undefined) missing.push(cell.spec);
      return missing;
    }
    for (const cell of cells) {
      const value = cell.loaded as TypedValue;
      if (!value.hasValue) continue;
      const typename = cell.spec.type.typeName.toString();
      if (value.typename !== typename) {
        throw new ValueTypeError(
          `state ${cell.spec.name} holds a ${value.typename} value, but its spec says ${typename}`,
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
    let mutations: StateMutation[] = [];
    for (const cell of this.#cells) {
      if (cell.touched) {
        const { spec } = cell;
        mutations = appended(mutations, {
          name: spec.name,
          typename: spec.type.typeName.toString(),
          bytes: cell.bytes,
        });
      }
    }
    return mutations;
  }

  #cell(spec: ValueSpec<unknown>): Cell {
    const index = this.#layout.indexOf(spec);
    // The same name with another type is a mistake too: its bytes would not read back.
    if (index < 0)
      throw new ConfigError(`state ${spec.name}`, 'is not one of the specs this function declared');
    return this.#cells[index] as Cell;
  }
}
