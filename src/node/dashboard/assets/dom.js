// DOM helpers for a page that renders untrusted data: text goes in through textContent only,
// and nodes are updated in place (only when a value changed) instead of being rebuilt.
/* global document */

export function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

export function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

export function setClass(node, className) {
  if (node.className !== className) node.className = className;
}

/** Sets an attribute, or removes it when the value is undefined. */
export function setAttribute(node, name, value) {
  if (value === undefined) {
    if (node.hasAttribute(name)) node.removeAttribute(name);
  } else if (node.getAttribute(name) !== value) {
    node.setAttribute(name, value);
  }
}

/** A table row with one cell per class name (an empty string for a cell without a class). */
export function tableRow(cellClasses) {
  const row = element('tr');
  for (const className of cellClasses) row.append(element('td', className));
  return row;
}

/**
 * Keeps a container's children in step with a list of keys: creates a node for a new key,
 * removes the node of a key that went away, moves nodes only when the order changed.
 * The container must hold nothing else.
 */
export class KeyedChildren {
  #container;
  #create;
  #nodes = new Map();

  constructor(container, create) {
    this.#container = container;
    this.#create = create;
  }

  get size() {
    return this.#nodes.size;
  }

  /** `keys` must be unique; `update(node, key)` is called for every key, in order. */
  render(keys, update) {
    const wanted = new Set(keys);
    for (const [key, node] of this.#nodes) {
      if (wanted.has(key)) continue;
      node.remove();
      this.#nodes.delete(key);
    }
    let cursor = this.#container.firstChild;
    for (const key of wanted) {
      let node = this.#nodes.get(key);
      if (node === undefined) {
        node = this.#create(key);
        this.#nodes.set(key, node);
      }
      update(node, key);
      if (node === cursor) cursor = cursor.nextSibling;
      else this.#container.insertBefore(node, cursor);
    }
  }
}
