// Exactly one side of each pair of nodes dials; the other accepts. The choice must be
// the same when computed on either side and should not make one node dial everyone, so
// it compares SHA-256(a ‖ b) with SHA-256(b ‖ a): whichever side's ordering hashes lower
// dials. The rule is antisymmetric for any two distinct hosts.

import { createHash } from 'node:crypto';

export function shouldDial(local: string, remote: string): boolean {
  if (local === remote) return false;
  const forward = createHash('sha256').update(`${local}\n${remote}`).digest();
  const backward = createHash('sha256').update(`${remote}\n${local}`).digest();
  const order = Buffer.compare(forward, backward);
  return order === 0 ? local < remote : order < 0;
}
