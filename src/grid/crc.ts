// Frame checksum: CRC-32 with the IEEE 802.3 polynomial, as zlib and gzip compute it, over
// every earlier byte of the message. It guards against corruption that TCP's 16-bit checksum
// lets through on plain connections; on TLS the record MAC does that job and the CRC is left
// off.
//
// Version 2 of the protocol used the low 32 bits of XXH3-64. node:zlib's CRC-32 is faster at
// every frame size: about 2.6 GB/s against 1.2 GB/s for the native XXH3 (17 KB in 6.8 µs
// against 16 µs, 1 MiB in 400 µs against 890 µs), 303 ns for 530 bytes where XXH3 in
// JavaScript takes 914 ns, and it returns a number where the native XXH3 returns a BigInt.
// It comes with Node, so there is nothing native to install for it.

import { crc32 } from 'node:zlib';

/** The CRC-32 of `bytes`, as an unsigned 32-bit number. */
export function crc32OfFrame(bytes: Uint8Array): number {
  return crc32(bytes);
}
