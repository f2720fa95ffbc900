// `weft dev`: a small cluster on loopback with the example application, each node a process of
// its own (`weft start` as a child, so killing one is a real node failure). The first node runs
// the hub; every node runs the runtime, the mirror and the views. Ctrl-C stops them all
// gracefully; a second Ctrl-C kills them.

import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, openSync, closeSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

import {
  COUNTER_TYPE,
  DEFAULT_PORT,
  INGRESS_PREFIX,
  JSON_MESSAGE_TYPE,
  STATUS_PATH,
  type NodeStats,
} from '../node/index.ts';
import { CommandFailedError, EXIT_FAILED, UsageError } from './usage.ts';

const HUB_PORT_OFFSET = 100;
const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 30_000;
const FORM_TIMEOUT_MS = 20_000;
const FORM_POLL_MS = 100;

interface DevNode {
  readonly name: string;
  readonly url: string;
  readonly logFile: string;
  readonly child: ChildProcess;
  hubAddress?: string | undefined;
}

export async function devCommand(args: readonly string[]): Promise<number> {
  const { values } = parseArgs({
    args: [...args],
    options: {
      nodes: { type: 'string', default: '3' },
      port: { type: 'string', default: String(DEFAULT_PORT) },
      'data-dir': { type: 'string', default: '.weft-dev' },
      postgres: { type: 'string' },
    },
    strict: true,
    allowPositionals: false,
  });
  const count = Number(values.nodes);
  if (!Number.isSafeInteger(count) || count < 1 || count > 9) {
    throw new UsageError(`--nodes must be an integer from 1 to 9, got ${values.nodes}`);
  }
  const firstPort = Number(values.port);
  if (!Number.isSafeInteger(firstPort) || firstPort < 1 || firstPort + count + HUB_PORT_OFFSET > 65535) {
    throw new UsageError(`--port must leave room for ${count} ports and the hub's, got ${values.port}`);
  }
  const dataDir = path.resolve(values['data-dir']);
  mkdirSync(dataDir, { recursive: true });
  // One secret per run, handed to the nodes in their environment (never in a file or a flag).
  const secret = randomBytes(24).toString('base64url');
  const urls = Array.from({ length: count }, (_, i) => `http://127.0.0.1:${firstPort + i}`);

  const nodes: DevNode[] = urls.map((url, i) => {
    const name = `node-${i + 1}`;
    const config = {
      name,
      listen: { host: '127.0.0.1', port: firstPort + i },
      cluster: { seeds: urls.filter((u) => u !== url) },
      dataDir: path.join(dataDir, name),
      hub: { enabled: i === 0, port: firstPort + HUB_PORT_OFFSET, host: '127.0.0.1' },
      mirror: { enabled: true },
      example: true,
    };
    const configFile = path.join(dataDir, `${name}.json`);
    writeFileSync(configFile, `${JSON.stringify(config, null, 2)}\n`);
    const logFile = path.join(dataDir, `${name}.log`);
    const log = openSync(logFile, 'w');
    const child = spawn(
      process.execPath,
      [...process.execArgv, process.argv[1] ?? '', 'start', '--config', configFile],
      {
        stdio: ['ignore', log, log, 'ipc'],
        env: {
          ...process.env,
          WEFT_CLUSTER_SECRET: secret,
          // In the environment, not the config file: the URL may hold a password.
          ...(values.postgres === undefined ? {} : { WEFT_POSTGRES_URL: values.postgres }),
        },
      },
    );
    closeSync(log);
    return { name, url, logFile, child };
  });

  const stopAll = (signal: NodeJS.Signals): void => {
    for (const node of nodes) if (node.child.exitCode === null) node.child.kill(signal);
  };
  // Signals are handled from here on, so a Ctrl-C during the start stops the nodes too.
  // An object, not a `let`: the handlers below change it while this function awaits.
  const state = { stopping: false };
  const isStopping = (): boolean => state.stopping;
  let resolveStopped: (code: number) => void = () => undefined;
  const stopped = new Promise<number>((resolve) => (resolveStopped = resolve));
  const exited = Promise.all(
    nodes.map((node) =>
      node.child.exitCode !== null
        ? Promise.resolve()
        : new Promise<void>((done) =>
            node.child.once('exit', () => {
              done();
            }),
          ),
    ),
  );
  const stop = (): void => {
    if (state.stopping) {
      console.log('Killing the nodes.');
      stopAll('SIGKILL');
      return;
    }
    state.stopping = true;
    console.log('\nStopping the cluster (Ctrl-C again to kill it)…');
    stopAll('SIGTERM');
    const timer = setTimeout(() => {
      stopAll('SIGKILL');
    }, STOP_TIMEOUT_MS);
    void exited.then(() => {
      clearTimeout(timer);
      console.log('Stopped.');
      resolveStopped(0);
    });
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);

  try {
    await Promise.race([Promise.all(nodes.map((node) => ready(node))), stopped]);
  } catch (error) {
    if (state.stopping) return stopped;
    stopAll('SIGKILL');
    throw error;
  }
  if (state.stopping) return stopped;
  // Ready means serving; the cluster is formed once every node sees every other connected.
  const formed = await Promise.race([clusterFormed(nodes), stopped.then(() => false)]);
  // Read through a call: a Ctrl-C may have come while this awaited.
  if (isStopping()) return stopped;
  if (!formed)
    console.log(
      `The nodes are up, but not all see each other after ${FORM_TIMEOUT_MS / 1000} s; see their logs.`,
    );
  print(nodes);
  for (const node of nodes) {
    node.child.on('exit', (code, signal) => {
      if (!state.stopping) {
        console.log(`${node.name} exited (${signal ?? `code ${String(code)}`}); its log: ${node.logFile}`);
      }
    });
  }
  void exited.then(() => {
    if (!state.stopping) resolveStopped(EXIT_FAILED);
  });
  return stopped;
}

/** True once every node lists all the others as connected; false after FORM_TIMEOUT_MS. */
async function clusterFormed(nodes: readonly DevNode[]): Promise<boolean> {
  const deadline = Date.now() + FORM_TIMEOUT_MS;
  const formedAt = async (node: DevNode): Promise<boolean> => {
    try {
      const response = await fetch(new URL(STATUS_PATH, node.url), { signal: AbortSignal.timeout(2_000) });
      const status = (await response.json()) as NodeStats;
      const connected = status.members.filter((m) => m.state === 'connected' || m.state === 'self');
      return connected.length === nodes.length;
    } catch {
      return false;
    }
  };
  while (Date.now() < deadline) {
    if ((await Promise.all(nodes.map(formedAt))).every(Boolean)) return true;
    await new Promise((resolve) => setTimeout(resolve, FORM_POLL_MS));
  }
  return false;
}

/** Resolves when the node reports it is up; rejects when it exits or takes too long. */
function ready(node: DevNode): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(
        new CommandFailedError(
          `${node.name} did not start within ${START_TIMEOUT_MS / 1000} s; see ${node.logFile}`,
        ),
      );
    }, START_TIMEOUT_MS);
    node.child.once('message', (message: { ready?: { hubAddress?: string } }) => {
      clearTimeout(timer);
      node.hubAddress = message.ready?.hubAddress;
      resolve();
    });
    node.child.once('exit', (code) => {
      clearTimeout(timer);
      reject(
        new CommandFailedError(
          `${node.name} exited with code ${String(code)} while starting; see ${node.logFile}`,
        ),
      );
    });
  });
}

function print(nodes: readonly DevNode[]): void {
  const first = nodes[0] as DevNode;
  const lines = [
    `Weft dev cluster: ${nodes.length} node${nodes.length === 1 ? '' : 's'} on loopback, with the example application`,
    ...nodes.map(
      (n) =>
        `  ${n.name}  ${n.url}${n.hubAddress === undefined ? '' : `   hub gRPC ${n.hubAddress}`}   log ${n.logFile}`,
    ),
    '',
    `Dashboard:  ${first.url}/`,
    'Try:',
    `  ${weftCommand()} send ${COUNTER_TYPE}/ada '"hello"'`,
    `  curl -X POST ${first.url}${INGRESS_PREFIX}/${COUNTER_TYPE}/ada -H 'Weft-Message-Type: ${JSON_MESSAGE_TYPE}' -d '"hello"'`,
    `  curl ${first.url}/v1/views/functions`,
    `  ${weftCommand()} status`,
    '',
    'Ctrl-C stops the cluster.',
  ];
  console.log(lines.join('\n'));
}

/** How to run the CLI here: from a clone's sources (`npm start`), or the installed package's bin. */
function weftCommand(): string {
  return (process.argv[1] ?? '').endsWith('.ts') ? 'npm run weft --' : 'npx weft';
}
