// A small line chart on a <canvas>: a time axis ending now, a value axis from zero to a round
// maximum, one line per series. Colours come from the stylesheet (--series-N), so the legend
// swatches and the lines share one palette.
/* global getComputedStyle, window */

import { PLOT_WINDOW_MS } from './time-series.js';

export const PALETTE_SIZE = 8;

/** `lines`: [{ series: TimeSeries, colorIndex }]. */
export function drawLineChart(canvas, lines, { endTime, formatValue }) {
  const context = canvas.getContext('2d');
  if (context === null) return;
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth;
  const height = canvas.clientHeight;
  if (width === 0 || height === 0) return;
  const pixelWidth = Math.round(width * ratio);
  const pixelHeight = Math.round(height * ratio);
  if (canvas.width !== pixelWidth) canvas.width = pixelWidth;
  if (canvas.height !== pixelHeight) canvas.height = pixelHeight;
  context.setTransform(ratio, 0, 0, ratio, 0, 0);
  context.clearRect(0, 0, width, height);

  const style = getComputedStyle(canvas);
  const gridColor = style.getPropertyValue('--plot-grid').trim() || '#e5e7eb';
  const textColor = style.getPropertyValue('--plot-text').trim() || '#6b7280';
  const startTime = endTime - PLOT_WINDOW_MS;

  let max = 0;
  for (const { series } of lines) {
    series.forEach((time, value) => {
      if (time >= startTime && value > max) max = value;
    });
  }
  const top = roundUp(max);

  const padTop = 14;
  const padBottom = 4;
  const plotHeight = height - padTop - padBottom;
  const x = (time) => ((time - startTime) / PLOT_WINDOW_MS) * width;
  const y = (value) => padTop + plotHeight - (value / top) * plotHeight;

  context.lineWidth = 1;
  context.strokeStyle = gridColor;
  context.fillStyle = textColor;
  context.font = '11px system-ui, sans-serif';
  context.textBaseline = 'bottom';
  for (const fraction of [0, 0.5, 1]) {
    const lineY = Math.round(y(top * fraction)) + 0.5;
    context.beginPath();
    context.moveTo(0, lineY);
    context.lineTo(width, lineY);
    context.stroke();
    if (fraction > 0) context.fillText(formatValue(top * fraction), 2, lineY - 1);
  }

  context.lineWidth = 1.5;
  context.lineJoin = 'round';
  for (const { series, colorIndex } of lines) {
    context.strokeStyle = style.getPropertyValue(`--series-${colorIndex % PALETTE_SIZE}`).trim() || '#2563eb';
    context.beginPath();
    let drawing = false;
    series.forEach((time, value) => {
      if (time < startTime || Number.isNaN(value)) {
        drawing = false;
        return;
      }
      if (drawing) context.lineTo(x(time), y(value));
      else context.moveTo(x(time), y(value));
      drawing = true;
    });
    context.stroke();
  }
}

/** The smallest 1, 2 or 5 × 10^n at or above `value` (1 for an empty chart). */
function roundUp(value) {
  if (!(value > 0)) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) {
    if (step * magnitude >= value) return step * magnitude;
  }
  return 10 * magnitude;
}
