// weft/views and weft/testing as users run them, compiled (see ../load-built.ts).

import { loadBuilt } from '../load-built.ts';

export type ViewsModule = typeof import('../../src/views/index.ts');
export type TestingModule = typeof import('../../src/testing/index.ts');

export function loadViews(): Promise<ViewsModule> {
  return loadBuilt<ViewsModule>('weft/views');
}

export function loadTesting(): Promise<TestingModule> {
  return loadBuilt<TestingModule>('weft/testing');
}
