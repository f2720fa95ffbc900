// The StateFun SDK as users run it, compiled (see ../load-built.ts).

import { loadBuilt } from '../load-built.ts';

export type StatefunModule = typeof import('../../src/statefun/index.ts');

export function loadStatefun(): Promise<StatefunModule> {
  return loadBuilt<StatefunModule>('weft/statefun');
}
