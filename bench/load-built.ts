// Weft as users run it: compiled by tsc into dist/ and loaded through the package's exports,
// not src/ through tsx, whose keep-names wrappers add about a tenth to hot paths.
// `npm run bench` builds first. Callers name the type from the sources, which dist/ mirrors.

import path from 'node:path';
import { pathToFileURL } from 'node:url';

export async function loadBuilt<Module>(
  subpath: 'weft/grid' | 'weft/statefun' | 'weft/views' | 'weft/testing' | 'weft/runtime',
): Promise<Module> {
  // Imported through a variable: resolved at run time through package.json "exports" (dist/),
  // and not by the type checker, which may run before anything is built.
  const specifier: string = subpath;
  return (await import(specifier)) as Module;
}

/**
 * A compiled module that the package does not export, such as the grid's frame codec, by its
 * path under dist/ (e.g. `grid/frame.js`): the same code the exported modules run.
 */
export async function loadBuiltInternal<Module>(distPath: string): Promise<Module> {
  const file = path.resolve(import.meta.dirname, '..', 'dist', distPath);
  return (await import(pathToFileURL(file).href)) as Module;
}
