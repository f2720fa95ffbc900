// Logging must never break what it reports on: a logger that throws loses its line, nothing more.

/** Where a module reports what no caller hears. The shape `console` and pino share. */
export interface Logger {
  warn(message: string, details?: Record<string, unknown>): void;
  error(message: string, details?: Record<string, unknown>): void;
}

/** Calls `log`, ignoring a logger that throws. */
export function logSafely(log: () => void): void {
  try {
    log();
  } catch {
    // A broken logger loses this line; the failure itself still reaches the caller or the stats.
  }
}
