// The grid as users run it: compiled by tsc into dist/ and loaded through the package's
// exports, not src/ through tsx, whose keep-names wrappers add about a tenth to the hot
// paths. `npm run bench` builds first. Types come from the sources, which dist/ mirrors.

export type GridModule = typeof import('../../src/grid/index.ts');

export async function loadGrid(): Promise<GridModule> {
  // A variable specifier: resolved at run time through package.json "exports" (dist/),
  // and not by the type checker, which may run before anything is built.
  const specifier = 'weft/grid';
  return (await import(specifier)) as GridModule;
}
