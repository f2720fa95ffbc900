// Coord as the benchmarks run it: compiled in dist/ (see ../load-built.ts). The mirror and HRW
// are not exported by the package yet, so they are loaded by their path under dist/.

import type * as HrwModule from '../../src/coord/hrw.ts';
import type * as MirrorModule from '../../src/coord/mirror/mirror.ts';
import type * as Testing from '../../src/testing/index.ts';
import { loadBuilt, loadBuiltInternal } from '../load-built.ts';

export type Hrw = typeof HrwModule;
export type Mirror = MirrorModule.Mirror;
export type MirrorClass = typeof MirrorModule.Mirror;
export type TestGrid = Testing.TestGrid;

export async function loadHrw(): Promise<Hrw> {
  return loadBuiltInternal<Hrw>('coord/hrw.js');
}

export async function loadMirror(): Promise<MirrorClass> {
  return (await loadBuiltInternal<typeof MirrorModule>('coord/mirror/mirror.js')).Mirror;
}

export async function loadTestGrid(): Promise<typeof Testing.TestGrid> {
  return (await loadBuilt<typeof Testing>('weft/testing')).TestGrid;
}
