// `weft start`: one node in this process, until SIGINT or SIGTERM (a graceful stop; a second
// signal stops at once) or, when a `weft dev` parent started it, until that parent goes away.

import { parseArgs } from 'node:util';

import { ConfigError } from '../internal/errors.ts';
import {
  nodeConfigFromEnv,
  readNodeConfigFile,
  resolveNodeConfig,
  type NodeConfig,
  type NodeConfigInput,
  startNode,
} from '../node/index.ts';
import { EXIT_FAILED, UsageError } from './usage.ts';

export async function loadConfig(args: readonly string[], env: NodeJS.ProcessEnv): Promise<NodeConfig> {
  const { values } = parseArgs({
    args: [...args],
    options: {
      config: { type: 'string' },
      name: { type: 'string' },
      host: { type: 'string' },
      port: { type: 'string' },
      advertise: { type: 'string' },
      seed: { type: 'string', multiple: true },
      'data-dir': { type: 'string' },
      'log-level': { type: 'string' },
      example: { type: 'boolean' },
      postgres: { type: 'string' },
    },
    strict: true,
    allowPositionals: false,
  });
  const file: NodeConfigInput = values.config === undefined ? {} : await readNodeConfigFile(values.config);
  const flags: Record<string, unknown> = {};
  if (values.name !== undefined) flags['name'] = values.name;
  if (values.host !== undefined || values.port !== undefined) {
    flags['listen'] = {
      ...(values.host === undefined ? {} : { host: values.host }),
      ...(values.port === undefined ? {} : { port: portFrom(values.port) }),
    };
  }
  if (values.advertise !== undefined) flags['advertise'] = values.advertise;
  if (values.seed !== undefined) flags['cluster'] = { seeds: values.seed };
  if (values['data-dir'] !== undefined) flags['dataDir'] = values['data-dir'];
  if (values['log-level'] !== undefined) flags['log'] = { level: values['log-level'] };
  if (values.example !== undefined) flags['example'] = values.example;
  if (values.postgres !== undefined) flags['runtime'] = { postgres: values.postgres };
  return resolveNodeConfig(file, nodeConfigFromEnv(env), flags);
}

function portFrom(text: string): number {
  const port = Number(text);
  if (!Number.isSafeInteger(port))
    throw new ConfigError('listen.port', `must be an integer, got ${JSON.stringify(text)}`);
  return port;
}

export async function startCommand(args: readonly string[]): Promise<number> {
  let config: NodeConfig;
  try {
    config = await loadConfig(args, process.env);
  } catch (error) {
    if (
      error instanceof ConfigError ||
      (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') === true
    ) {
      throw new UsageError((error as Error).message);
    }
    throw error;
  }
  const node = await startNode(config);
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (why: string): void => {
      if (stopping) {
        node.logger.warn({ why }, 'stopping at once');
        process.exit(EXIT_FAILED);
      }
      stopping = true;
      node.logger.info({ why }, 'stopping gracefully (again to stop at once)');
      node.close().then(
        () => {
          resolve(0);
        },
        (error: unknown) => {
          node.logger.error({ error: (error as Error).message }, 'the node did not stop cleanly');
          resolve(EXIT_FAILED);
        },
      );
    };
    // A node `weft dev` started shares the terminal's process group: Ctrl-C reaches it too, but
    // its parent stops it (SIGTERM, then SIGKILL on a second Ctrl-C), so one stop is graceful.
    const supervised = process.send !== undefined;
    process.on('SIGINT', () => {
      if (!supervised) stop('SIGINT');
    });
    process.on('SIGTERM', () => {
      stop('SIGTERM');
    });
    // Started by `weft dev` over IPC: a parent that dies must not leave this node running.
    if (process.send !== undefined) {
      process.on('disconnect', () => {
        stop('parent gone');
      });
      process.send({ ready: { name: node.name, url: node.url, hubAddress: node.hubAddress } });
    }
  });
}
