// `npm run check:types` (after `npm run build`): every type that appears in the public API
// of a package entry can be imported by name from that same entry, from the entry of the
// module that declares it (a `Manager` in a views signature comes from `weft/grid`), or from
// the root `weft`.
// A user who meets `CallOptions` in a signature of `weft/grid` must be able to write
// `import type { CallOptions } from 'weft/grid'`.
//
// It reads the built `.d.ts` files of every `exports` entry with the TypeScript compiler,
// walks each exported declaration (members included, private ones excluded) and reports
// every type it names that is declared in this package and not exported there.
// Exit 0 when clean, 1 when a type is missing, 2 when the check cannot run.

import { readFileSync } from 'node:fs';
import path from 'node:path';

import ts from 'typescript';

const root = path.resolve(import.meta.dirname, '..');
const dist = path.join(root, 'dist');
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as {
  exports: Record<string, string | { types?: string }>;
};

const entries = Object.entries(pkg.exports)
  .filter(
    (entry): entry is [string, { types: string }] =>
      typeof entry[1] === 'object' && entry[1].types !== undefined,
  )
  .map(([subpath, entry]) => ({ subpath, file: path.join(root, entry.types) }));
if (entries.length === 0) {
  console.error('check:types: no entries with types in package.json');
  process.exit(2);
}

const program = ts.createProgram(
  entries.map((e) => e.file),
  {
    strict: true,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    noEmit: true,
  },
);
const checker = program.getTypeChecker();

function original(symbol: ts.Symbol): ts.Symbol {
  return (symbol.flags & ts.SymbolFlags.Alias) !== 0 ? checker.getAliasedSymbol(symbol) : symbol;
}

const exportsByEntry = new Map<string, Set<ts.Symbol>>();
for (const entry of entries) {
  const source = program.getSourceFile(entry.file);
  const moduleSymbol = source === undefined ? undefined : checker.getSymbolAtLocation(source);
  if (moduleSymbol === undefined) {
    console.error(`check:types: cannot read ${path.relative(root, entry.file)} (run npm run build first)`);
    process.exit(2);
  }
  exportsByEntry.set(entry.subpath, new Set(checker.getExportsOfModule(moduleSymbol).map(original)));
}
const fromRoot = exportsByEntry.get('.') ?? new Set<ts.Symbol>();

const isOurs = (declaration: ts.Declaration): boolean =>
  path.resolve(declaration.getSourceFile().fileName).startsWith(dist + path.sep);

/** Where a user's install finds types: the TypeScript libs, @types/node, and our dependencies. */
const installedForUsers = [
  path.join(root, 'node_modules', 'typescript', 'lib'),
  path.join(root, 'node_modules', '@types', 'node'),
  ...Object.keys(
    (JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { dependencies?: object })
      .dependencies ?? {},
  ).map((name) => path.join(root, 'node_modules', name)),
];

/** The package a declaration comes from, if a user's install would not have it. */
function foreignPackage(declaration: ts.Declaration): string | undefined {
  const file = path.resolve(declaration.getSourceFile().fileName);
  const modules = path.join(root, 'node_modules') + path.sep;
  if (!file.startsWith(modules)) return undefined;
  if (installedForUsers.some((dir) => file.startsWith(dir + path.sep))) return undefined;
  const [scope = '', name = ''] = file.slice(modules.length).split(path.sep);
  return scope.startsWith('@') ? `${scope}/${name}` : scope;
}

/** The entry of the module a declaration lives in (`grid/…` → `./grid`), if it has one. */
function ownerExports(declaration: ts.Declaration): ReadonlySet<ts.Symbol> | undefined {
  const relative = path.relative(dist, declaration.getSourceFile().fileName);
  return exportsByEntry.get(`./${relative.split(path.sep)[0] ?? ''}`);
}

const problems = new Map<string, string>();

function visit(node: ts.Node, usedBy: string, importable: ReadonlySet<ts.Symbol>): void {
  // Private members carry no type in a .d.ts, and #private fields are opaque.
  if (
    ts.canHaveModifiers(node) &&
    ts.getModifiers(node)?.some((m) => m.kind === ts.SyntaxKind.PrivateKeyword) === true
  ) {
    return;
  }
  if (ts.isTypeReferenceNode(node) || ts.isExpressionWithTypeArguments(node) || ts.isTypeQueryNode(node)) {
    const name = ts.isTypeReferenceNode(node)
      ? node.typeName
      : ts.isTypeQueryNode(node)
        ? node.exprName
        : node.expression;
    const found = checker.getSymbolAtLocation(name);
    if (found !== undefined) {
      const symbol = original(found);
      const declaration = symbol.declarations?.[0];
      const isTypeParameter = (symbol.flags & ts.SymbolFlags.TypeParameter) !== 0;
      if (
        declaration !== undefined &&
        !isTypeParameter &&
        isOurs(declaration) &&
        !importable.has(symbol) &&
        !fromRoot.has(symbol) &&
        ownerExports(declaration)?.has(symbol) !== true
      ) {
        const where = path.relative(dist, declaration.getSourceFile().fileName);
        problems.set(`${usedBy}: ${symbol.getName()} (${where})`, usedBy);
      }
      const foreign = declaration === undefined ? undefined : foreignPackage(declaration);
      if (foreign !== undefined) {
        problems.set(`${usedBy}: ${symbol.getName()} from ${foreign}, which a user does not install`, usedBy);
      }
    }
  }
  ts.forEachChild(node, (child) => {
    visit(child, usedBy, importable);
  });
}

for (const [subpath, symbols] of exportsByEntry) {
  const entryName = `weft${subpath.slice(1)}`;
  for (const symbol of symbols) {
    for (const declaration of symbol.declarations ?? []) {
      if (isOurs(declaration)) visit(declaration, `${entryName} → ${symbol.getName()}`, symbols);
    }
  }
}

if (problems.size > 0) {
  console.error(
    `check:types: ${problems.size} types appear in an entry's API but cannot be imported from it:`,
  );
  for (const problem of [...problems.keys()].sort()) console.error(`- ${problem}`);
  process.exit(1);
}
const names = [...exportsByEntry.values()].reduce((sum, set) => sum + set.size, 0);
console.log(`check:types: ok, ${names} exported names across ${entries.length} entries`);
