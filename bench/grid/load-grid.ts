// The grid as users run it, compiled (see ../load-built.ts).

import { loadBuilt } from '../load-built.ts';

export type GridModule = typeof import('../../src/grid/index.ts');

export function loadGrid(): Promise<GridModule> {
  return loadBuilt<GridModule>('weft/grid');
}
