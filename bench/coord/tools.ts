// The coord suite drives real OCI programs: Debian's docker-registry as the origin, and skopeo to
// push the images that the fan-out case pulls. Without them there is no figure to publish, so
// the suite fails up front with how to install them, rather than skipping a case quietly.

import { execFile } from 'node:child_process';

import { registryBinary } from '../../test/coord/e2e/origin.ts';
import { skopeoBinary } from '../../test/coord/e2e/skopeo.ts';

const installHint = 'apt-get install -y docker-registry skopeo';

/** Resolves when every tool answers `--version`; rejects naming each one that did not. */
export async function requireOciTools(): Promise<void> {
  const problems: string[] = [];
  for (const binary of [registryBinary, skopeoBinary]) {
    try {
      await answersVersion(binary);
    } catch (error) {
      problems.push(`${binary}: ${(error as Error).message}`);
    }
  }
  if (problems.length > 0) {
    throw new Error(
      `the coord suite needs a real OCI registry and skopeo (${problems.join('; ')}); install with \`${installHint}\``,
    );
  }
}

function answersVersion(binary: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(binary, ['--version'], { timeout: 10_000, maxBuffer: 64 * 1024 }, (error) => {
      if (error === null) resolve();
      else
        reject(
          new Error((error as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found on PATH' : error.message),
        );
    });
  });
}
