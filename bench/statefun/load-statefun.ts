// Our SDK as users run it: compiled by tsc into dist/ and loaded through the package's
// exports, not src/ through tsx. `npm run bench` builds first. Types come from the sources,
// which dist/ mirrors.

export type StatefunModule = typeof import('../../src/statefun/index.ts');

export async function loadStatefun(): Promise<StatefunModule> {
  // A variable specifier: resolved at run time through package.json "exports" (dist/), and
  // not by the type checker, which may run before anything is built.
  const specifier = 'weft/statefun';
  return (await import(specifier)) as StatefunModule;
}
