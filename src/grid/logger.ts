// What the grid tells an operator that no caller hears: a handler that failed on this node,
// a peer that keeps refusing our handshake. The same shape as the views and statefun
// loggers (console fits, and so does pino); the default is `console`.

export { logSafely, type Logger } from '../internal/log-safely.ts';
