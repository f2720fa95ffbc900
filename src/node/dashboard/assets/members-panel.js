// Members of the cluster (the cluster.members view): one row per host, this node first.

import { element, KeyedChildren, setAttribute, setClass, setText, tableRow } from './dom.js';
import { formatAgo, formatAmount, formatTimestamp, isRecord } from './format.js';
import { renderStateBadge, stateName } from './state-badge.js';

export function createMembersPanel(body, countLabel, emptyNote) {
  const rows = new KeyedChildren(body, (host) => {
    const row = tableRow(['name', 'host', '', 'num', 'since']);
    row.dataset.host = host;
    row.cells[0].append(element('span', 'member-name'), element('span', 'tag', 'self'));
    row.cells[2].append(element('span', 'badge'));
    return row;
  });

  return {
    render(members, now) {
      const entries = isRecord(members)
        ? Object.entries(members).filter(([, member]) => isRecord(member))
        : [];
      entries.sort(([hostA, a], [hostB, b]) => {
        if (Boolean(a.self) !== Boolean(b.self)) return a.self ? -1 : 1;
        return compareText(nameOf(a, hostA), nameOf(b, hostB)) || compareText(hostA, hostB);
      });
      const byHost = new Map(entries);
      rows.render(
        entries.map(([host]) => host),
        (row, host) => {
          const member = byHost.get(host);
          const [nameCell, hostCell, stateCell, rttCell, sinceCell] = row.cells;
          setAttribute(row, 'data-state', stateName(member.state));
          setClass(row, member.self === true ? 'self' : '');
          setText(nameCell.firstChild, nameOf(member, host));
          nameCell.lastChild.hidden = member.self !== true;
          setText(hostCell, typeof member.host === 'string' ? member.host : host);
          renderStateBadge(stateCell.firstChild, member.state);
          setText(rttCell, formatAmount(member.rttMs));
          setText(sinceCell, formatAgo(member.since, now));
          setAttribute(sinceCell, 'title', formatTimestamp(member.since) || undefined);
        },
      );
      setText(countLabel, entries.length === 0 ? '' : String(entries.length));
      emptyNote.hidden = entries.length > 0;
    },
  };
}

function nameOf(member, host) {
  return typeof member.name === 'string' && member.name.length > 0 ? member.name : host;
}

function compareText(a, b) {
  return a < b ? -1 : a > b ? 1 : 0;
}
