// Short lists without spare room. V8 gives an empty array room for 17 elements on its first
// push; most lists of a request (its values, its invocations, a batch's effects) hold one,
// and each spare room is garbage to collect.

/** `list` with `item` appended: a new one-element array if `list` is empty, else `list` itself. */
export function appended<T>(list: T[], item: T): T[] {
  if (list.length === 0) return [item];
  list.push(item);
  return list;
}
