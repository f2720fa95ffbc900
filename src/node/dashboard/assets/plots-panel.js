// The three plots over the last five minutes: throughput, latency per peer, backlog.

import { element, KeyedChildren, setClass, setText } from './dom.js';
import { drawLineChart } from './line-chart.js';
import { formatAmount } from './format.js';
/* global ResizeObserver */

function createChart(container, title, unit, formatValue) {
  const figure = element('figure', 'plot');
  const caption = element('figcaption');
  caption.append(element('span', 'plot-title', title), element('span', 'plot-unit', unit));
  const canvas = element('canvas');
  canvas.setAttribute('role', 'img');
  canvas.setAttribute('aria-label', `${title} over the last 5 minutes`);
  const legend = element('ul', 'legend');
  figure.append(caption, canvas, legend);
  container.append(figure);

  const legendItems = new KeyedChildren(legend, () => {
    const item = element('li');
    item.append(element('span', 'swatch'), element('span', 'legend-label'), element('span', 'legend-value'));
    return item;
  });

  return {
    canvas,
    /** `lines`: [{ key, label, series, colorIndex }]. */
    draw(lines, endTime) {
      drawLineChart(canvas, lines, { endTime, formatValue });
      legendItems.render(
        lines.map((line) => line.key),
        (item, key) => {
          const line = lines.find((candidate) => candidate.key === key);
          const [swatch, label, value] = item.children;
          setClass(swatch, `swatch series-${line.colorIndex % 8}`);
          setText(label, line.label);
          setText(value, formatValue(line.series.latestValue));
        },
      );
    },
  };
}

/** `labelFor(host)` names a peer (its member name when known). */
export function createPlotsPanel(container, schedule, labelFor) {
  const throughput = createChart(container, 'Throughput', 'messages/s', formatAmount);
  const latency = createChart(container, 'Latency', 'RTT ms', formatAmount);
  const backlog = createChart(container, 'Backlog', 'messages', formatAmount);
  let model;

  function render() {
    if (model === undefined) return;
    const endTime = Number.isFinite(model.throughput.grid.latestTime)
      ? model.throughput.grid.latestTime
      : Date.now();
    throughput.draw(
      [
        { key: 'processed', label: 'runtime processed', series: model.throughput.processed, colorIndex: 0 },
        { key: 'grid', label: 'grid in + out', series: model.throughput.grid, colorIndex: 1 },
      ],
      endTime,
    );
    latency.draw(
      [...model.latency.entries()].map(([host, series], index) => ({
        key: host,
        label: labelFor(host),
        series,
        colorIndex: index,
      })),
      endTime,
    );
    backlog.draw(
      [
        { key: 'runtime', label: 'runtime backlog', series: model.backlog.runtime, colorIndex: 2 },
        { key: 'hub', label: 'hub buffered', series: model.backlog.hub, colorIndex: 3 },
      ],
      endTime,
    );
  }

  // A canvas keeps its pixel size when the layout changes; redraw to the new size.
  const resized = new ResizeObserver(() => schedule(render));
  for (const chart of [throughput, latency, backlog]) resized.observe(chart.canvas);

  return {
    render(statsModel) {
      model = statsModel;
      render();
    },
  };
}
