// The persisted values of one address during one batch. Every invocation of the batch sees
// the writes of the ones before it; only the final value of each value touched is reported
// back to the runtime (MODIFY or DELETE), under the type name its spec registered.

import type { TypedValue } from '../gen/statefun/request-reply_pb.ts';
import { ConfigError } from '../internal/errors.ts';
import { ValueTypeError } from './errors.ts';
import { serializeValue } from './simple-type.ts';
import type { ValueSpec } from './value-spec.ts';
import type { StateMutation } from './wire/from-function-encoder.ts';

interface Cell {
  readonly spec: ValueSpec<unknown>;
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

export class BatchStorage implements AddressScopedStorage {
  // One cell per declared spec, by name.
  readonly #cells = new Map<string, Cell>();

  /** `state` is what the request carried, by name; every declared spec must be among them. */
  constructor(
    specs: ReadonlyMap<string, ValueSpec<unknown>>,
    state: ReadonlyMap<string, TypedValue | undefined>,
  ) {
    for (const [name, spec] of specs) {
      const value = state.get(name);
      if (value?.hasValue === true && value.typename !== spec.type.typeName.toString()) {
        throw new ValueTypeError(
          `state ${name} holds a ${value.typename} value, but its spec says ${spec.type.typeName.toString()}`,
        );
      }
      this.#cells.set(name, {
        spec,
        bytes: value?.hasValue === true ? value.value : undefined,
        touched: false,
      });
    }
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
    if (cell === undefined || !cell.spec.type.typeName.equals(spec.type.typeName)) {
      throw new ConfigError(`state ${spec.name}`, 'is not one of the specs this function declared');
    }
    return cell;
  }
}
