// weft/node as the bench runs it: compiled (dist/node, the file the package's `weft/node` export
// names), as users run it; see ../load-built.ts.

import { loadBuiltInternal } from '../load-built.ts';

export type NodeModule = typeof import('../../src/node/index.ts');

export function loadNode(): Promise<NodeModule> {
  return loadBuiltInternal<NodeModule>('node/index.js');
}
