// What an ingress tells an operator that no sender hears: a message it refused for good, a
// runtime that pushes back, a failure it could not map to an answer. The same shape as the grid's
// and the views' loggers (console fits, and so does pino).

import type { Logger } from '../../internal/log-safely.ts';

export type IngressLogger = Logger;
