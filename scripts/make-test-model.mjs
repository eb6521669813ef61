#!/usr/bin/env node
// Writes a tiny random-weight GGUF v3 model with the real Qwen2 vocabulary and the Qwen2.5 chat
// template (tools included), for the test suite: every code path of the local provider runs for
// real on it, only the text is gibberish. Self-contained: the vocabulary comes from the git bundle
// of llama.cpp that node-llama-cpp ships, so nothing is downloaded and ../shared is not read.
//
// Usage: node scripts/make-test-model.mjs [output.gguf] [--embd N --layers N --heads N --kv-heads N
//          --ff N] [--vocab FILE]
//   (default .cache/test-model/tiny-qwen2.gguf, 64 wide, 2 layers). The shape flags make a larger
//   model for benchmarks (bench/local-model.mjs), with every matrix in Q8_0 like a real q8_0 GGUF
//   (the usual CPU format): its cost per token is then what a real model of that size costs.
//   A benchmark shape tiles one pool of random Q8_0 blocks instead of drawing every weight, so a
//   7B shape (8 GB) is written in seconds; values do not change the cost of a matrix product.
//   --vocab reads the tokenizer from that GGUF instead of node-llama-cpp's llama.cpp bundle
//   (for a machine with no git or no bundle).
// Idempotent: an existing file is kept (it is only ever written under a temp name, then renamed).

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
function flag(name, fallback) {
  const i = args.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const value = Number(args[i + 1]);
  if (!Number.isInteger(value) || value <= 0) throw new Error(`--${name} needs a positive integer`);
  args.splice(i, 2);
  return value;
}
const bundlePath = path.join(repoRoot, 'node_modules/node-llama-cpp/llama/gitRelease.bundle');

// Architecture "qwen2" (llama-like blocks plus q/k/v biases) so node-llama-cpp recognises the
// Qwen2.5 template as its QwenChatWrapper, function calling included; with "llama" it would fall
// back to the generic Jinja wrapper.
const ARCH = 'qwen2';
const N_EMBD = flag('embd', 64);
const N_LAYER = flag('layers', 2);
const N_HEAD = flag('heads', 4);
const N_HEAD_KV = flag('kv-heads', N_HEAD);
const N_FF = flag('ff', 256);
const CUSTOM_SHAPE = N_EMBD !== 64 || N_LAYER !== 2 || N_HEAD !== 4 || N_HEAD_KV !== 4 || N_FF !== 256;
if (N_EMBD % N_HEAD !== 0 || N_HEAD % N_HEAD_KV !== 0) throw new Error('--embd must divide by --heads, and --heads by --kv-heads');
const vocabIndex = args.indexOf('--vocab');
const vocabFile = vocabIndex < 0 ? undefined : args.splice(vocabIndex, 2)[1];
// The test model keeps its layer matrices in F32 (tiny anyway); a benchmark shape uses Q8_0.
const MATRIX_TYPE = CUSTOM_SHAPE ? 8 : 0;
const VOCAB_MATRIX_TYPE = CUSTOM_SHAPE ? 8 : 1;
const outPath = path.resolve(args[0] ?? process.env.SWITCHBOARD_TEST_MODEL ?? path.join(repoRoot, '.cache/test-model/tiny-qwen2.gguf'));
const N_CTX = 2048;
const SEED = 0x5eed2b66;
const WEIGHT_STD = 0.02;
// A wider output projection gives a peakier next-token distribution (less uniform over 152k tokens).
const OUTPUT_STD = 0.08;

// Qwen2.5-Instruct's template, verbatim (huggingface.co/Qwen/Qwen2.5-0.5B-Instruct tokenizer_config.json).
const CHAT_TEMPLATE = `{%- if tools %}
    {{- '<|im_start|>system\\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}
    {%- endif %}
    {{- "\\n\\n# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\nYou are provided with function signatures within <tools></tools> XML tags:\\n<tools>" }}
    {%- for tool in tools %}
        {{- "\\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\"name\\": <function-name>, \\"arguments\\": <args-json-object>}\\n</tool_call><|im_end|>\\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}
    {%- else %}
        {{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\\n<tool_call>\\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\\n<tool_response>\\n' }}
        {{- message.content }}
        {{- '\\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
{%- endif %}
`;

// The Qwen2 vocabulary file predates Qwen2.5/Qwen3's added tokens; their ids hold [PADn]
// placeholders. Put the real ones back so <tool_call> and <think> are single tokens, as they are
// for real users. Types as in the released GGUFs: <|…|> ones are control (3), the tags are
// user-defined (4).
const ADDED_TOKENS = {
  151646: '<|object_ref_start|>', 151647: '<|object_ref_end|>', 151648: '<|box_start|>', 151649: '<|box_end|>',
  151650: '<|quad_start|>', 151651: '<|quad_end|>', 151652: '<|vision_start|>', 151653: '<|vision_end|>',
  151654: '<|vision_pad|>', 151655: '<|image_pad|>', 151656: '<|video_pad|>', 151657: '<tool_call>',
  151658: '</tool_call>', 151659: '<|fim_prefix|>', 151660: '<|fim_middle|>', 151661: '<|fim_suffix|>',
  151662: '<|fim_pad|>', 151663: '<|repo_name|>', 151664: '<|file_sep|>', 151665: '<tool_response>',
  151666: '</tool_response>', 151667: '<think>', 151668: '</think>',
};

const T = { U8: 0, I8: 1, U16: 2, I16: 3, U32: 4, I32: 5, F32: 6, BOOL: 7, STRING: 8, ARRAY: 9, U64: 10, I64: 11, F64: 12 };
const SCALAR_SIZE = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };
const ALIGN = 32;
const GGML_F32 = 0;
const GGML_F16 = 1;
const GGML_Q8_0 = 8;


/** A complete file starts with the GGUF magic; partial writes only ever exist under a temp name. */
function isComplete(file) {
  try {
    const fd = fs.openSync(file, 'r');
    const head = Buffer.alloc(4);
    fs.readSync(fd, head, 0, 4, 0);
    fs.closeSync(fd);
    return head.toString('latin1') === 'GGUF';
  } catch {
    return false;
  }
}

/** Extracts ggml-vocab-qwen2.gguf from node-llama-cpp's llama.cpp bundle and returns its tokenizer KVs. */
function readVocabGguf() {
  const gitDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sb-vocab-'));
  try {
    const git = (...args) => execFileSync('git', ['--git-dir', gitDir, ...args], { maxBuffer: 64 * 1024 * 1024, stdio: ['ignore', 'pipe', 'pipe'] });
    execFileSync('git', ['init', '-q', '--bare', gitDir], { stdio: ['ignore', 'pipe', 'pipe'] });
    git('fetch', '-q', bundlePath, 'HEAD');
    return parseTokenizerKvs(git('show', 'FETCH_HEAD:models/ggml-vocab-qwen2.gguf'));
  } finally {
    fs.rmSync(gitDir, { recursive: true, force: true });
  }
}

/** Returns the tokenizer.* KVs as {key, type, raw} where raw is the value's original encoding. */
function parseTokenizerKvs(buf) {
  if (buf.toString('latin1', 0, 4) !== 'GGUF') throw new Error('vocabulary file is not GGUF');
  let off = 4 + 4 + 8; // magic, version, tensor count
  const kvCount = Number(buf.readBigUInt64LE(off));
  off += 8;
  const readString = () => {
    const len = Number(buf.readBigUInt64LE(off));
    const s = buf.toString('utf8', off + 8, off + 8 + len);
    off += 8 + len;
    return s;
  };
  const skipValue = (type) => {
    if (type === T.STRING) return void readString();
    if (type === T.ARRAY) {
      const elType = buf.readUInt32LE(off);
      const count = Number(buf.readBigUInt64LE(off + 4));
      off += 12;
      if (elType === T.STRING || elType === T.ARRAY) for (let i = 0; i < count; i++) skipValue(elType);
      else off += count * SCALAR_SIZE[elType];
      return;
    }
    off += SCALAR_SIZE[type];
  };
  const kvs = [];
  for (let i = 0; i < kvCount; i++) {
    const key = readString();
    const type = buf.readUInt32LE(off);
    off += 4;
    const start = off;
    skipValue(type);
    if (key.startsWith('tokenizer.')) kvs.push({ key, type, raw: buf.subarray(start, off) });
  }
  return kvs;
}

const TOKEN_TYPE_CONTROL = 3;
const TOKEN_TYPE_USER_DEFINED = 4;
const addedTokenType = (text) => (text.startsWith('<|') ? TOKEN_TYPE_CONTROL : TOKEN_TYPE_USER_DEFINED);

/** Sets the token types of the added tokens in the (i32) token_type array. */
function withAddedTokenTypes(kv) {
  const raw = Buffer.from(kv.raw);
  if (raw.readUInt32LE(0) !== T.I32) throw new Error('tokenizer.ggml.token_type is not an i32 array');
  for (const [id, text] of Object.entries(ADDED_TOKENS)) raw.writeInt32LE(addedTokenType(text), 12 + Number(id) * 4);
  return { ...kv, raw };
}

/** Re-encodes the tokens array with the added tokens restored; every other KV is copied verbatim. */
function withAddedTokens(kv) {
  const buf = kv.raw;
  const count = Number(buf.readBigUInt64LE(4));
  const parts = [buf.subarray(0, 12)];
  let off = 12;
  for (let i = 0; i < count; i++) {
    const len = Number(buf.readBigUInt64LE(off));
    const replacement = ADDED_TOKENS[i];
    parts.push(replacement === undefined ? buf.subarray(off, off + 8 + len) : encodeString(replacement));
    off += 8 + len;
  }
  return { ...kv, raw: Buffer.concat(parts) };
}

function encodeString(s) {
  const bytes = Buffer.from(s, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(bytes.length));
  return Buffer.concat([len, bytes]);
}

function scalar(type, value) {
  const b = Buffer.alloc(SCALAR_SIZE[type]);
  if (type === T.U32) b.writeUInt32LE(value);
  else if (type === T.F32) b.writeFloatLE(value);
  else if (type === T.BOOL || type === T.U8) b.writeUInt8(value ? 1 : 0);
  else throw new Error(`unsupported KV type ${type}`);
  return b;
}

function tensorList(nVocab) {
  const headDim = N_EMBD / N_HEAD;
  const kvDim = headDim * N_HEAD_KV;
  const list = [
    { name: 'token_embd.weight', dims: [N_EMBD, nVocab], type: VOCAB_MATRIX_TYPE, std: WEIGHT_STD },
    { name: 'output_norm.weight', dims: [N_EMBD], type: GGML_F32, fill: 1 },
    // Untied output: with tied embeddings a random model repeats its input token forever.
    { name: 'output.weight', dims: [N_EMBD, nVocab], type: VOCAB_MATRIX_TYPE, std: OUTPUT_STD },
  ];
  for (let i = 0; i < N_LAYER; i++) {
    const b = `blk.${i}.`;
    list.push(
      { name: `${b}attn_norm.weight`, dims: [N_EMBD], type: GGML_F32, fill: 1 },
      { name: `${b}attn_q.weight`, dims: [N_EMBD, N_EMBD], type: MATRIX_TYPE, std: WEIGHT_STD },
      { name: `${b}attn_q.bias`, dims: [N_EMBD], type: GGML_F32, fill: 0 },
      { name: `${b}attn_k.weight`, dims: [N_EMBD, kvDim], type: MATRIX_TYPE, std: WEIGHT_STD },
      { name: `${b}attn_k.bias`, dims: [kvDim], type: GGML_F32, fill: 0 },
      { name: `${b}attn_v.weight`, dims: [N_EMBD, kvDim], type: MATRIX_TYPE, std: WEIGHT_STD },
      { name: `${b}attn_v.bias`, dims: [kvDim], type: GGML_F32, fill: 0 },
      { name: `${b}attn_output.weight`, dims: [N_EMBD, N_EMBD], type: MATRIX_TYPE, std: WEIGHT_STD },
      { name: `${b}ffn_norm.weight`, dims: [N_EMBD], type: GGML_F32, fill: 1 },
      { name: `${b}ffn_gate.weight`, dims: [N_EMBD, N_FF], type: MATRIX_TYPE, std: WEIGHT_STD },
      { name: `${b}ffn_up.weight`, dims: [N_EMBD, N_FF], type: MATRIX_TYPE, std: WEIGHT_STD },
      { name: `${b}ffn_down.weight`, dims: [N_FF, N_EMBD], type: MATRIX_TYPE, std: WEIGHT_STD },
    );
  }
  return list;
}

function writeModel(file, tokenizerKvs) {
  const tokensKv = tokenizerKvs.find((kv) => kv.key === 'tokenizer.ggml.tokens');
  if (!tokensKv) throw new Error('vocabulary has no tokenizer.ggml.tokens');
  const nVocab = Number(tokensKv.raw.readBigUInt64LE(4));
  const tokenizer = tokenizerKvs
    .filter((kv) => kv.key !== 'tokenizer.chat_template')
    .map((kv) => {
      if (kv.key === 'tokenizer.ggml.tokens') return withAddedTokens(kv);
      if (kv.key === 'tokenizer.ggml.token_type') return withAddedTokenTypes(kv);
      return kv;
    });

  const kvs = [
    { key: 'general.architecture', type: T.STRING, raw: encodeString(ARCH) },
    { key: 'general.name', type: T.STRING, raw: encodeString('tiny-qwen2-random') },
    { key: 'general.alignment', type: T.U32, raw: scalar(T.U32, ALIGN) },
    // 1 = mostly F16, 7 = mostly Q8_0 (llama_ftype).
    { key: 'general.file_type', type: T.U32, raw: scalar(T.U32, CUSTOM_SHAPE ? 7 : 1) },
    { key: `${ARCH}.context_length`, type: T.U32, raw: scalar(T.U32, N_CTX) },
    { key: `${ARCH}.embedding_length`, type: T.U32, raw: scalar(T.U32, N_EMBD) },
    { key: `${ARCH}.block_count`, type: T.U32, raw: scalar(T.U32, N_LAYER) },
    { key: `${ARCH}.feed_forward_length`, type: T.U32, raw: scalar(T.U32, N_FF) },
    { key: `${ARCH}.attention.head_count`, type: T.U32, raw: scalar(T.U32, N_HEAD) },
    { key: `${ARCH}.attention.head_count_kv`, type: T.U32, raw: scalar(T.U32, N_HEAD_KV) },
    { key: `${ARCH}.rope.dimension_count`, type: T.U32, raw: scalar(T.U32, N_EMBD / N_HEAD) },
    { key: `${ARCH}.vocab_size`, type: T.U32, raw: scalar(T.U32, nVocab) },
    { key: `${ARCH}.attention.layer_norm_rms_epsilon`, type: T.F32, raw: scalar(T.F32, 1e-6) },
    { key: `${ARCH}.rope.freq_base`, type: T.F32, raw: scalar(T.F32, 1000000) },
    ...tokenizer,
    { key: 'tokenizer.chat_template', type: T.STRING, raw: encodeString(CHAT_TEMPLATE) },
  ];

  const tensors = tensorList(nVocab);
  let dataOffset = 0;
  for (const t of tensors) {
    t.count = t.dims.reduce((a, b) => a * b, 1);
    t.bytes = t.type === GGML_Q8_0 ? (t.count / 32) * 34 : t.count * (t.type === GGML_F16 ? 2 : 4);
    t.offset = dataOffset;
    dataOffset = alignUp(dataOffset + t.bytes);
  }

  const header = [Buffer.from('GGUF', 'latin1'), u32(3), u64(tensors.length), u64(kvs.length)];
  for (const kv of kvs) header.push(encodeString(kv.key), u32(kv.type), kv.raw);
  for (const t of tensors) {
    header.push(encodeString(t.name), u32(t.dims.length), ...t.dims.map(u64), u32(t.type), u64(t.offset));
  }
  let head = Buffer.concat(header);
  head = Buffer.concat([head, Buffer.alloc(alignUp(head.length) - head.length)]);

  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  const fd = fs.openSync(tmp, 'w');
  try {
    fs.writeSync(fd, head);
    const random = normalSource(SEED);
    const pool = CUSTOM_SHAPE ? q8Pool(random) : undefined;
    let written = 0;
    for (const [index, t] of tensors.entries()) {
      if (t.offset > written) fs.writeSync(fd, Buffer.alloc(t.offset - written));
      if (pool && t.type === GGML_Q8_0) writeTiled(fd, pool, t.bytes, index);
      else fs.writeSync(fd, tensorBytes(t, random));
      written = t.offset + t.bytes;
    }
    fs.fsyncSync(fd);
  } catch (err) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  fs.closeSync(fd);
  fs.renameSync(tmp, file);
}

function tensorBytes(t, random) {
  if (t.type === GGML_F32) {
    const a = new Float32Array(t.count);
    if (t.fill !== undefined) a.fill(t.fill);
    else for (let i = 0; i < t.count; i++) a[i] = random() * t.std;
    return Buffer.from(a.buffer);
  }
  if (t.type === GGML_Q8_0) return q8Bytes(t, random);
  const a = new Uint16Array(t.count);
  for (let i = 0; i < t.count; i++) a[i] = toHalf(random() * t.std);
  return Buffer.from(a.buffer);
}

/** Q8_0: blocks of 32 weights, each an f16 scale then 32 int8 (ggml's block_q8_0). */
function q8Bytes(t, random) {
  const out = Buffer.alloc((t.count / 32) * 34);
  const block = new Float32Array(32);
  for (let b = 0, off = 0; b < t.count / 32; b++, off += 34) {
    let amax = 0;
    for (let i = 0; i < 32; i++) {
      block[i] = random() * t.std;
      amax = Math.max(amax, Math.abs(block[i]));
    }
    const d = amax / 127;
    out.writeUInt16LE(toHalf(d), off);
    for (let i = 0; i < 32; i++) out.writeInt8(d === 0 ? 0 : Math.round(block[i] / d), off + 2 + i);
  }
  return out;
}

/** 2^18 random Q8_0 blocks (8.9 MB) at the usual weight scale, tiled by writeTiled. */
function q8Pool(random) {
  return q8Bytes({ count: 32 << 18, std: WEIGHT_STD }, random);
}

/** Writes `bytes` of Q8_0 blocks from the pool, starting at a per-tensor block so tensors differ. */
function writeTiled(fd, pool, bytes, index) {
  const blocks = pool.length / 34;
  let start = ((index * 7919) % blocks) * 34;
  for (let left = bytes; left > 0; ) {
    const n = Math.min(left, pool.length - start);
    fs.writeSync(fd, pool, start, n);
    left -= n;
    start = 0;
  }
}

/** Seeded standard normal numbers: mulberry32 + Box-Muller. */
function normalSource(seed) {
  let s = seed >>> 0;
  const uniform = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let x = Math.imul(s ^ (s >>> 15), 1 | s);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return (((x ^ (x >>> 14)) >>> 0) + 0.5) / 4294967296;
  };
  let spare = null;
  return () => {
    if (spare !== null) {
      const v = spare;
      spare = null;
      return v;
    }
    const r = Math.sqrt(-2 * Math.log(uniform()));
    const theta = 2 * Math.PI * uniform();
    spare = r * Math.sin(theta);
    return r * Math.cos(theta);
  };
}

const f32 = new Float32Array(1);
const f32bits = new Uint32Array(f32.buffer);
function toHalf(value) {
  f32[0] = value;
  const x = f32bits[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = ((x >>> 23) & 0xff) - 127 + 15;
  const mant = x & 0x7fffff;
  if (exp >= 31) return sign | 0x7c00;
  if (exp <= 0) {
    if (exp < -10) return sign;
    return sign | (((mant | 0x800000) >>> (1 - exp)) + 0x1000) >>> 13;
  }
  return sign | ((exp << 10) + ((mant + 0x1000) >>> 13));
}

function alignUp(n) {
  return Math.ceil(n / ALIGN) * ALIGN;
}
function u32(n) {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}
function u64(n) {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return b;
}

function main() {
  if (isComplete(outPath)) return;
  const started = Date.now();
  writeModel(outPath, vocabFile ? parseTokenizerKvs(fs.readFileSync(vocabFile)) : readVocabGguf());
  const mb = (fs.statSync(outPath).size / 1e6).toFixed(1);
  process.stderr.write(`make-test-model: wrote ${path.relative(process.cwd(), outPath)} (${mb} MB) in ${Date.now() - started} ms\n`);
}

main();
