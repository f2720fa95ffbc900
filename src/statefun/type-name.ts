// A type name: `namespace/name`, as StateFun names function types, value types and egresses.
// The namespace may itself contain slashes (`type.googleapis.com/…`, `io.statefun.types/int`),
// so a name splits at its last `/`.

import { InvalidTypeNameError } from './errors.ts';

export class TypeName {
  readonly namespace: string;
  readonly name: string;
  // Built once: typenames are compared on every message read and written on every reply.
  readonly #whole: string;

  private constructor(namespace: string, name: string, whole: string) {
    this.namespace = namespace;
    this.name = name;
    this.#whole = whole;
  }

  /** Parses `namespace/name`; a missing slash or an empty part is an `InvalidTypeNameError`. */
  static parse(typeName: string): TypeName {
    if (typeof typeName !== 'string') throw new InvalidTypeNameError(String(typeName), 'not a string');
    const slash = typeName.lastIndexOf('/');
    if (slash === -1) throw new InvalidTypeNameError(typeName, 'expected namespace/name');
    return TypeName.of(typeName.slice(0, slash), typeName.slice(slash + 1));
  }

  static of(namespace: string, name: string): TypeName {
    const whole = `${namespace}/${name}`;
    if (namespace === '') throw new InvalidTypeNameError(whole, 'the namespace is empty');
    if (name === '') throw new InvalidTypeNameError(whole, 'the name is empty');
    if (name.includes('/')) throw new InvalidTypeNameError(whole, 'the name contains a slash');
    return new TypeName(namespace, name, whole);
  }

  equals(other: TypeName): boolean {
    return this.namespace === other.namespace && this.name === other.name;
  }

  toString(): string {
    return this.#whole;
  }
}
