// Copies every `assets/` folder under src/ to the same place under dist/, after `tsc` has
// emitted the code that reads them (tsc copies only what it compiles). The target folder is
// replaced, not merged, so an asset deleted from src/ does not linger in the package.
// Dotfiles are left behind: nothing in an assets folder is meant to be hidden.
import { cpSync, existsSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const sourceRoot = path.join(root, 'src');
const outputRoot = path.join(root, 'dist');

/** The assets folders under `dir`, not descending into one once found. */
function assetFoldersUnder(dir) {
  const found = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (!entry.isDirectory() || entry.name.startsWith('.') || entry.name === 'node_modules') continue;
    const child = path.join(dir, entry.name);
    if (entry.name === 'assets') found.push(child);
    else found.push(...assetFoldersUnder(child));
  }
  return found;
}

const folders = assetFoldersUnder(sourceRoot);
for (const source of folders) {
  const relative = path.relative(sourceRoot, source);
  const target = path.join(outputRoot, relative);
  if (existsSync(target)) rmSync(target, { recursive: true });
  cpSync(source, target, {
    recursive: true,
    filter: (file) => !path.basename(file).startsWith('.'),
  });
  console.log(`copied src/${relative} → dist/${relative}`);
}
if (folders.length === 0) console.log('no assets folders under src/');
