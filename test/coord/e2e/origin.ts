// A real OCI registry as the origin of the end-to-end tests: Debian's `docker-registry`
// (the CNCF distribution registry, 2.8) on 127.0.0.1, run directly with a config of our
// own in a temp dir (the package's systemd service and /etc config are not used).
//
// It listens on port 0 and we read the port it got from its "listening on" log line, so
// there is no race for a free port. Its access log (Apache combined format, on stdout)
// goes straight to a file: the registry writes a request's line before the last bytes of
// the response leave, so once a client has finished, reading the file sees its requests.

import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync, rmSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** The registry binary: WEFT_TEST_DOCKER_REGISTRY, else Debian's name for it. */
export const registryBinary = process.env['WEFT_TEST_DOCKER_REGISTRY'] ?? 'docker-registry';

export interface AccessLogEntry {
  readonly method: string;
  /** The request target as sent, e.g. /v2/demo/blobs/sha256:… */
  readonly path: string;
  readonly status: number;
  /** Response body bytes, 0 when the log says "-". */
  readonly bytes: number;
  readonly userAgent: string;
}

export interface Origin {
  /** http://127.0.0.1:<port> */
  readonly url: string;
  readonly port: number;
  /** Where the registry keeps its blobs (storage.filesystem.rootdirectory). */
  readonly storageDir: string;
  /** Every request the registry has logged so far, oldest first. */
  accessLog(): AccessLogEntry[];
  /** How many GETs of the blob `digest` (in any repository, any status) the origin has seen. */
  blobGets(digest: string): number;
  /** Kills the registry and removes its temp dir. Safe to call twice. */
  stop(): Promise<void>;
}

const startTimeoutMs = 15_000;
const stopTimeoutMs = 5_000;
const stderrTailBytes = 16 * 1024;
const accessLogLimitBytes = 64 * 1024 * 1024;
// host ident user [time] "METHOD target PROTO" status bytes "referer" "user agent"
const combinedLogLine =
  /^\S+ \S+ \S+ \[[^\]]*\] "(\S+) (\S+) [^"]*" (\d{3}) (\d+|-) "(?:[^"\\]|\\.)*" "((?:[^"\\]|\\.)*)"$/;
const listeningLine = /listening on 127\.0\.0\.1:(\d+)/;

// Registries still running when the test process exits are killed and their temp dirs
// removed, so none outlive it. (A process killed by a signal runs no exit handlers.)
const running = new Map<ChildProcess, string>();
process.once('exit', () => {
  for (const [child, dir] of running) {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Starts a registry on 127.0.0.1 with empty storage; rejects with its stderr if it cannot. */
export async function startOrigin(): Promise<Origin> {
  const dir = await mkdtemp(path.join(tmpdir(), 'weft-origin-'));
  const storageDir = path.join(dir, 'storage');
  const configPath = path.join(dir, 'config.yml');
  const accessLogPath = path.join(dir, 'access.log');
  // JSON is YAML, so the config needs no YAML writer.
  const config = {
    version: '0.1',
    // Level info is needed for the "listening on" line that tells us the port.
    log: { level: 'info', formatter: 'text', accesslog: { disabled: false } },
    storage: {
      filesystem: { rootdirectory: storageDir },
      delete: { enabled: true },
      maintenance: { uploadpurging: { enabled: false } },
    },
    http: { addr: '127.0.0.1:0', secret: randomBytes(16).toString('hex') },
  };
  await writeFile(configPath, JSON.stringify(config, null, 2));

  // REGISTRY_* variables override the config file; none from our environment may leak in.
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('REGISTRY_')));
  const accessLogFd = openSync(accessLogPath, 'w');
  let child: ChildProcess;
  try {
    child = spawn(registryBinary, ['serve', configPath], { env, stdio: ['ignore', accessLogFd, 'pipe'] });
  } finally {
    closeSync(accessLogFd);
  }
  running.set(child, dir);
  let stderrTail = '';
  let exited = false;
  const exitedPromise = new Promise<void>((resolve) => {
    child.once('exit', () => {
      exited = true;
      running.delete(child);
      resolve();
    });
  });

  const removeDir = (): void => {
    rmSync(dir, { recursive: true, force: true });
  };
  let port: number;
  try {
    port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`${registryBinary} did not report a port within ${startTimeoutMs} ms`));
      }, startTimeoutMs);
      child.once('error', (error) => {
        clearTimeout(timer);
        reject(new Error(`cannot run ${registryBinary}: ${error.message}`, { cause: error }));
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`${registryBinary} exited (${signal ?? `code ${code}`}) before listening`));
      });
      child.stderr?.setEncoding('utf8');
      // Keep draining stderr for the registry's whole life, or it blocks on a full pipe.
      child.stderr?.on('data', (chunk: string) => {
        stderrTail = (stderrTail + chunk).slice(-stderrTailBytes);
        const match = listeningLine.exec(stderrTail);
        if (match !== null) {
          clearTimeout(timer);
          resolve(Number(match[1]));
        }
      });
    });
  } catch (error) {
    child.kill('SIGKILL');
    await exitedPromise;
    removeDir();
    throw new Error(`${(error as Error).message}; its stderr ends with:\n${stderrTail}`, { cause: error });
  }
  // The test process must not wait on a registry someone forgot to stop.
  child.unref();
  (child.stderr as { unref?: () => void } | null)?.unref?.();

  const accessLog = (): AccessLogEntry[] => {
    const text = readFileSync(accessLogPath, 'utf8');
    if (text.length > accessLogLimitBytes) throw new Error(`access log over ${accessLogLimitBytes} bytes`);
    const entries: AccessLogEntry[] = [];
    for (const line of text.split('\n')) {
      const match = combinedLogLine.exec(line);
      // Anything else on stdout (there should be nothing) is not a request.
      if (match === null) continue;
      const [, method = '', target = '', status = '0', bytes = '-', userAgent = ''] = match;
      entries.push({
        method,
        path: target,
        status: Number(status),
        bytes: bytes === '-' ? 0 : Number(bytes),
        userAgent,
      });
    }
    return entries;
  };

  let stopped: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    storageDir,
    accessLog,
    blobGets: (digest) => {
      const suffix = `/blobs/${digest}`;
      return accessLog().filter(
        (e) => e.method === 'GET' && e.path.startsWith('/v2/') && e.path.endsWith(suffix),
      ).length;
    },
    stop: () =>
      (stopped ??= (async () => {
        if (!exited) {
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), stopTimeoutMs);
          await exitedPromise;
          clearTimeout(timer);
        }
        removeDir();
      })()),
  };
}
