// The runtime's registry of persisted values, per function type, filled as StateFun fills it:
// the first request for a type carries no values; a function that declared values answers with
// an incomplete-invocation-context naming every one it misses (name, typename, expiration);
// the runtime registers them and sends the same invocations again, now with every registered
// value attached, and attaches them to every later request for that type.
//
// The first registration of a name wins. A later one that changes its typename or expiration is
// a conflict: StateFun fails the job (RemoteValueTypeMismatchException); here it is reported,
// with the function and the value named, for the operator to act on, and the registered spec
// stays. The registry is bounded: past `maxValuesPerType` a type's new names are refused and
// counted, so a function that invents value names cannot grow it without end.

import type { Expiration } from '../statefun/index.ts';

/** A value as a function declared it: what the runtime stores and how it expires. */
export interface ValueRegistration {
  readonly name: string;
  readonly typename: string;
  readonly expiration: Expiration;
}

/** A registration that disagrees with the one already made for the name. */
export interface RegistrationConflict {
  readonly functionType: string;
  readonly name: string;
  readonly registered: ValueRegistration;
  readonly offered: ValueRegistration;
  /** For logs and the operator: which function, which value, what changed. */
  readonly message: string;
}

export interface RegistrationOutcome {
  /** Names registered by this call. */
  readonly added: readonly string[];
  readonly conflicts: readonly RegistrationConflict[];
  /** Names refused because the type has `maxValuesPerType` already. */
  readonly refused: readonly string[];
}

export interface ValueRegistryOptions {
  /** Values one function type may register; default 1 000. */
  readonly maxValuesPerType?: number;
}

export interface ValueRegistryStats {
  readonly functionTypes: number;
  readonly values: number;
  readonly conflicts: number;
  readonly refused: number;
}

const DEFAULT_MAX_VALUES_PER_TYPE = 1_000;

export class ValueRegistry {
  readonly #maxValuesPerType: number;
  readonly #byType = new Map<string, Map<string, ValueRegistration>>();
  #values = 0;
  #conflicts = 0;
  #refused = 0;

  constructor(options: ValueRegistryOptions = {}) {
    const max = options.maxValuesPerType ?? DEFAULT_MAX_VALUES_PER_TYPE;
    if (!Number.isSafeInteger(max) || max < 1) {
      throw new RangeError(`maxValuesPerType must be a positive integer, got ${max}`);
    }
    this.#maxValuesPerType = max;
  }

  /** Registers what an incomplete-invocation-context reply of `functionType` asked for. */
  register(functionType: string, offered: readonly ValueRegistration[]): RegistrationOutcome {
    let values = this.#byType.get(functionType);
    const added: string[] = [];
    const conflicts: RegistrationConflict[] = [];
    const refused: string[] = [];
    for (const registration of offered) {
      const registered = values?.get(registration.name);
      if (registered !== undefined) {
        const change = describeChange(registered, registration);
        if (change !== undefined) {
          conflicts.push({
            functionType,
            name: registration.name,
            registered,
            offered: registration,
            message:
              `function ${functionType} declares value "${registration.name}" with ${change}; ` +
              'the registration made first stays in force',
          });
        }
        continue;
      }
      if ((values?.size ?? 0) >= this.#maxValuesPerType) {
        refused.push(registration.name);
        continue;
      }
      if (values === undefined) {
        values = new Map();
        this.#byType.set(functionType, values);
      }
      values.set(registration.name, copyRegistration(registration));
      added.push(registration.name);
    }
    this.#values += added.length;
    this.#conflicts += conflicts.length;
    this.#refused += refused.length;
    return { added, conflicts, refused };
  }

  /** Every value registered for `functionType`, in registration order: what each request carries. */
  values(functionType: string): readonly ValueRegistration[] {
    const values = this.#byType.get(functionType);
    return values === undefined ? [] : [...values.values()];
  }

  /** The registration of one value, if there is one. */
  get(functionType: string, name: string): ValueRegistration | undefined {
    return this.#byType.get(functionType)?.get(name);
  }

  stats(): ValueRegistryStats {
    return {
      functionTypes: this.#byType.size,
      values: this.#values,
      conflicts: this.#conflicts,
      refused: this.#refused,
    };
  }
}

/**
 * When `name`'s value expires after a batch at `now`: its new expiry if the batch wrote it
 * (`written`) or if it expires after every call, its old one otherwise; undefined for a value
 * that never expires. StateFun's TTL: after-write refreshed on writes, after-call on every
 * invocation of the function, written or not (FLINK-21678).
 */
export function expiryAfterBatch(
  registration: ValueRegistration,
  now: number,
  written: boolean,
  previous: number | undefined,
): number | undefined {
  const { expiration } = registration;
  if (expiration.mode === 'none') return undefined;
  if (expiration.mode === 'after-call' || written) return now + expiration.afterMs;
  return previous;
}

function describeChange(registered: ValueRegistration, offered: ValueRegistration): string | undefined {
  const changes: string[] = [];
  if (registered.typename !== offered.typename) {
    changes.push(`type ${offered.typename}, but it is registered as ${registered.typename}`);
  }
  if (!sameExpiration(registered.expiration, offered.expiration)) {
    changes.push(
      `expiration ${describeExpiration(offered.expiration)}, but it is registered with ` +
        describeExpiration(registered.expiration),
    );
  }
  return changes.length === 0 ? undefined : changes.join(' and ');
}

function sameExpiration(a: Expiration, b: Expiration): boolean {
  if (a.mode === 'none' || b.mode === 'none') return a.mode === b.mode;
  return a.mode === b.mode && a.afterMs === b.afterMs;
}

function describeExpiration(expiration: Expiration): string {
  return expiration.mode === 'none' ? 'none' : `${expiration.mode} ${expiration.afterMs} ms`;
}

function copyRegistration(registration: ValueRegistration): ValueRegistration {
  const { expiration } = registration;
  return {
    name: registration.name,
    typename: registration.typename,
    expiration:
      expiration.mode === 'none' ? { mode: 'none' } : { mode: expiration.mode, afterMs: expiration.afterMs },
  };
}
