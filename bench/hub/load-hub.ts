// weft/hub as the bench runs it: compiled (dist/hub), since the package does not export it yet.

import { loadBuiltInternal } from '../load-built.ts';

export type HubModule = typeof import('../../src/hub/index.ts');

export function loadHub(): Promise<HubModule> {
  return loadBuiltInternal<HubModule>('hub/index.js');
}

export type HubGridModule = typeof import('../../src/hub/grid/index.ts');

/** The hub's grid serving and connector transport (dist/hub/grid). */
export function loadHubGrid(): Promise<HubGridModule> {
  return loadBuiltInternal<HubGridModule>('hub/grid/index.js');
}
