// `npm run check:imports`: fails when the imports between the modules under src/
// form a cycle, break the layering of DESIGN.md §1 (scripts/layering.ts), reach into
// another module past its index.ts, leave src/ or do not resolve.
//
//   tsx scripts/check-imports.ts [--root <dir>]
//
// `--root` checks another source tree in place of src/. Exit 0 when clean, 1 when
// an import breaks a rule, 2 when the check cannot run.

import { statSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { collectImports, type ImportProblem } from './collect-imports.ts';
import {
  buildModuleGraph,
  checkLayering,
  findCycles,
  findDeepImports,
  moduleOf,
  type FileEdge,
  type LayeringViolation,
  type ModuleCycle,
} from './import-graph.ts';
import { LAYERING } from './layering.ts';

const root = parseRoot();
const display = (file: string): string => path.join(displayRoot(root), file);
const arrow = (edge: FileEdge): string => `${display(edge.from)} → ${display(edge.to)}`;

const { files, imports, problems } = collectImports(root);
const graph = buildModuleGraph(imports, files);
const reports = [
  ...findCycles(graph).map(formatCycle),
  ...checkLayering(graph, LAYERING).map(formatLayering),
  ...findDeepImports(imports, LAYERING).map(
    (edge) =>
      `deep import: ${arrow(edge)}\n  import from ${display(`${moduleOf(edge.to)}/index.ts`)} instead`,
  ),
  ...problems.map(formatProblem),
];

if (reports.length > 0) {
  console.error(`check:imports: ${plural(reports.length, 'problem')} in ${displayRoot(root)}\n`);
  console.error(reports.join('\n\n'));
  process.exitCode = 1;
} else {
  const moduleEdges = [...graph.edges.values()].reduce((sum, targets) => sum + targets.size, 0);
  console.log(
    `check:imports: ok, ${plural(files.length, 'file')} in ${plural(graph.modules.size, 'module')}, ` +
      `${plural(moduleEdges, 'edge')} between modules (${plural(imports.length, 'relative import')}), no cycles`,
  );
}

function formatCycle(cycle: ModuleCycle): string {
  const steps = cycle.examples.map(
    (edge, i) => `  ${cycle.modules[i] ?? ''} → ${cycle.modules[i + 1] ?? ''}: ${arrow(edge)}`,
  );
  return [`import cycle between modules: ${cycle.modules.join(' → ')}`, ...steps].join('\n');
}

function formatLayering(violation: LayeringViolation): string {
  if (violation.kind === 'unknown-module') {
    return (
      `unknown module "${violation.module}" (${display(violation.file)}): ` +
      'add it to the layering table in scripts/layering.ts'
    );
  }
  const allowed = LAYERING.allowed[violation.from] ?? [];
  return [
    `${violation.from} may not import ${violation.to} ` +
      `(${violation.from} may import: ${allowed.join(', ') || 'nothing'}; see DESIGN.md §1)`,
    ...violation.imports.map((edge) => `  ${arrow(edge)}`),
  ].join('\n');
}

function formatProblem(problem: ImportProblem): string {
  switch (problem.kind) {
    case 'outside-module':
      return `${display(problem.file)} is not inside a module directory (${display('<module>/')})`;
    case 'leaves-root':
      return `${display(problem.file)}: import "${problem.specifier}" leaves ${displayRoot(root)}`;
    case 'unresolved':
      return `${display(problem.file)}: import "${problem.specifier}" does not resolve to a file`;
  }
}

function parseRoot(): string {
  try {
    const { values } = parseArgs({ options: { root: { type: 'string' } } });
    const dir = path.resolve(values.root ?? path.join(import.meta.dirname, '..', 'src'));
    if (!statSync(dir, { throwIfNoEntry: false })?.isDirectory()) {
      throw new Error(`${dir} is not a directory`);
    }
    return dir;
  } catch (error) {
    console.error(`check:imports: ${error instanceof Error ? error.message : String(error)}`);
    console.error('usage: tsx scripts/check-imports.ts [--root <dir>]');
    process.exit(2);
  }
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

/** The root as the user would type it: relative to the working directory when inside it. */
function displayRoot(dir: string): string {
  const relative = path.relative(process.cwd(), dir);
  return relative === '' || relative.split(path.sep)[0] === '..' ? dir : relative;
}
