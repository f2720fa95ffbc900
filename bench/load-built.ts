// Weft as users run it: compiled by tsc into dist/ and loaded through the package's exports,
// not src/ through tsx, whose keep-names wrappers add about a tenth to hot paths.
// `npm run bench` builds first. Callers name the type from the sources, which dist/ mirrors.

export async function loadBuilt<Module>(
  subpath: 'weft/grid' | 'weft/statefun' | 'weft/views' | 'weft/testing',
): Promise<Module> {
  // Imported through a variable: resolved at run time through package.json "exports" (dist/),
  // and not by the type checker, which may run before anything is built.
  const specifier: string = subpath;
  return (await import(specifier)) as Module;
}
