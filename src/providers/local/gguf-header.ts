// A look at a GGUF file's fixed header before node-llama-cpp reads it: its reader fills bytes past
// the end of a file with zeros and loops as many times as the header's counts say, so a file with
// a valid magic but corrupt counts kept `serve` busy forever, saying nothing.

import fs from 'node:fs/promises';

const MAGIC = 'GGUF';
/** magic, version (u32), tensor count (u64), metadata entry count (u64). */
const HEADER_BYTES = 4 + 4 + 8 + 8;
/** The least a metadata entry takes: key length (u64), a 1-byte key, value type (u32), a 1-byte value. */
const MIN_ENTRY_BYTES = 8 + 1 + 4 + 1;
/** The least a tensor's description takes: name length (u64), a 1-byte name, n_dims (u32), one dim (u64), type (u32), offset (u64). */
const MIN_TENSOR_BYTES = 8 + 1 + 4 + 8 + 4 + 8;

/** Throws a plain Error saying why, when `file` cannot be the GGUF file its header claims. */
export async function checkGgufHeader(file: string): Promise<void> {
  const handle = await fs.open(file, 'r');
  try {
    const { size } = await handle.stat();
    const header = Buffer.alloc(HEADER_BYTES);
    const { bytesRead } = await handle.read(header, 0, HEADER_BYTES, 0);
    if (bytesRead < HEADER_BYTES) throw new Error(`it is ${size} bytes long, too short to be a GGUF file`);
    const magic = header.toString('latin1', 0, 4);
    if (magic !== MAGIC) throw new Error(`it is not a GGUF file (it starts with ${JSON.stringify(magic)}, not "GGUF")`);
    const version = header.readUInt32LE(4);
    // Version 1 counted in 32 bits; node-llama-cpp reads 2 and 3, and says so itself for others.
    if (version < 2 || version > 3) return;
    const tensors = header.readBigUInt64LE(8);
    const entries = header.readBigUInt64LE(16);
    const least = BigInt(HEADER_BYTES) + entries * BigInt(MIN_ENTRY_BYTES) + tensors * BigInt(MIN_TENSOR_BYTES);
    if (least > BigInt(size)) {
      throw new Error(`its header declares ${entries} metadata entries and ${tensors} tensors, more than its ${size} bytes can hold: the file is truncated or corrupt`);
    }
  } finally {
    await handle.close();
  }
}
