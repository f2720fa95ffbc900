// The gate for end-to-end tests that run real OCI programs (docker-registry, skopeo),
// in the manner of src/testing/services.ts: absent tools skip the test with a reason,
// unless WEFT_REQUIRE_SERVICES=1 (CI), where they fail it. A tool counts as present
// when it runs and answers `--version`, not merely when a file by that name exists.

import { execFile } from 'node:child_process';

import { requireServicesVariable } from '../../../src/testing/index.ts';
import { registryBinary } from './origin.ts';
import { skopeoBinary } from './skopeo.ts';

export interface ToolsGate {
  /** A skip reason for `test(name, { skip }, …)`, or false when every tool answered. */
  readonly skip: string | false;
  /** What each tool said its version is (absent tools are left out). */
  readonly versions: Readonly<Record<string, string>>;
}

const installHint = 'apt-get install -y docker-registry skopeo';

export async function ociToolsGate(env: NodeJS.ProcessEnv = process.env): Promise<ToolsGate> {
  const versions: Record<string, string> = {};
  const problems: string[] = [];
  for (const binary of [registryBinary, skopeoBinary]) {
    try {
      versions[binary] = await versionOf(binary);
    } catch (error) {
      problems.push(`${binary}: ${(error as Error).message}`);
    }
  }
  if (problems.length === 0) return { skip: false, versions };
  const reason = `OCI tools missing (${problems.join('; ')}); install with \`${installHint}\``;
  if (env[requireServicesVariable] === '1') {
    throw new Error(`${reason}. ${requireServicesVariable}=1, so this is a failure, not a skip`);
  }
  return { skip: reason, versions };
}

function versionOf(binary: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(binary, ['--version'], { timeout: 10_000, maxBuffer: 64 * 1024 }, (error, stdout) => {
      if (error === null) resolve(stdout.trim());
      else
        reject(
          new Error((error as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found on PATH' : error.message),
        );
    });
  });
}
