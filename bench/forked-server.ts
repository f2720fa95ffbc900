// What the two-process suites share about their forked server process.

import type { ChildProcess } from 'node:child_process';

const exitTimeoutMs = 5_000;

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
