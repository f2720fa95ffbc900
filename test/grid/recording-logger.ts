// A grid Logger for tests: it keeps every line it is given.

import type { Logger } from '../../src/grid/logger.ts';

export interface LogLine {
  readonly level: 'warn' | 'error';
  readonly message: string;
  readonly details: Record<string, unknown> | undefined;
}

export class RecordingLogger implements Logger {
  readonly lines: LogLine[] = [];

  warn(message: string, details?: Record<string, unknown>): void {
    this.lines.push({ level: 'warn', message, details });
  }

  error(message: string, details?: Record<string, unknown>): void {
    this.lines.push({ level: 'error', message, details });
  }
}
