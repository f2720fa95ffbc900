// What the two-process suites share about their forked server process: stopping it, profiling
// it, and the loopback servers it runs.

import type { ChildProcess } from 'node:child_process';
import type http from 'node:http';
import type { AddressInfo } from 'node:net';

const exitTimeoutMs = 5_000;

export const loopback = '127.0.0.1';

/** Listens on a free loopback port; resolves with the port. */
export async function listenOnLoopback(server: http.Server): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, loopback, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return (server.address() as AddressInfo).port;
}

/** Closes `server`, its idle and active connections included. */
export function closeServer(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => {
      resolve();
    });
    server.closeAllConnections();
  });
}

/** `node --cpu-prof … bench/run.ts <suite>` profiles the server process too, into the same directory. */
export function profilingFlags(): string[] {
  return process.execArgv.filter((flag) => flag.startsWith('--cpu-prof'));
}

/**
 * Asks a forked server to exit (it does when its IPC channel closes) and waits for `exited`;
 * kills it if it has not exited within 5 s.
 */
export async function stopChild(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  if (child.connected) child.disconnect();
  const timer = setTimeout(() => {
    child.kill('SIGKILL');
  }, exitTimeoutMs);
  await exited;
  clearTimeout(timer);
}
