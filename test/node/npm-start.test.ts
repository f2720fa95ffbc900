// `npm start`, as a new user runs it: three nodes on loopback with the example application. The
// URLs it prints answer, the example it suggests works, and Ctrl-C (SIGINT to the whole process
// group, as a terminal sends it) leaves no process and no port behind.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';

const root = path.resolve(import.meta.dirname, '../..');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

async function freePortRange(count: number): Promise<number> {
  // A first port whose next few and its hub port (+100) are free now.
  for (let attempt = 0; attempt < 20; attempt++) {
    const first = 20_000 + Math.floor(Math.random() * 30_000);
    const ports = [...Array.from({ length: count }, (_, i) => first + i), first + 100];
    if ((await Promise.all(ports.map(isFree))).every(Boolean)) return first;
  }
  throw new Error('no free port range');
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => {
      resolve(false);
    });
    server.listen(port, '127.0.0.1', () => {
      server.close(() => {
        resolve(true);
      });
    });
  });
}

function groupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('npm start', () => {
  test(
    'starts a three-node cluster, its printed URLs and example work, Ctrl-C stops everything',
    { timeout: 100_000 },
    async (t) => {
      const dataDir = await mkdtemp(path.join(tmpdir(), 'weft-npm-start-'));
      const port = await freePortRange(3);
      const started = performance.now();
      const child = spawn(npm, ['start', '--', '--port', String(port), '--data-dir', dataDir], {
        cwd: root,
        detached: true, // its own process group, as a terminal's foreground job
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const pid = child.pid as number;
      t.after(async () => {
        if (groupAlive(pid)) process.kill(-pid, 'SIGKILL');
        await rm(dataDir, { recursive: true, force: true });
      });
      let out = '';
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
      const exited = new Promise<string>((resolve) =>
        child.once('exit', (code, signal) => {
          resolve(signal ?? `code ${String(code)}`);
        }),
      );

      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          reject(new Error(`no "Ctrl-C stops" line within 60 s:\n${out}`));
        }, 60_000);
        const check = (): void => {
          if (out.includes('Ctrl-C stops the cluster.')) {
            clearTimeout(timer);
            resolve();
          }
        };
        child.stdout.on('data', check);
        void exited.then((code) => {
          clearTimeout(timer);
          reject(new Error(`npm start exited (${code}):\n${out}`));
        });
      });
      t.diagnostic(`ready in ${Math.round(performance.now() - started)} ms`);

      // The dashboard URL it printed.
      const dashboard = /Dashboard:\s+(\S+)/.exec(out)?.[1];
      assert.equal(dashboard, `http://127.0.0.1:${port}/`);
      const page = await fetch(dashboard);
      assert.equal(page.status, 200);
      assert.match(await page.text(), /<html/i);
      for (let i = 0; i < 3; i++)
        assert.equal((await fetch(`http://127.0.0.1:${port + i}/readyz`)).status, 200);

      // The curl it suggests, as fetch.
      const curl = /curl -X POST (\S+) -H '([^:]+): ([^']+)' -d '([^']+)'/.exec(out);
      assert.ok(curl, `a curl example in:\n${out}`);
      const [, url, header, type, body] = curl as unknown as [string, string, string, string, string];
      const sent = await fetch(url, { method: 'POST', headers: { [header]: type }, body });
      assert.equal(sent.status, 202, await sent.text());
      const viewUrl = /curl (http\S+\/v1\/views\/functions)/.exec(out)?.[1] as string;
      let entry: { state?: { count?: number } } | undefined;
      for (let index = 0; entry === undefined;) {
        const response = await fetch(`${viewUrl}?index=${index}&wait=10s`);
        const functions = (await response.json()) as Record<string, { state?: { count?: number } }>;
        entry = functions['example/counter/ada'];
        index = Number(response.headers.get('x-weft-index'));
      }
      assert.equal(entry.state?.count, 1);

      // `weft dev` printed its lines once the cluster had formed: every node sees all three.
      for (let i = 0; i < 3; i++) {
        const members = (await (
          await fetch(`http://127.0.0.1:${port + i}/v1/views/cluster.members`)
        ).json()) as Record<string, { state: string }>;
        assert.deepEqual(
          Object.values(members)
            .map((m) => m.state)
            .sort(),
          ['connected', 'connected', 'self'],
          `node-${i + 1}`,
        );
      }

      process.kill(-pid, 'SIGINT');
      // npm itself ends by the SIGINT it was sent, after `weft dev` has stopped its nodes.
      assert.ok(['code 0', 'SIGINT'].includes(await exited), out);
      assert.match(out, /Stopped\./);
      // Nothing of the group is left, and every port is free again.
      for (let i = 0; i < 50 && groupAlive(pid); i++) await new Promise((r) => setTimeout(r, 100));
      assert.equal(groupAlive(pid), false, 'a process of npm start outlived Ctrl-C');
      for (const p of [port, port + 1, port + 2, port + 100]) assert.ok(await isFree(p), `port ${p} is free`);
    },
  );
});
