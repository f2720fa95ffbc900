// Frame checksum: the low 32 bits of XXH3-64 (seed 0) over every earlier byte of the
// message, as MinIO's grid uses. It guards against corruption that TCP's 16-bit
// checksum lets through on plain connections; on TLS the record MAC does that job and
// the CRC is left off.

import { xxh3 } from '@node-rs/xxhash';

export function crc32OfFrame(bytes: Uint8Array): number {
  return Number(BigInt.asUintN(32, xxh3.xxh64(bytes)));
}
