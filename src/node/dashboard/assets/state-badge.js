// A connection or member state as a coloured badge. The state text comes from the network, so
// only the states the page knows pick a colour class; anything else gets the neutral one.

import { setAttribute, setClass, setText } from './dom.js';

const KNOWN_STATES = new Set(['connected', 'connecting', 'disconnected', 'unconnected', 'shutdown', 'left']);

export function stateName(value) {
  return typeof value === 'string' && value.length > 0 ? value : 'unknown';
}

export function renderStateBadge(badge, value) {
  const state = stateName(value);
  setClass(badge, `badge state-${KNOWN_STATES.has(state) ? state : 'other'}`);
  setText(badge, state);
  setAttribute(badge, 'title', state);
}
