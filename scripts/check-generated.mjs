// Regenerates src/gen/ from proto/ and fails if that changed anything: the committed
// generated code must be exactly what the committed .proto files produce.
import { execFileSync } from 'node:child_process';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
execFileSync('npm', ['run', '--silent', 'gen'], { cwd: root, stdio: 'inherit' });
const changes = execFileSync('git', ['status', '--porcelain', '--', 'src/gen'], {
  cwd: root,
  encoding: 'utf8',
});
if (changes.trim() !== '') {
  console.error(`src/gen is not what proto/ generates; run \`npm run gen\` and commit:\n${changes}`);
  process.exit(1);
}
console.log('generated code ok: src/gen matches proto/');
