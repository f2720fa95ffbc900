// Reads the relative imports of every .ts file under a source root, for the import check.
//
// The TypeScript compiler finds the imports (`ts.preProcessFile` sees `import`,
// `import type`, `export … from`, `import()` and `import x = require()`, and skips
// strings and comments) and resolves them the way `tsc` does for this package: ESM,
// NodeNext, `.ts` extensions allowed. So a specifier this check accepts is one the
// compiler accepts too. Bare specifiers (`ws`, `node:fs`) are packages and ignored.

import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

import type { FileEdge } from './import-graph.ts';

export type ImportProblem =
  | { readonly kind: 'outside-module'; readonly file: string }
  | { readonly kind: 'leaves-root' | 'unresolved'; readonly file: string; readonly specifier: string };

export interface CollectedImports {
  /** Every .ts file inside a module directory, relative to the root with `/` separators, sorted. */
  readonly files: readonly string[];
  /** Relative imports that resolve to a file inside a module under the root. */
  readonly imports: readonly FileEdge[];
  readonly problems: readonly ImportProblem[];
}

const compilerOptions: ts.CompilerOptions = {
  module: ts.ModuleKind.NodeNext,
  moduleResolution: ts.ModuleResolutionKind.NodeNext,
  allowImportingTsExtensions: true,
  resolveJsonModule: true,
  noEmit: true,
};

export function collectImports(root: string): CollectedImports {
  const absoluteRoot = path.resolve(root);
  const files: string[] = [];
  const imports: FileEdge[] = [];
  const problems: ImportProblem[] = [];
  for (const file of listTsFiles(absoluteRoot)) {
    // A file directly under the root belongs to no module, so no layer can hold it.
    if (file.includes('/')) files.push(file);
    else problems.push({ kind: 'outside-module', file });
    const absoluteFile = path.join(absoluteRoot, file);
    const source = readFileSync(absoluteFile, 'utf8');
    for (const { fileName: specifier } of ts.preProcessFile(source, true, true).importedFiles) {
      if (!specifier.startsWith('./') && !specifier.startsWith('../')) continue;
      if (!isInside(absoluteRoot, path.resolve(path.dirname(absoluteFile), specifier))) {
        problems.push({ kind: 'leaves-root', file, specifier });
        continue;
      }
      const resolved = resolve(specifier, absoluteFile);
      if (resolved === undefined) {
        problems.push({ kind: 'unresolved', file, specifier });
      } else if (!isInside(absoluteRoot, resolved)) {
        // `../x.js` may resolve to a declaration file that lives elsewhere.
        problems.push({ kind: 'leaves-root', file, specifier });
      } else {
        const to = toRootRelative(absoluteRoot, resolved);
        // Edges touching a file outside any module are already reported as that file's problem.
        if (file.includes('/') && to.includes('/')) imports.push({ from: file, to });
      }
    }
  }
  return { files, imports, problems };
}

function listTsFiles(root: string): string[] {
  return readdirSync(root, { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.ts') && statSync(path.join(root, file)).isFile())
    .map((file) => file.split(path.sep).join('/'))
    .sort();
}

function resolve(specifier: string, containingFile: string): string | undefined {
  const { resolvedModule } = ts.resolveModuleName(
    specifier,
    containingFile,
    compilerOptions,
    ts.sys,
    undefined,
    undefined,
    ts.ModuleKind.ESNext,
  );
  return resolvedModule === undefined ? undefined : path.resolve(resolvedModule.resolvedFileName);
}

function isInside(root: string, file: string): boolean {
  const relative = path.relative(root, file);
  return relative !== '' && relative.split(path.sep)[0] !== '..' && !path.isAbsolute(relative);
}

function toRootRelative(root: string, file: string): string {
  return path.relative(root, file).split(path.sep).join('/');
}
