// The runtime as users run it, compiled (see ../load-built.ts), and the types of what it exports.

import { loadBuilt } from '../load-built.ts';

export type RuntimeModule = typeof import('../../src/runtime/index.ts');
export type Runtime = import('../../src/runtime/index.ts').Runtime;
export type BatchEvent = import('../../src/runtime/index.ts').BatchEvent;
export type LmdbStateStore = import('../../src/runtime/index.ts').LmdbStateStore;

/** Where the runtime publishes a `BatchEvent` for every committed batch (diagnostics_channel). */
export const batchChannelName = 'weft:runtime:batch';

export function loadRuntime(): Promise<RuntimeModule> {
  return loadBuilt<RuntimeModule>('weft/runtime');
}
