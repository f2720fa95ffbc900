// The node's published views and how many watchers each has (node.stats views).

import { KeyedChildren, setText, tableRow } from './dom.js';
import { formatCount, isRecord } from './format.js';

export function createViewsPanel(body, emptyNote) {
  const rows = new KeyedChildren(body, (name) => {
    const row = tableRow(['view-name', 'num']);
    row.dataset.view = name;
    return row;
  });

  return {
    render(stats) {
      const views = isRecord(stats?.views) ? stats.views : {};
      const names = Object.keys(views).sort();
      rows.render(names, (row, name) => {
        const view = views[name];
        setText(row.cells[0], name);
        setText(row.cells[1], formatCount(isRecord(view) ? view.watchers : undefined));
      });
      emptyNote.hidden = names.length > 0;
    },
  };
}
