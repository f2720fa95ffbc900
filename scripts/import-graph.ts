// The module graph behind `npm run check:imports`, as pure functions over file edges.
//
// Files are named by their path under src/ with `/` separators (`grid/mux.ts`); a
// file's module is its first path segment. Imports inside one module are free; an
// import between modules must follow the layering table, must not close a cycle, and
// must go through the target's `index.ts` unless the target is imported file by file.

import type { Layering } from './layering.ts';

/** One relative import: the file that imports and the file it resolves to. */
export interface FileEdge {
  readonly from: string;
  readonly to: string;
}

export interface ModuleGraph {
  /** Every module seen, with its files, sorted. */
  readonly modules: ReadonlyMap<string, readonly string[]>;
  /** Imports between different modules: from module → to module → the file edges, sorted. */
  readonly edges: ReadonlyMap<string, ReadonlyMap<string, readonly FileEdge[]>>;
}

/** A cycle between modules, `modules` closed (`['grid', 'views', 'grid']`), one file edge per step. */
export interface ModuleCycle {
  readonly modules: readonly string[];
  readonly examples: readonly FileEdge[];
}

export type LayeringViolation =
  | { readonly kind: 'unknown-module'; readonly module: string; readonly file: string }
  | {
      readonly kind: 'disallowed';
      readonly from: string;
      readonly to: string;
      readonly imports: readonly FileEdge[];
    };

export function moduleOf(file: string): string {
  const slash = file.indexOf('/');
  if (slash <= 0) throw new Error(`${file} is not inside a module directory`);
  return file.slice(0, slash);
}

/** Builds the graph from file edges; `files` adds modules whose files import nothing. */
export function buildModuleGraph(imports: Iterable<FileEdge>, files: Iterable<string> = []): ModuleGraph {
  const modules = new Map<string, Set<string>>();
  const edges = new Map<string, Map<string, FileEdge[]>>();
  const addFile = (file: string): string => {
    const module = moduleOf(file);
    getOrCreate(modules, module, () => new Set<string>()).add(file);
    return module;
  };
  for (const file of files) addFile(file);
  for (const edge of imports) {
    const from = addFile(edge.from);
    const to = addFile(edge.to);
    if (from === to) continue;
    const targets = getOrCreate(edges, from, () => new Map<string, FileEdge[]>());
    getOrCreate(targets, to, () => []).push(edge);
  }
  return {
    modules: new Map(sortedEntries(modules).map(([module, set]) => [module, [...set].sort()])),
    edges: new Map(
      sortedEntries(edges).map(([from, targets]) => [
        from,
        new Map(sortedEntries(targets).map(([to, list]) => [to, [...list].sort(compareEdges)])),
      ]),
    ),
  };
}

/**
 * Finds the cycles between modules. Each strongly connected component of more than
 * one module is tangled; for it we report cycles until every edge inside it is on
 * one of them, so every import that has to go is shown, not just the first cycle.
 */
export function findCycles(graph: ModuleGraph): ModuleCycle[] {
  const cycles: ModuleCycle[] = [];
  for (const component of stronglyConnectedComponents(graph)) {
    if (component.size < 2) continue;
    const covered = new Set<string>();
    for (const [from, targets] of graph.edges) {
      if (!component.has(from)) continue;
      for (const to of targets.keys()) {
        if (!component.has(to) || covered.has(stepKey(from, to))) continue;
        // Inside a component there is always a way back from `to` to `from`.
        const back = shortestPath(graph, to, from, component);
        const chain = [from, ...back];
        for (let i = 1; i < chain.length; i++) covered.add(stepKey(must(chain[i - 1]), must(chain[i])));
        cycles.push(describeCycle(graph, chain));
      }
    }
  }
  return cycles;
}

/** Checks every module against the table and every import between modules against its row. */
export function checkLayering(graph: ModuleGraph, layering: Layering): LayeringViolation[] {
  const allowed = new Map(Object.entries(layering.allowed));
  const violations: LayeringViolation[] = [];
  for (const [module, files] of graph.modules) {
    if (!allowed.has(module)) violations.push({ kind: 'unknown-module', module, file: must(files[0]) });
  }
  for (const [from, targets] of graph.edges) {
    const mayImport = allowed.get(from);
    if (mayImport === undefined) continue;
    for (const [to, imports] of targets) {
      if (!allowed.has(to) || mayImport.includes(to) || layering.importableByAll.includes(to)) continue;
      violations.push({ kind: 'disallowed', from, to, imports });
    }
  }
  return violations;
}

/** Imports that reach into another module past its `index.ts`. */
export function findDeepImports(imports: Iterable<FileEdge>, layering: Layering): FileEdge[] {
  const deep: FileEdge[] = [];
  for (const edge of imports) {
    const from = moduleOf(edge.from);
    const to = moduleOf(edge.to);
    if (from === to || layering.fileByFile.includes(to) || edge.to === `${to}/index.ts`) continue;
    deep.push(edge);
  }
  return deep.sort(compareEdges);
}

// Tarjan's algorithm; the graph has a dozen modules, so recursion depth is no concern.
function stronglyConnectedComponents(graph: ModuleGraph): Set<string>[] {
  const index = new Map<string, number>();
  const lowLink = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: Set<string>[] = [];

  const visit = (module: string): void => {
    const order = index.size;
    index.set(module, order);
    lowLink.set(module, order);
    stack.push(module);
    onStack.add(module);
    for (const next of graph.edges.get(module)?.keys() ?? []) {
      if (!index.has(next)) {
        visit(next);
        lowLink.set(module, Math.min(must(lowLink.get(module)), must(lowLink.get(next))));
      } else if (onStack.has(next)) {
        lowLink.set(module, Math.min(must(lowLink.get(module)), must(index.get(next))));
      }
    }
    if (lowLink.get(module) !== order) return;
    const component = new Set<string>();
    let member: string | undefined;
    do {
      member = stack.pop();
      if (member === undefined) break;
      onStack.delete(member);
      component.add(member);
    } while (member !== module);
    components.push(component);
  };

  for (const module of graph.modules.keys()) if (!index.has(module)) visit(module);
  return components;
}

/** Breadth-first path `start → … → goal` within `component`, excluding `start`, including `goal`. */
function shortestPath(graph: ModuleGraph, start: string, goal: string, component: Set<string>): string[] {
  const cameFrom = new Map<string, string | undefined>([[start, undefined]]);
  const queue = [start];
  for (let head = 0; head < queue.length; head++) {
    const module = must(queue[head]);
    if (module === goal) break;
    for (const next of graph.edges.get(module)?.keys() ?? []) {
      if (!component.has(next) || cameFrom.has(next)) continue;
      cameFrom.set(next, module);
      queue.push(next);
    }
  }
  if (!cameFrom.has(goal)) throw new Error(`no path from ${start} to ${goal} inside its component`);
  const path: string[] = [];
  for (let module: string | undefined = goal; module !== undefined; module = cameFrom.get(module)) {
    path.unshift(module);
  }
  return path;
}

/** Turns the closed chain into a cycle that starts at its first module by name, for stable output. */
function describeCycle(graph: ModuleGraph, closedChain: readonly string[]): ModuleCycle {
  const open = closedChain.slice(0, -1);
  const first = open.indexOf(open.reduce((min, module) => (module < min ? module : min)));
  const rotated = [...open.slice(first), ...open.slice(0, first)];
  const modules = [...rotated, must(rotated[0])];
  const examples = rotated.map((from, i) => {
    const to = must(modules[i + 1]);
    return must(graph.edges.get(from)?.get(to)?.[0]);
  });
  return { modules, examples };
}

function stepKey(from: string, to: string): string {
  return `${from}\0${to}`;
}

function compareEdges(a: FileEdge, b: FileEdge): number {
  return compareStrings(a.from, b.from) || compareStrings(a.to, b.to);
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function sortedEntries<V>(map: ReadonlyMap<string, V>): [string, V][] {
  return [...map].sort(([a], [b]) => compareStrings(a, b));
}

function getOrCreate<K, V>(map: Map<K, V>, key: K, create: () => V): V {
  let value = map.get(key);
  if (value === undefined) {
    value = create();
    map.set(key, value);
  }
  return value;
}

/** Unwraps a lookup the algorithm has already filled; a miss is a bug in this file. */
function must<V>(value: V | undefined): V {
  if (value === undefined) throw new Error('import-graph: internal lookup missed');
  return value;
}
