// The `weft` CLI as a user meets it: each command run as its own process, judged by its exit
// code (0 done, 1 failed, 2 bad command line or config) and by what it prints. One real node,
// started with `weft start`, serves the client commands; nothing here can use a fake clock, so
// waiting for that node is bounded polling.

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { describeOutput, runCli, spawnCli, type CliProcess, type CliResult } from './run-cli.ts';

const SECRET = 'a-cli-test-secret-of-enough-bytes';
const POLL_MS = 100;
const READY_TIMEOUT_MS = 60_000;
const GRACEFUL_STOP_MS = 15_000;
const PROMPT_STOP_MS = 5_000;
/** The CLI's request timeout is 10 s; this leaves room for the CLI's own start-up. */
const SILENT_NODE_GIVE_UP_MS = 20_000;
const COMMANDS = ['start', 'dev', 'status', 'send', 'view', 'help'];

function scratchDir(): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), 'weft-cli-test-'));
}

/** A port nothing listens on right now: the OS picks it, and it is released at once. */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) =>
    server.close(() => {
      resolve();
    }),
  );
  return port;
}

async function canListen(port: number): Promise<boolean> {
  const server = net.createServer();
  const listening = await new Promise<boolean>((resolve) => {
    server.once('error', () => {
      resolve(false);
    });
    server.listen(port, '127.0.0.1', () => {
      resolve(true);
    });
  });
  if (listening)
    await new Promise<void>((resolve) =>
      server.close(() => {
        resolve();
      }),
    );
  return listening;
}

async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new Error(`${what} took longer than ${ms} ms`));
    }, ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** An entry of the example's `functions` view. */
interface CounterEntry {
  readonly state: unknown;
  readonly messages: number;
}

interface RunningNode {
  readonly cli: CliProcess;
  readonly port: number;
  readonly url: string;
  readonly dataDir: string;
}

/** `weft start` with the example app; resolves once /readyz answers 200. */
async function startNode(logLevel = 'warn'): Promise<RunningNode> {
  const port = await freePort();
  const dataDir = await scratchDir();
  const url = `http://127.0.0.1:${port}`;
  const cli = spawnCli(
    ['start', '--port', String(port), '--data-dir', dataDir, '--example', '--log-level', logLevel],
    {
      env: { WEFT_CLUSTER_SECRET: SECRET },
    },
  );
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (cli.done) throw new Error(`weft start exited before it was ready:\n${describeOutput(cli)}`);
    const ready = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(1_000) }).then(
      (response) => response.status === 200,
      () => false,
    );
    if (ready) return { cli, port, url, dataDir };
    if (Date.now() > deadline) {
      cli.signal('SIGKILL');
      throw new Error(`weft start was not ready within ${READY_TIMEOUT_MS} ms:\n${describeOutput(cli)}`);
    }
    await sleep(POLL_MS);
  }
}

async function stopNode(node: RunningNode | undefined): Promise<void> {
  if (node === undefined) return;
  node.cli.signal('SIGKILL');
  await node.cli.exited.catch(() => undefined);
  await rm(node.dataDir, { recursive: true, force: true });
}

function assertExit(result: CliResult, code: number): void {
  assert.equal(result.code, code, `expected exit code ${code}:\n${describeOutput(result)}`);
}

// The blocks are independent and mostly wait on child processes: run them side by side.
describe('the weft CLI', { concurrency: true }, () => {
  describe('help', { concurrency: true }, () => {
    for (const argv of [['help'], ['--help']]) {
      test(`\`weft ${argv.join(' ')}\` exits 0 and names every command`, async () => {
        const result = await runCli(argv);
        assertExit(result, 0);
        for (const command of COMMANDS) assert.match(result.stdout, new RegExp(`weft ${command}\\b`));
        assert.equal(result.stderr, '');
      });
    }

    for (const argv of [
      ['help', 'send'],
      ['send', '--help'],
    ]) {
      test(`\`weft ${argv.join(' ')}\` exits 0 and shows how to call send`, async () => {
        const result = await runCli(argv);
        assertExit(result, 0);
        assert.match(result.stdout, /^weft send ADDRESS VALUE/);
        assert.match(result.stdout, /namespace\/type\/id/);
      });
    }

    test('an unknown command exits 2 and points to `weft help`', async () => {
      const result = await runCli(['frobnicate']);
      assertExit(result, 2);
      assert.match(result.stderr, /unknown command "frobnicate"/);
      assert.match(result.stderr, /weft help/);
      assert.equal(result.stdout, '');
    });
  });

  describe('start refuses a bad config before it starts anything', { concurrency: true }, () => {
    let cwd = '';
    before(async () => {
      cwd = await scratchDir();
    });
    after(async () => {
      await rm(cwd, { recursive: true, force: true });
    });

    const start = (args: readonly string[], env: Record<string, string> = { WEFT_CLUSTER_SECRET: SECRET }) =>
      runCli(['start', '--data-dir', path.join(cwd, 'data'), ...args], { cwd, env });

    test('an unknown key in the config file is named, exit 2', async () => {
      const file = path.join(cwd, 'typo.json');
      await writeFile(file, JSON.stringify({ listen: { prot: 1 } }));
      const result = await start(['--config', file]);
      assertExit(result, 2);
      assert.match(result.stderr, /listen\.prot/);
      assert.match(result.stderr, /weft help/);
    });

    test('a missing cluster secret is named, exit 2, and no data directory appears', async () => {
      const result = await runCli(['start'], { cwd, env: {} });
      assertExit(result, 2);
      assert.match(result.stderr, /cluster\.secret/);
      assert.match(result.stderr, /WEFT_CLUSTER_SECRET/);
      assert.equal(existsSync(path.join(cwd, 'weft-data')), false);
    });

    test('a port that is not a number is named, exit 2', async () => {
      const result = await start(['--port', 'abc']);
      assertExit(result, 2);
      assert.match(result.stderr, /listen\.port/);
      assert.match(result.stderr, /"abc"/);
    });

    test('a config file that does not exist is named, exit 2', async () => {
      const file = path.join(cwd, 'no-such-config.yaml');
      const result = await start(['--config', file]);
      assertExit(result, 2);
      assert.ok(result.stderr.includes(file), result.stderr);
    });

    test('an unknown log level is named, exit 2', async () => {
      const result = await start(['--log-level', 'loud']);
      assertExit(result, 2);
      assert.match(result.stderr, /log\.level/);
      assert.match(result.stderr, /"loud"/);
    });
  });

  describe('a running node, through status, send and view', { concurrency: 1 }, () => {
    let node: RunningNode | undefined;
    const running = (): RunningNode => {
      assert.ok(node !== undefined, 'the node did not start');
      return node;
    };
    before(async () => {
      node = await startNode();
    });
    after(async () => {
      await stopNode(node);
    });

    describe('answers the client commands', { concurrency: true }, () => {
      test('status prints the node name and the functions it runs (node from WEFT_NODE)', async () => {
        const { url, port } = running();
        const result = await runCli(['status'], { env: { WEFT_NODE: url } });
        assertExit(result, 0);
        const name = `${os.hostname()}-${port}`;
        assert.ok(
          result.stdout.startsWith(`${name}  ${url}  up `),
          `the name is not first:\n${result.stdout}`,
        );
        assert.match(result.stdout, /Functions: example\/counter/);
      });

      test('status --json prints the node status as JSON with its members', async () => {
        const { url } = running();
        const result = await runCli(['status', '--json', '--node', url]);
        assertExit(result, 0);
        const status = JSON.parse(result.stdout) as { node: string; members: { host: string }[] };
        assert.equal(status.node, url);
        assert.deepEqual(
          status.members.map((m) => m.host),
          [url],
        );
      });

      test('send delivers a message and the functions view shows the function ran once', async () => {
        const { url } = running();
        const sent = await runCli(['send', 'example/counter/ada', '"hello"', '--node', url]);
        assertExit(sent, 0);
        assert.match(sent.stdout, /^sent to example\/counter\/ada/);

        // The function runs after the append, so the view may need a moment to show it.
        const deadline = Date.now() + 15_000;
        let entry: CounterEntry | undefined;
        let shown: string;
        for (;;) {
          const result = await runCli(['view', 'functions', '--node', url]);
          assertExit(result, 0);
          shown = result.stdout;
          entry = (JSON.parse(shown) as Record<string, CounterEntry | undefined>)['example/counter/ada'];
          if (entry !== undefined || Date.now() > deadline) break;
          await sleep(POLL_MS);
        }
        assert.ok(entry !== undefined, `the functions view never showed example/counter/ada:\n${shown}`);
        assert.deepEqual(entry.state, { count: 1, last: 'hello' });
        assert.equal(entry.messages, 1);
      });

      test('send to a type the node does not run exits 1 and says so', async () => {
        const result = await runCli(['send', 'example/nope/x', '1', '--node', running().url]);
        assertExit(result, 1);
        assert.match(result.stderr, /runs no function of type example\/nope/);
      });

      test('send with only an address exits 2', async () => {
        const result = await runCli(['send', 'onlyone', '--node', running().url]);
        assertExit(result, 2);
        assert.match(result.stderr, /ADDRESS and a VALUE/);
      });

      test('send to an address that is not namespace/type/id exits 2', async () => {
        const result = await runCli(['send', 'a/b', '1', '--node', running().url]);
        assertExit(result, 2);
        assert.match(result.stderr, /namespace\/type\/id/);
      });

      test('view of a name the node does not have exits 1', async () => {
        const result = await runCli(['view', 'nope', '--node', running().url]);
        assertExit(result, 1);
        assert.match(result.stderr, /no view named "nope"/);
      });

      test('view cluster.members prints the members as JSON, this node among them', async () => {
        const { url } = running();
        const result = await runCli(['view', 'cluster.members', '--node', url]);
        assertExit(result, 0);
        const members = JSON.parse(result.stdout) as Record<string, { host: string }>;
        assert.equal(members[url]?.host, url);
      });

      test('view --watch prints the view and exits 0 on Ctrl-C', async (t) => {
        const { url } = running();
        const watch = spawnCli(['view', 'cluster.members', '--watch', '--node', url]);
        t.after(async () => {
          watch.signal('SIGKILL');
          await watch.exited.catch(() => undefined);
        });
        // console.log of a pretty-printed object: the first document ends at a `}` line.
        const stdout = await watch.waitForStdout(/^\}$/m, 15_000);
        const first = stdout.slice(0, stdout.search(/^\}$/m) + 1);
        const members = JSON.parse(first) as Record<string, { host: string }>;
        assert.equal(members[url]?.host, url);

        watch.signal('SIGINT');
        const result = await within(watch.exited, PROMPT_STOP_MS, 'view --watch after SIGINT');
        assertExit(result, 0);
        assert.equal(result.stderr, '');
      });
    });

    test('SIGTERM stops the node gracefully: exit 0 and its port is free again', async () => {
      const { cli, port } = running();
      cli.signal('SIGTERM');
      const result = await within(cli.exited, GRACEFUL_STOP_MS, 'a graceful stop');
      assertExit(result, 0);
      assert.equal(await canListen(port), true, `port ${port} is still taken after the node exited`);
    });
  });

  test('a second SIGINT stops a node at once', async (t) => {
    // Info logs show when the first signal was handled, so the second is a signal of its own.
    const node = await startNode('info');
    t.after(() => stopNode(node));
    node.cli.signal('SIGINT');
    await node.cli.waitForStdout(/stopping gracefully/, PROMPT_STOP_MS);
    node.cli.signal('SIGINT');
    const result = await within(node.cli.exited, PROMPT_STOP_MS, 'a stop after two SIGINTs');
    // 1 when the second signal cut the stop short, 0 when the graceful stop won the race.
    assert.ok(
      result.code === 0 || result.code === 1,
      `exit code ${String(result.code)}:\n${describeOutput(result)}`,
    );
  });

  describe('without a node to talk to', { concurrency: true }, () => {
    test('status exits 1 and tells how to start a node', async () => {
      const port = await freePort();
      const result = await runCli(['status', '--node', `http://127.0.0.1:${port}`]);
      assertExit(result, 1);
      assert.match(result.stderr, /cannot reach a Weft node/);
      assert.match(result.stderr, /npm start/);
    });

    test('a --node that is not a URL exits 2', async () => {
      const result = await runCli(['status', '--node', 'notaurl']);
      assertExit(result, 2);
      assert.match(result.stderr, /--node must be a URL/);
    });

    // Its Ctrl-C signal must not replace the request's deadline.
    test('view gives up on a node that accepts connections but never answers', async (t) => {
      const held = new Set<net.Socket>();
      const silent = net.createServer((socket) => {
        held.add(socket);
        socket.once('close', () => held.delete(socket));
      });
      await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
      t.after(() => {
        for (const socket of held) socket.destroy();
        silent.close();
      });
      const { port } = silent.address() as net.AddressInfo;
      const result = await runCli(['view', 'functions', '--node', `http://127.0.0.1:${port}`], {
        timeoutMs: SILENT_NODE_GIVE_UP_MS,
      });
      assertExit(result, 1);
      assert.match(result.stderr, /cannot reach a Weft node/);
    });
  });
});
