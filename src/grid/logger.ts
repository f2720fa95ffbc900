// What the grid tells an operator that no caller hears: a handler that failed on this node,
// a peer that keeps refusing our handshake. The same shape as the views and statefun
// loggers (console fits, and so does pino); the default is `console`.

export interface Logger {
  warn(message: string, details?: Record<string, unknown>): void;
  error(message: string, details?: Record<string, unknown>): void;
}

/** Calls `log`, ignoring a logger that throws: logging must never break the connection. */
export function logSafely(log: () => void): void {
  try {
    log();
  } catch {
    // A broken logger loses this line; the failure itself still reaches the caller or the stats.
  }
}
