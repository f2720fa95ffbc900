// Grid connections (node.stats grid.connections): one row per peer, with byte and message
// rates from the deltas between the last two snapshots.

import { KeyedChildren, element, setText, tableRow } from './dom.js';
import { formatAmount, formatBytes, formatCount, isRecord } from './format.js';
import { renderStateBadge } from './state-badge.js';

export function createGridPanel(body, countLabel, emptyNote) {
  const rows = new KeyedChildren(body, (host) => {
    const row = tableRow(['peer', '', 'num', 'num', 'num', 'num', 'num']);
    row.dataset.host = host;
    row.cells[0].append(element('span', 'peer-name'), element('span', 'peer-host'));
    row.cells[1].append(element('span', 'badge'));
    return row;
  });

  return {
    /** `labelFor(host)` is the peer's member name, or undefined when unknown. */
    render(stats, connectionRates, labelFor) {
      const connections =
        isRecord(stats?.grid) && isRecord(stats.grid.connections) ? stats.grid.connections : {};
      const entries = Object.entries(connections).filter(([, connection]) => isRecord(connection));
      entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      const byHost = new Map(entries);
      rows.render(
        entries.map(([host]) => host),
        (row, host) => {
          const connection = byHost.get(host);
          const rates = connectionRates.get(host) ?? {};
          const [peerCell, stateCell, streamsCell, requestsCell, bytesCell, messagesCell, rttCell] =
            row.cells;
          const name = labelFor(host);
          setText(peerCell.firstChild, name ?? host);
          setText(peerCell.lastChild, name === undefined ? '' : host);
          renderStateBadge(stateCell.firstChild, connection.state);
          setText(streamsCell, pair(formatCount(connection.streamsIn), formatCount(connection.streamsOut)));
          setText(
            requestsCell,
            pair(formatCount(connection.requestsIn), formatCount(connection.requestsOut)),
          );
          setText(bytesCell, pair(formatBytes(rates.bytesIn), formatBytes(rates.bytesOut)));
          setText(messagesCell, pair(formatAmount(rates.messagesIn), formatAmount(rates.messagesOut)));
          setText(rttCell, formatAmount(connection.rttMs));
        },
      );
      setText(countLabel, entries.length === 0 ? '' : String(entries.length));
      emptyNote.hidden = entries.length > 0;
    },
  };
}

function pair(inbound, outbound) {
  return `${inbound} / ${outbound}`;
}
