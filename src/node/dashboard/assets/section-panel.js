// A panel for one optional section of node.stats (runtime, cluster, hub, mirror): hidden while
// the node does not publish the section, known fields under their labels, and any other numeric
// field the node adds later in a generic list, so a newer node still shows everything it reports.

import { element, KeyedChildren, setText } from './dom.js';
import { DASH, formatCount, humanizeKey, isNumber, isRecord } from './format.js';

const MAX_ENTRIES = 60;
const MAX_CHIPS = 24;

/**
 * `spec`: {
 *   fields: [[key, label, format?]],          numbers (or anything `format` reads)
 *   derived: [[label, (section, context) => text]],
 *   lists: [[key, label]],                     arrays of names, shown as chips
 *   maps: [[key, label]],                      records of counts (drops by reason…)
 * }
 */
export function createSectionPanel(section, spec) {
  const fields = spec.fields ?? [];
  const derived = spec.derived ?? [];
  const lists = spec.lists ?? [];
  const maps = spec.maps ?? [];
  const known = new Set([...fields, ...lists, ...maps].map(([key]) => key));

  const summary = keyValueList(section);
  const extras = keyValueList(section);
  const listBlocks = lists.map(([key, label]) => [key, chipList(section, label)]);
  const mapBlocks = maps.map(([key, label]) => {
    section.append(element('h3', undefined, label));
    return [key, keyValueList(section)];
  });

  return {
    render(data, context) {
      section.hidden = !isRecord(data);
      if (!isRecord(data)) return;
      summary.render([
        ...fields.map(([key, label, format = formatCount]) => [key, label, format(data[key])]),
        ...derived.map(([label, compute]) => [label, label, compute(data, context)]),
      ]);
      for (const [key, block] of listBlocks) block.render(data[key]);
      for (const [key, block] of mapBlocks) {
        const counts = isRecord(data[key]) ? Object.entries(data[key]) : [];
        block.render(counts.map(([name, count]) => [name, name, formatValue(count)]));
      }
      extras.render(extraEntries(data, known));
    },
  };
}

/** Fields the spec does not name: numbers, strings, and records of numbers one level down. */
function extraEntries(data, known) {
  const entries = [];
  for (const [key, value] of Object.entries(data)) {
    if (known.has(key)) continue;
    if (isNumber(value) || typeof value === 'string' || typeof value === 'boolean') {
      entries.push([key, humanizeKey(key), formatValue(value)]);
    } else if (Array.isArray(value)) {
      entries.push([key, humanizeKey(key), `${formatCount(value.length)} items`]);
    } else if (isRecord(value)) {
      for (const [name, inner] of Object.entries(value)) {
        if (isNumber(inner))
          entries.push([`${key}.${name}`, `${humanizeKey(key)} · ${name}`, formatCount(inner)]);
      }
    }
  }
  return entries;
}

function formatValue(value) {
  if (isNumber(value)) return formatCount(value);
  if (typeof value === 'string') return value.slice(0, 200);
  if (typeof value === 'boolean') return String(value);
  return DASH;
}

/** A <dl> of [key, label, text] rows, capped so that a runaway record stays readable. */
function keyValueList(parent) {
  const list = element('dl', 'kv');
  parent.append(list);
  const rows = new KeyedChildren(list, () => {
    const row = element('div');
    row.append(element('dt'), element('dd'));
    return row;
  });
  const more = element('p', 'more');
  parent.append(more);
  return {
    render(entries) {
      const shown = entries.slice(0, MAX_ENTRIES);
      const byKey = new Map(shown.map((entry) => [entry[0], entry]));
      rows.render([...byKey.keys()], (row, key) => {
        const [, label, text] = byKey.get(key);
        setText(row.firstChild, label);
        setText(row.lastChild, text);
      });
      list.hidden = byKey.size === 0;
      setText(more, entries.length > shown.length ? `+${entries.length - shown.length} more` : '');
      more.hidden = entries.length <= shown.length;
    },
  };
}

/** Names (stories, function types) as chips, with a count. */
function chipList(parent, label) {
  const heading = element('h3');
  const chips = element('ul', 'chips');
  parent.append(heading, chips);
  const items = new KeyedChildren(chips, () => element('li', 'chip'));
  return {
    render(value) {
      const names = Array.isArray(value) ? [...new Set(value.map(String))] : [];
      const shown = names.slice(0, MAX_CHIPS);
      if (names.length > shown.length) shown.push(`+${names.length - MAX_CHIPS} more`);
      items.render(shown, (chip, name) => setText(chip, name));
      setText(heading, `${label} (${formatCount(names.length)})`);
    },
  };
}
