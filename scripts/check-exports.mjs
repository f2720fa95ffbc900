// Checks the package's `exports` map against the built package (run after `npm run build`):
// every entry lists `types` first, every target file exists, and each subpath loads from
// dist/ with plain Node (no TypeScript loader), as a user's code would load it: with
// `import`, and with `require` from CommonJS (Node >= 20.19 loads ES modules that way).
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
const problems = [];
let checked = 0;

for (const [subpath, entry] of Object.entries(pkg.exports)) {
  if (typeof entry === 'string') {
    if (!existsSync(path.join(root, entry))) problems.push(`${subpath}: ${entry} does not exist`);
    continue;
  }
  const conditions = Object.keys(entry);
  if (conditions[0] !== 'types')
    problems.push(`${subpath}: "types" must come first, found ${conditions.join(', ')}`);
  if (!('default' in entry)) problems.push(`${subpath}: has no "default" condition`);
  for (const [condition, target] of Object.entries(entry)) {
    if (!existsSync(path.join(root, target)))
      problems.push(`${subpath} (${condition}): ${target} does not exist`);
  }
  const specifier = path.posix.join(pkg.name, subpath);
  const run = spawnSync(
    process.execPath,
    ['--input-type=module', '-e', `await import(${JSON.stringify(specifier)})`],
    {
      cwd: root,
      encoding: 'utf8',
    },
  );
  if (run.status !== 0) problems.push(`${specifier}: import failed\n${run.stderr}`);
  const required = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(specifier)})`], {
    cwd: root,
    encoding: 'utf8',
  });
  if (required.status !== 0 || required.stderr !== '')
    problems.push(`${specifier}: require failed or warned\n${required.stderr}`);
  checked++;
}

if (problems.length > 0) {
  console.error(`package exports are broken:\n- ${problems.join('\n- ')}`);
  process.exit(1);
}
console.log(`package exports ok: ${checked} subpaths load from dist/ with import and require`);
