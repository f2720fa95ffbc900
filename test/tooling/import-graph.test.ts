import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  buildModuleGraph,
  checkLayering,
  findCycles,
  findDeepImports,
  moduleOf,
  type FileEdge,
} from '../../scripts/import-graph.ts';
import { LAYERING } from '../../scripts/layering.ts';

/** `'grid/a.ts -> views/index.ts'` reads better in a test than an object literal. */
function edges(...lines: string[]): FileEdge[] {
  return lines.map((line) => {
    const [from, to] = line.split(' -> ');
    assert.ok(from !== undefined && to !== undefined, `bad edge ${line}`);
    return { from, to };
  });
}

describe('findCycles', () => {
  it('reports a cycle of two modules as a chain with one file edge per step', () => {
    const graph = buildModuleGraph(
      edges(
        'views/store.ts -> grid/index.ts',
        'grid/mux.ts -> views/index.ts',
        'grid/mux.ts -> internal/clock.ts',
      ),
    );
    assert.deepEqual(findCycles(graph), [
      {
        modules: ['grid', 'views', 'grid'],
        examples: edges('grid/mux.ts -> views/index.ts', 'views/store.ts -> grid/index.ts'),
      },
    ]);
  });

  it('reports a cycle of three modules in the order the imports run', () => {
    const graph = buildModuleGraph(
      edges('views/a.ts -> coord/index.ts', 'hub/b.ts -> views/index.ts', 'coord/c.ts -> hub/index.ts'),
    );
    assert.deepEqual(findCycles(graph), [
      {
        modules: ['coord', 'hub', 'views', 'coord'],
        examples: edges(
          'coord/c.ts -> hub/index.ts',
          'hub/b.ts -> views/index.ts',
          'views/a.ts -> coord/index.ts',
        ),
      },
    ]);
  });

  it('shows every edge of a tangle, not only the first cycle found', () => {
    // grid ⇄ views ⇄ hub: one strongly connected component made of two cycles.
    const graph = buildModuleGraph(
      edges(
        'grid/a.ts -> views/index.ts',
        'views/b.ts -> grid/index.ts',
        'views/c.ts -> hub/index.ts',
        'hub/d.ts -> views/index.ts',
      ),
    );
    assert.deepEqual(
      findCycles(graph).map((cycle) => cycle.modules.join(' → ')),
      ['grid → views → grid', 'hub → views → hub'],
    );
  });

  it('starts each cycle at its first module by name, whichever import it was found from', () => {
    // coord ⇄ hub, then hub → views → coord: the second cycle is found from hub → views.
    const graph = buildModuleGraph(
      edges(
        'coord/a.ts -> hub/index.ts',
        'hub/b.ts -> coord/index.ts',
        'hub/c.ts -> views/index.ts',
        'views/d.ts -> coord/index.ts',
      ),
    );
    assert.deepEqual(
      findCycles(graph).map((cycle) => cycle.modules.join(' → ')),
      ['coord → hub → coord', 'coord → hub → views → coord'],
    );
  });

  it('finds no cycle in a layered graph with shared dependencies', () => {
    const graph = buildModuleGraph(
      edges(
        'runtime/a.ts -> statefun/index.ts',
        'runtime/a.ts -> grid/index.ts',
        'runtime/b.ts -> views/index.ts',
        'runtime/b.ts -> hub/index.ts',
        'hub/c.ts -> grid/index.ts',
        'views/d.ts -> grid/index.ts',
        'statefun/e.ts -> internal/clock.ts',
        'grid/f.ts -> internal/clock.ts',
        'node/g.ts -> runtime/index.ts',
        'node/g.ts -> grid/index.ts',
        'cli/h.ts -> node/index.ts',
      ),
    );
    assert.deepEqual(findCycles(graph), []);
  });

  it('does not count a cycle among one module’s files as a module cycle', () => {
    const graph = buildModuleGraph(
      edges('grid/a.ts -> grid/b.ts', 'grid/b.ts -> grid/a.ts', 'grid/b.ts -> internal/clock.ts'),
    );
    assert.deepEqual(findCycles(graph), []);
    assert.deepEqual([...graph.edges.keys()], ['grid']);
    assert.deepEqual([...(graph.edges.get('grid')?.keys() ?? [])], ['internal']);
  });
});

describe('checkLayering', () => {
  it('reports an import against the direction of the layers, with the files', () => {
    const graph = buildModuleGraph(
      edges(
        'grid/mux.ts -> views/index.ts',
        'grid/conn.ts -> views/index.ts',
        'views/store.ts -> grid/index.ts',
      ),
    );
    assert.deepEqual(checkLayering(graph, LAYERING), [
      {
        kind: 'disallowed',
        from: 'grid',
        to: 'views',
        imports: edges('grid/conn.ts -> views/index.ts', 'grid/mux.ts -> views/index.ts'),
      },
    ]);
  });

  it('keeps the SDK and the libraries away from node, cli and each other', () => {
    const graph = buildModuleGraph(
      edges(
        'statefun/a.ts -> grid/index.ts',
        'testing/b.ts -> node/index.ts',
        'node/c.ts -> cli/index.ts',
        'internal/d.ts -> grid/index.ts',
      ),
    );
    assert.deepEqual(
      checkLayering(graph, LAYERING).map((v) => (v.kind === 'disallowed' ? `${v.from} → ${v.to}` : v.kind)),
      ['internal → grid', 'node → cli', 'statefun → grid', 'testing → node'],
    );
  });

  it('lets every module import generated code, and generated code import nothing', () => {
    const graph = buildModuleGraph(
      edges(
        'internal/a.ts -> gen/hub_pb.ts',
        'hub/b.ts -> gen/hub_pb.ts',
        'gen/hub_pb.ts -> internal/clock.ts',
      ),
    );
    assert.deepEqual(
      checkLayering(graph, LAYERING).map((v) => (v.kind === 'disallowed' ? `${v.from} → ${v.to}` : v.kind)),
      ['gen → internal'],
    );
  });

  it('reports a module missing from the table, even one that imports nothing', () => {
    const graph = buildModuleGraph(edges('mirror/blob.ts -> coord/index.ts'), [
      'extras/x.ts',
      'coord/index.ts',
    ]);
    assert.deepEqual(checkLayering(graph, LAYERING), [
      { kind: 'unknown-module', module: 'extras', file: 'extras/x.ts' },
      { kind: 'unknown-module', module: 'mirror', file: 'mirror/blob.ts' },
    ]);
  });

  it('has a table that is itself free of cycles and names only modules it defines', () => {
    const table = Object.entries(LAYERING.allowed).flatMap(([from, targets]) =>
      targets.map((to) => ({ from: `${from}/index.ts`, to: `${to}/index.ts` })),
    );
    const graph = buildModuleGraph(table);
    assert.deepEqual(findCycles(graph), []);
    assert.deepEqual(checkLayering(graph, LAYERING), []);
  });
});

describe('findDeepImports', () => {
  it('reports an import of another module’s file other than its index.ts', () => {
    const imports = edges(
      'views/store.ts -> grid/mux.ts',
      'views/store.ts -> grid/index.ts',
      'hub/a.ts -> grid/sub/index.ts',
    );
    assert.deepEqual(
      findDeepImports(imports, LAYERING),
      edges('hub/a.ts -> grid/sub/index.ts', 'views/store.ts -> grid/mux.ts'),
    );
  });

  it('allows internal and generated code file by file, and any file of the same module', () => {
    const imports = edges(
      'grid/mux.ts -> internal/clock.ts',
      'testing/index.ts -> internal/fake-clock.ts',
      'hub/wire.ts -> gen/hub_pb.ts',
      'grid/mux.ts -> grid/frame.ts',
    );
    assert.deepEqual(findDeepImports(imports, LAYERING), []);
  });
});

describe('moduleOf', () => {
  it('is the first directory under src/, and a file directly in src/ has none', () => {
    assert.equal(moduleOf('grid/sub/frame.ts'), 'grid');
    assert.throws(() => moduleOf('index.ts'), /not inside a module directory/);
  });
});
