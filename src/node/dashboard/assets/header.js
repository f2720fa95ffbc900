// The page header: which node this is, how long it has been up, and the state of each live
// connection to it (one EventSource per view).
/* global document */

import { element, setAttribute, setClass, setText } from './dom.js';
import { formatDuration, isNumber, isRecord } from './format.js';

const STATUS_TEXT = {
  connecting: 'connecting',
  live: 'live',
  reconnecting: 'reconnecting',
  offline: 'offline',
  error: 'error',
};

export function createHeader({ nameLabel, urlLabel, uptimeLabel, streamList }) {
  return {
    /** Adds the indicator for a view; returns the function that updates it. */
    indicatorFor(viewName) {
      const item = element('li', 'stream status-connecting');
      item.append(
        element('span', 'dot'),
        element('span', 'stream-name', viewName),
        element('span', 'stream-state'),
      );
      streamList.append(item);
      return (status, detail) => {
        setClass(item, `stream status-${status}`);
        setText(item.lastChild, STATUS_TEXT[status] ?? status);
        setAttribute(
          item,
          'title',
          detail === undefined ? `${viewName}: ${status}` : `${viewName}: ${detail}`,
        );
      };
    },

    render(stats, selfMember) {
      const node = isRecord(stats) && typeof stats.node === 'string' ? stats.node : selfMember?.host;
      const name = isRecord(stats) && typeof stats.name === 'string' ? stats.name : selfMember?.name;
      const label = typeof name === 'string' && name.length > 0 ? name : 'Weft node';
      setText(nameLabel, label);
      setText(urlLabel, typeof node === 'string' ? node : '');
      const title = `${label} · Weft`;
      if (document.title !== title) document.title = title;
      const uptime =
        isRecord(stats) && isNumber(stats.now) && isNumber(stats.startedAt)
          ? stats.now - stats.startedAt
          : undefined;
      setText(uptimeLabel, formatDuration(uptime));
    },
  };
}
