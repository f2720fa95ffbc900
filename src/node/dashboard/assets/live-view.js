// One view of the node, followed live over Server-Sent Events. EventSource reconnects by itself
// after a dropped connection; it gives up only when the node answers with something that is not
// an event stream (an error status), and then this module tries again after a backoff.
/* global EventSource, MessageEvent, setTimeout, clearTimeout */

const RETRY_FIRST_MS = 1000;
const RETRY_MAX_MS = 30_000;

/** Where a view is published: a same-origin path, so the page works wherever the node is. */
export function viewUrl(name) {
  return `/v1/views/${encodeURIComponent(name)}`;
}

/**
 * Follows a view. `onUpdate(text)` receives the raw JSON of each whole value (parsing is left
 * to the caller so that it can skip values superseded before the next frame);
 * `onStatus(status, detail)` reports 'connecting' | 'live' | 'reconnecting' | 'offline' | 'error'.
 */
export function followView(name, { onUpdate, onStatus }) {
  let source;
  let retryMs = RETRY_FIRST_MS;
  let retryTimer;

  function connect() {
    retryTimer = undefined;
    source = new EventSource(viewUrl(name));
    onStatus('connecting');
    source.addEventListener('open', () => {
      retryMs = RETRY_FIRST_MS;
      onStatus('live');
    });
    source.addEventListener('update', (event) => {
      onUpdate(event.data);
      onStatus('live');
    });
    source.addEventListener('error', (event) => {
      // The node's own `error` events carry data; the browser's connection errors do not.
      if (event instanceof MessageEvent && typeof event.data === 'string') {
        onStatus('error', serverErrorText(event.data));
        return;
      }
      if (source.readyState !== EventSource.CLOSED) {
        onStatus('reconnecting');
        return;
      }
      onStatus('offline', `retrying in ${Math.round(retryMs / 1000)}s`);
      retryTimer = setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, RETRY_MAX_MS);
    });
  }

  connect();
  return {
    close() {
      if (retryTimer !== undefined) clearTimeout(retryTimer);
      source.close();
    },
  };
}

function serverErrorText(data) {
  try {
    const parsed = JSON.parse(data);
    if (parsed !== null && typeof parsed === 'object' && typeof parsed.error === 'string') {
      return parsed.error;
    }
  } catch {
    // not JSON: show it as it came
  }
  return data.slice(0, 200);
}
