// Function addresses (the functions view), which may hold tens of thousands of entries: an
// aggregate per type, a filter and a paged table. Only the visible page is in the DOM, its 50
// rows are reused from page to page, and a cell is written only when its text changed.

import { KeyedChildren, setAttribute, setText, tableRow } from './dom.js';
import { compactJson, formatAgo, formatCount, formatTimestamp, isNumber, isRecord } from './format.js';

export const PAGE_SIZE = 50;
const STATE_CHARS = 160;
const STATE_TITLE_CHARS = 2000;
const MAX_TYPE_ROWS = 200;

export function createFunctionsPanel(elements) {
  const { typesBody, rowsBody, filterInput, previousButton, nextButton, pageLabel, countLabel, emptyNote } =
    elements;
  const typeRows = new KeyedChildren(typesBody, (type) => {
    const row = tableRow(['type', 'num', 'num']);
    row.dataset.type = type;
    return row;
  });
  const rowPool = [];
  // The JSON text of a state, remembered per parsed entry: a page redrawn only to refresh the
  // ages does not stringify the states again.
  const stateText = new WeakMap();

  let entries = {};
  let sortedKeys = [];
  let lowerKeys = [];
  let filter = '';
  let matching = [];
  let matchingIsStale = true;
  let page = 0;
  let onChange = () => {};

  filterInput.addEventListener('input', () => {
    filter = filterInput.value.trim().toLowerCase();
    matchingIsStale = true;
    page = 0;
    onChange();
  });
  previousButton.addEventListener('click', () => {
    page = Math.max(0, page - 1);
    onChange();
  });
  nextButton.addEventListener('click', () => {
    page += 1;
    onChange();
  });

  function setEntries(value) {
    entries = isRecord(value) ? value : {};
    const keys = Object.keys(entries);
    // The node sends the whole view each time; sort again only when the set of addresses moved.
    if (!sameKeys(keys, sortedKeys)) {
      sortedKeys = keys.sort();
      lowerKeys = sortedKeys.map((key) => key.toLowerCase());
    }
    matchingIsStale = true;
    renderTypes();
  }

  function renderTypes() {
    const totals = new Map();
    for (const key of sortedKeys) {
      const entry = entries[key];
      const type = isRecord(entry) && typeof entry.type === 'string' ? entry.type : typeOfAddress(key);
      let total = totals.get(type);
      if (total === undefined) {
        total = { count: 0, messages: 0 };
        totals.set(type, total);
      }
      total.count += 1;
      if (isRecord(entry) && isNumber(entry.messages)) total.messages += entry.messages;
    }
    const types = [...totals.keys()].sort().slice(0, MAX_TYPE_ROWS);
    typeRows.render(types, (row, type) => {
      const total = totals.get(type);
      setText(row.cells[0], type);
      setText(row.cells[1], formatCount(total.count));
      setText(row.cells[2], formatCount(total.messages));
    });
  }

  function render(now) {
    if (matchingIsStale) {
      matching =
        filter === '' ? sortedKeys : sortedKeys.filter((_, index) => lowerKeys[index].includes(filter));
      matchingIsStale = false;
    }
    const pageCount = Math.max(1, Math.ceil(matching.length / PAGE_SIZE));
    page = Math.min(page, pageCount - 1);
    const visible = matching.slice(page * PAGE_SIZE, (page + 1) * PAGE_SIZE);

    while (rowPool.length < visible.length) rowPool.push(tableRow(['address', 'state', 'num', 'updated']));
    visible.forEach((address, index) => {
      const row = rowPool[index];
      renderRow(row, address, entries[address], now);
      if (row.parentNode !== rowsBody || rowsBody.children[index] !== row) rowsBody.append(row);
    });
    for (let index = visible.length; index < rowPool.length; index += 1) rowPool[index].remove();

    setText(pageLabel, `${page + 1} of ${pageCount}`);
    previousButton.disabled = page === 0;
    nextButton.disabled = page >= pageCount - 1;
    setText(
      countLabel,
      filter === ''
        ? `${formatCount(sortedKeys.length)} addresses`
        : `${formatCount(matching.length)} of ${formatCount(sortedKeys.length)} addresses`,
    );
    setText(
      emptyNote,
      sortedKeys.length === 0 ? 'No function addresses yet.' : 'No address matches the filter.',
    );
    emptyNote.hidden = visible.length > 0;
  }

  function renderRow(row, address, entry, now) {
    const [addressCell, stateCell, messagesCell, updatedCell] = row.cells;
    setAttribute(row, 'data-address', address);
    setText(addressCell, address);
    const record = isRecord(entry) ? entry : {};
    const text = stateTextOf(record);
    setText(stateCell, text.short);
    setAttribute(stateCell, 'title', text.long);
    setText(messagesCell, formatCount(record.messages));
    setText(updatedCell, formatAgo(record.updatedAt, now));
    setAttribute(updatedCell, 'title', formatTimestamp(record.updatedAt) || undefined);
  }

  function stateTextOf(record) {
    let text = stateText.get(record);
    if (text === undefined) {
      text = {
        short: compactJson(record.state, STATE_CHARS),
        long: compactJson(record.state, STATE_TITLE_CHARS),
      };
      stateText.set(record, text);
    }
    return text;
  }

  return {
    setEntries,
    render,
    /** Called when the user changed the filter or the page. */
    set onChange(callback) {
      onChange = callback;
    },
  };
}

function typeOfAddress(address) {
  const slash = address.lastIndexOf('/');
  return slash > 0 ? address.slice(0, slash) : address;
}

function sameKeys(keys, sortedKeys) {
  if (keys.length !== sortedKeys.length) return false;
  const known = new Set(sortedKeys);
  return keys.every((key) => known.has(key));
}
