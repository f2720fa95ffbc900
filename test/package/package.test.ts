// The package as a user gets it: packed, installed from the tarball into a scratch project
// (once as npm installs it, once with --omit=optional), compiled there with strict
// TypeScript and skipLibCheck off, and run. The programs are the README's quick starts, so
// the README cannot drift from the package, plus one that imports the public types by name.
//
// Packing and two installs from the npm registry take one to two minutes, more when the registry
// is slow: @weft-test-timeout 300000 (scripts/test.mjs), the limit its tests state for themselves.

import assert from 'node:assert/strict';
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

const root = path.resolve(import.meta.dirname, '../..');
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as {
  devDependencies: Record<string, string>;
};
const work = mkdtempSync(path.join(tmpdir(), 'weft-package-'));
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const SLOW = { timeout: 300_000 };

function run(
  command: string,
  args: readonly string[],
  cwd: string,
  env: NodeJS.ProcessEnv = {},
): SpawnSyncReturns<string> {
  const result = spawnSync(command, args, { cwd, encoding: 'utf8', env: { ...process.env, ...env } });
  if (result.error !== undefined) throw result.error;
  return result;
}

function ok(result: SpawnSyncReturns<string>, what: string): string {
  assert.equal(result.status, 0, `${what} failed:\n${result.stdout}\n${result.stderr}`);
  return result.stdout;
}

/** The README's quick starts: each ```ts block whose first line is `// quickstart: <name>`. */
function quickStarts(): Map<string, string> {
  const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
  const found = new Map<string, string>();
  for (const match of readme.matchAll(/```ts\n\/\/ quickstart: (\w+)\n([\s\S]*?)```/g)) {
    found.set(match[1] ?? '', match[2] ?? '');
  }
  return found;
}

/** What each quick start prints when it runs (statefun serves until stopped). */
const expectedOutput: Record<string, RegExp> = {
  grid: /^hello, grid\n$/,
  views: /^2 \{ n1: \{ addr: '10\.0\.0\.1' \} \}\n$/,
  testing: /^false\ntrue\n$/,
  errors: /^\d+\.\d+\.\d+ WEFT_DEADLINE_EXCEEDED true\n$/,
  statefun: /^serving example\/greeter on http:\/\/127\.0\.0\.1:\d+\n/,
  runtime: /^Hello Ada, visit #1\nHello Ada, visit #2\nHello Grace, visit #1\n$/,
  coord: /^node-e node-a node-f\n200 registry\/2\.0\n$/,
  hub: /^hello, hub\n0\n$/,
};

/** Public types a user meets in signatures, imported by name. */
const typesProgram = `
import type { CallOptions, Clock, GridAuth, GridLimits, ManagerOptions, RequestOptions, StreamOptions } from 'weft/grid';
import type { Clock as ViewsClock, MaterializerOptions, RetryWaiterConfig, ViewsHttpOptions } from 'weft/views';
import type { Context, TypedValue, ValueSpec } from 'weft/statefun';
import type { Clock as TestingClock } from 'weft/testing';
import { CancelledError, ConfigError, RemoteError, WeftError } from 'weft';
import { Manager } from 'weft/grid';

const call: CallOptions = { timeoutMs: 5 };
const request: RequestOptions = { ...call };
const stream: StreamOptions = { ...call };
const limits: Partial<GridLimits> = { handshakeTimeoutMs: 1_000 };
const clocks: [Clock, ViewsClock, TestingClock] | undefined = undefined;
const auth: GridAuth | undefined = undefined;
const options: ManagerOptions = { local: 'http://127.0.0.1:1', hosts: ['http://127.0.0.1:1'], auth: { secret: 'x'.repeat(16) }, limits };
const retry: Partial<RetryWaiterConfig> = {};
const materializer: Partial<MaterializerOptions<unknown, unknown>> | undefined = undefined;
const http: ViewsHttpOptions | undefined = undefined;
const typed: TypedValue | undefined = undefined;
const spec: ValueSpec<number> | undefined = undefined;
const context: Context | undefined = undefined;
try {
  new Manager({ ...options, auth: { secret: 'short' } });
} catch (error) {
  if (!(error instanceof ConfigError) || !(error instanceof WeftError)) throw error;
  console.log(error.code, error.field, new CancelledError().code, RemoteError.code);
}
void [request, stream, clocks, auth, retry, materializer, http, typed, spec, context];
`;

let tarball = '';

before(() => {
  const packed = ok(run(npm, ['pack', '--json', '--pack-destination', work], root), 'npm pack');
  const [info] = JSON.parse(packed.slice(packed.indexOf('['))) as [
    { filename: string; files: { path: string }[] },
  ];
  tarball = path.join(work, info.filename);
  const files = new Set(info.files.map((f) => f.path));
  for (const shipped of ['LICENSE', 'README.md', 'docs/errors.md', 'docs/install.md', 'dist/weft/index.js']) {
    assert.ok(files.has(shipped), `the package lacks ${shipped}`);
  }
  assert.ok(![...files].some((f) => f.endsWith('.test.ts')), 'the package ships tests');
});

after(() => {
  rmSync(work, { recursive: true, force: true });
});

for (const variant of ['as npm installs it', 'without optional dependencies'] as const) {
  describe(`the packed package, ${variant}`, () => {
    const omitOptional = variant === 'without optional dependencies';
    const dir = path.join(work, omitOptional ? 'lean' : 'full');
    let installLog = '';

    before(() => {
      mkdirSync(dir, { recursive: true });
      writeFileSync(
        path.join(dir, 'package.json'),
        JSON.stringify({ name: 'scratch', private: true, type: 'module' }),
      );
      writeFileSync(
        path.join(dir, 'tsconfig.json'),
        JSON.stringify({
          compilerOptions: {
            strict: true,
            skipLibCheck: false,
            exactOptionalPropertyTypes: true,
            noUncheckedIndexedAccess: true,
            module: 'nodenext',
            target: 'es2022',
            types: ['node'],
            outDir: 'build',
          },
          include: ['*.ts'],
        }),
      );
      const install = run(
        npm,
        [
          'install',
          tarball,
          `typescript@${pkg.devDependencies['typescript'] ?? ''}`,
          `@types/node@${pkg.devDependencies['@types/node'] ?? ''}`,
          '--prefer-offline',
          '--no-audit',
          '--no-fund',
          ...(omitOptional ? ['--omit=optional'] : []),
        ],
        dir,
      );
      installLog = ok(install, 'npm install') + install.stderr;
    });

    test(
      'installs without asking the user to approve anything but what docs/install.md explains',
      SLOW,
      () => {
        const listed = run(npm, ['install-scripts', 'ls'], dir);
        const named = [...`${listed.stdout}${listed.stderr}`.matchAll(/^\s+(\S+)@\S+ \(/gm)].map((m) => m[1]);
        // lmdb and msgpackr-extract ship a prebuilt binary in an optional platform package, and
        // protobufjs's postinstall only warns; docs/install.md says why none needs approval.
        const expected = omitOptional ? ['lmdb', 'protobufjs'] : ['lmdb', 'msgpackr-extract', 'protobufjs'];
        assert.deepEqual(named, expected, installLog);
        if (omitOptional) {
          for (const absent of ['@node-rs/crc32', 'msgpackr-extract', 'bufferutil']) {
            assert.ok(!existsSync(path.join(dir, 'node_modules', absent)), `${absent} was installed`);
          }
        }
      },
    );

    test(
      'the quick starts and the public types compile under strict TypeScript, skipLibCheck off',
      SLOW,
      () => {
        const programs = quickStarts();
        assert.deepEqual([...programs.keys()].sort(), Object.keys(expectedOutput).sort());
        for (const [name, code] of programs) writeFileSync(path.join(dir, `${name}.ts`), code);
        writeFileSync(path.join(dir, 'types.ts'), typesProgram);
        ok(run(process.execPath, [path.join(dir, 'node_modules/typescript/bin/tsc'), '-p', dir], dir), 'tsc');
      },
    );

    test('each quick start runs and prints what the README says', SLOW, async () => {
      for (const [name, pattern] of Object.entries(expectedOutput)) {
        const script = path.join(dir, 'build', `${name}.js`);
        if (name === 'statefun') {
          assert.match(await firstLine(script, dir), pattern);
          continue;
        }
        if (name === 'runtime' && omitOptional) {
          // Without lmdb's platform package, lmdb's install script builds it from source where a
          // C++ toolchain is present; where none is, the store cannot open, and says so.
          const result = run(process.execPath, [script], dir);
          if (result.status === 0) assert.match(result.stdout, pattern);
          else
            assert.match(
              result.stderr,
              /invalid config store: the embedded lmdb store needs lmdb's native binary/,
            );
          continue;
        }
        assert.match(ok(run(process.execPath, [script], dir), name), pattern);
      }
      const types = ok(run(process.execPath, [path.join(dir, 'build', 'types.js')], dir), 'types');
      assert.equal(types, 'WEFT_INVALID_CONFIG grid.auth.secret WEFT_CANCELLED WEFT_GRID_REMOTE\n');
    });

    test('the weft executable is installed and answers help and version', SLOW, () => {
      const bin = path.join(dir, 'node_modules', '.bin', 'weft');
      assert.match(ok(run(bin, ['help'], dir), 'weft help'), /weft start/);
      assert.match(ok(run(bin, ['version'], dir), 'weft version'), /^\d+\.\d+\.\d+\n$/);
      const refused = run(bin, ['start', '--port', '7400'], dir);
      assert.equal(refused.status, 2, 'no cluster secret: a usage error');
      assert.match(refused.stderr, /cluster\.secret/);
    });

    test('CommonJS code can require every module', SLOW, () => {
      const code = `for (const m of ['weft', 'weft/grid', 'weft/views', 'weft/statefun', 'weft/runtime', 'weft/coord', 'weft/hub', 'weft/node', 'weft/testing']) {
        const loaded = require(m);
        if (Object.keys(loaded).length === 0) throw new Error(m + ' is empty');
      }
      console.log(require('weft').VERSION);`;
      const result = run(process.execPath, ['-e', code], dir);
      assert.match(ok(result, 'require'), /^\d+\.\d+\.\d+\n$/);
      assert.equal(result.stderr, '', 'require printed a warning');
    });
  });
}

/** Starts a program that serves until stopped, and resolves with its first line of output. */
function firstLine(script: string, cwd: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script], { cwd, env: { ...process.env, PORT: '0' } });
    let out = '';
    let err = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`no output within 20 s: ${err}`));
    }, 20_000);
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (!out.includes('\n')) return;
      clearTimeout(timer);
      child.kill('SIGTERM');
      resolve(out);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (!out.includes('\n')) reject(new Error(`exited with ${String(code)}: ${err}`));
    });
  });
}
