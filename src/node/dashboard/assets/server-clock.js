// The node's clock as seen from the page. Ages ("since", "updated") are differences of the
// node's own timestamps, so they are measured against the node's time, not the browser's.

let offsetMs = 0;

/** Records the node's time as of now (the `now` field of node.stats). */
export function observeServerTime(serverNowMs) {
  if (typeof serverNowMs === 'number' && Number.isFinite(serverNowMs)) {
    offsetMs = serverNowMs - Date.now();
  }
}

export function serverNow() {
  return Date.now() + offsetMs;
}
