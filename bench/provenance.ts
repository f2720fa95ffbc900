// Which code a result measured: the commit, and whether the working tree differed from it.
// A figure that cannot be traced to the code that produced it cannot be trusted or compared,
// so every result file carries both (docs/benchmarks.md, Rules).

import { execFileSync } from 'node:child_process';

export interface SourceRevision {
  /** `git rev-parse HEAD`, or null where `repoDir` is not a git checkout (or git is absent). */
  readonly commit: string | null;
  /**
   * True when a tracked file is modified or an untracked file is present, so the figures may
   * not be those of `commit`; null when that cannot be known. Files under bench/results/ do not
   * count: a run writes its own result there, and the next suite must not read that as dirty.
   */
  readonly dirty: boolean | null;
}

/** Pathspec of what does not make a tree dirty: the results the runs themselves write. */
export const resultsPathspec = ':(exclude)bench/results';

export function sourceRevision(repoDir: string): SourceRevision {
  // --no-optional-locks: reading the status must not take the index lock from a concurrent git.
  const git = (...args: string[]): string =>
    execFileSync('git', ['--no-optional-locks', ...args], {
      cwd: repoDir,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
  let commit: string;
  try {
    commit = git('rev-parse', '--verify', 'HEAD').trim();
  } catch {
    // Not a checkout (an unpacked tarball) or no git: say so rather than guess.
    return { commit: null, dirty: null };
  }
  try {
    const status = git('status', '--porcelain', '--untracked-files=normal', '--', '.', resultsPathspec);
    return { commit, dirty: status.trim() !== '' };
  } catch {
    return { commit, dirty: null };
  }
}
