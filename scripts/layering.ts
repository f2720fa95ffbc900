// Which module may import which: DESIGN.md §1 written down as data, so that
// `npm run check:imports` can hold the code to it.
//
// A module is a top-level directory of src/. Every module must appear in `allowed`,
// even one that imports nothing: a new module is placed in the layers on purpose,
// not by whatever its first import happens to be. The table must itself be acyclic
// (a unit test checks it), which is what makes "no import cycles" hold by design.

export interface Layering {
  /** For each module, the other modules it may import. */
  readonly allowed: Readonly<Record<string, readonly string[]>>;
  /** Modules that every module may import, file by file: generated code with no API of its own. */
  readonly importableByAll: readonly string[];
  /** Modules with no public `index.ts`, whose files are imported one by one. */
  readonly fileByFile: readonly string[];
}

const libraries = ['internal', 'grid', 'statefun', 'views', 'coord', 'hub', 'runtime'];

export const LAYERING: Layering = {
  allowed: {
    internal: [],
    gen: [],
    grid: ['internal'],
    // The SDK stays off the grid: a StateFun user must not pull in the transport.
    statefun: ['internal'],
    views: ['grid', 'internal'],
    // The content mirror lives inside coord.
    coord: ['grid', 'internal'],
    hub: ['grid', 'internal'],
    runtime: ['statefun', 'grid', 'coord', 'views', 'hub', 'internal'],
    testing: libraries,
    // The package root: the errors of every library and the version.
    weft: libraries,
    node: libraries,
    // The executable prints the package's version from the root entry.
    cli: [...libraries, 'node', 'weft'],
  },
  importableByAll: ['gen'],
  fileByFile: ['internal', 'gen'],
};
