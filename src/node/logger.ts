// Structured logs for the node process, with pino (JSON lines on stdout; the level from config).
// Only the node logs with pino: the library modules take a small `Logger` (message, details),
// and `moduleLogger` adapts pino to it, naming the module on every line.

import { pino, type Logger as PinoLogger } from 'pino';

import type { Logger } from '../internal/log-safely.ts';
import type { LogLevel } from './config.ts';

export type NodeLogger = PinoLogger;

export function createNodeLogger(options: {
  readonly level: LogLevel;
  readonly name: string;
  /** Where lines go. Default stdout. */
  readonly destination?: NodeJS.WritableStream | undefined;
}): NodeLogger {
  const settings = { level: options.level, base: { node: options.name } };
  return options.destination === undefined
    ? pino(settings)
    : pino(settings, options.destination as unknown as pino.DestinationStream);
}

/** The library modules' logger shape over pino, each line tagged with `module`. */
export function moduleLogger(
  logger: NodeLogger,
  module: string,
): Logger & {
  info(message: string, details?: Record<string, unknown>): void;
} {
  const child = logger.child({ module });
  return {
    info: (message, details) => {
      child.info(details ?? {}, message);
    },
    warn: (message, details) => {
      child.warn(details ?? {}, message);
    },
    error: (message, details) => {
      child.error(details ?? {}, message);
    },
  };
}
