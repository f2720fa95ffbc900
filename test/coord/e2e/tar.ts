// A minimal ustar writer for building image layers offline: regular files only, fixed
// owner and mtime, so the same entries always give the same bytes (and the same digest).

import { Buffer } from 'node:buffer';

export interface TarFile {
  /** Relative path inside the archive, at most 100 bytes (no prefix field support). */
  readonly path: string;
  readonly content: Uint8Array;
}

const blockBytes = 512;

/** The tar archive of `files`, in the given order, ended by the two zero blocks. */
export function tarArchive(files: readonly TarFile[]): Buffer {
  const parts: Buffer[] = [];
  for (const file of files) {
    parts.push(ustarHeader(file.path, file.content.length));
    parts.push(Buffer.from(file.content));
    const padding = (blockBytes - (file.content.length % blockBytes)) % blockBytes;
    if (padding > 0) parts.push(Buffer.alloc(padding));
  }
  parts.push(Buffer.alloc(2 * blockBytes));
  return Buffer.concat(parts);
}

function ustarHeader(path: string, sizeBytes: number): Buffer {
  const name = Buffer.from(path, 'utf8');
  if (name.length === 0 || name.length > 100 || path.startsWith('/') || path.split('/').includes('..')) {
    throw new Error(`tar entry path ${JSON.stringify(path)} must be relative, without "..", 1-100 bytes`);
  }
  // 11 octal digits is the ustar size limit (8 GiB - 1).
  if (!Number.isSafeInteger(sizeBytes) || sizeBytes < 0 || sizeBytes > 0o77777777777) {
    throw new Error(`tar entry ${path} is ${sizeBytes} bytes; ustar holds at most 8 GiB - 1`);
  }
  const header = Buffer.alloc(blockBytes);
  name.copy(header, 0);
  writeOctal(header, 100, 8, 0o644); // mode
  writeOctal(header, 108, 8, 0); // uid
  writeOctal(header, 116, 8, 0); // gid
  writeOctal(header, 124, 12, sizeBytes);
  writeOctal(header, 136, 12, 0); // mtime: the epoch, for reproducible bytes
  header.fill(0x20, 148, 156); // the checksum is computed with its own field as spaces
  header.write('0', 156, 'latin1'); // typeflag: regular file
  header.write('ustar\u000000', 257, 'latin1'); // magic "ustar\0" and version "00"
  header.write('root', 265, 'latin1'); // uname
  header.write('root', 297, 'latin1'); // gname
  let checksum = 0;
  for (const byte of header) checksum += byte;
  header.write(`${checksum.toString(8).padStart(6, '0')}\u0000 `, 148, 'latin1');
  return header;
}

/** Zero-padded octal digits followed by a NUL, filling `width` bytes. */
function writeOctal(header: Buffer, offset: number, width: number, value: number): void {
  header.write(`${value.toString(8).padStart(width - 1, '0')}\u0000`, offset, 'latin1');
}
