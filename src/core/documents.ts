// Documents for models that cannot read them: PDF, DOCX, XLSX, CSV, HTML, TXT/MD become
// labelled text ("Document 1 (report.pdf):\n…") so every model can read them. Called from
// Gateway.chat, so every dialect benefits.

import { inflateRawSync, inflateSync } from 'node:zlib';
import mammoth from 'mammoth';
import { badRequest, GatewayError } from './errors.js';
import type { ResolvedModel } from './models.js';
import type { ChatRequest, ContentPart, MediaPart, Message } from './types.js';

/** Declared document formats (Bedrock Converse names) → media types. */
export const DOCUMENT_FORMATS: Record<string, string> = {
  pdf: 'application/pdf',
  docx: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  xlsx: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
  doc: 'application/msword',
  xls: 'application/vnd.ms-excel',
  csv: 'text/csv',
  txt: 'text/plain',
  md: 'text/markdown',
  html: 'text/html',
};

/** Formats whose bytes carry no magic number: accepted when they decode as UTF-8 text. */
export const TEXT_DOCUMENT_TYPES = new Set(['text/csv', 'text/plain', 'text/markdown', 'text/html']);

export function decodeUtf8Text(bytes: Uint8Array): string | undefined {
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    // NUL bytes mean binary data that happens to be valid UTF-8.
    return text.includes('\u0000') ? undefined : text;
  } catch {
    return undefined;
  }
}

// --- PDF: text of simple PDFs (uncompressed or Flate content streams, Tj/TJ/'/" operators) ---

function unescapePdfString(s: string): string {
  return s.replace(/\\([nrtbf()\\]|[0-7]{1,3}|\r?\n)/g, (_m, e: string) => {
    const map: Record<string, string> = { n: '\n', r: '\r', t: '\t', b: '\b', f: '\f', '(': '(', ')': ')', '\\': '\\' };
    if (e in map) return map[e]!;
    if (/^[0-7]/.test(e)) return String.fromCharCode(parseInt(e, 8));
    return '';
  });
}

function hexString(hex: string): string {
  const clean = hex.replace(/\s+/g, '');
  const bytes = Buffer.from(clean.length % 2 ? `${clean}0` : clean, 'hex');
  // Two-byte (Identity-H style) strings: keep printable code units.
  if (bytes.length >= 2 && bytes[0] === 0) return bytes.swap16().toString('utf16le');
  return bytes.toString('latin1');
}

function textOfContentStream(content: string): string {
  let out = '';
  // No token spans the opening character of another: an unclosed one fails at the next, so
  // a run of them costs linear time, not quadratic (0.45 MB took seconds).
  const token = /\((?:\\.|[^\\()])*\)|<[0-9A-Fa-f\s]*>|\[(?:\\.|[^\]\\[])*\]|(T[jJ*dDm]|ET|'|")/g;
  let pending = '';
  for (let m = token.exec(content); m; m = token.exec(content)) {
    const t = m[0];
    if (t.startsWith('(')) pending += unescapePdfString(t.slice(1, -1));
    else if (t.startsWith('<')) pending += hexString(t.slice(1, -1));
    else if (t.startsWith('[')) {
      const inner = /\((?:\\.|[^\\()])*\)|<[0-9A-Fa-f\s]*>|-?\d+(?:\.\d+)?/g;
      const items = t.slice(1, -1);
      for (let i = inner.exec(items); i; i = inner.exec(items)) {
        const v = i[0];
        if (v.startsWith('(')) pending += unescapePdfString(v.slice(1, -1));
        else if (v.startsWith('<')) pending += hexString(v.slice(1, -1));
        else if (Number(v) < -200) pending += ' ';
      }
    } else if (t === 'Tj' || t === 'TJ') {
      out += pending;
      pending = '';
    } else if (t === "'" || t === '"') {
      out += `\n${pending}`;
      pending = '';
    } else if (t === 'T*' || t === 'Td' || t === 'TD' || t === 'Tm' || t === 'ET') {
      pending = '';
      if (!out.endsWith('\n') && out.length) out += '\n';
    }
  }
  return out;
}

/**
 * What one document's compressed parts may expand to, in all. A PDF's Flate streams and a zip's
 * entries are inflated in memory: a 1 MB stream of zeros inflated past 2 GB of memory, held
 * the event loop for seconds and ended in a 500; a 25 MB one would exhaust memory.
 */
export const MAX_INFLATED_BYTES = 64 * 1024 * 1024;

class InflateBudget {
  private left = MAX_INFLATED_BYTES;

  constructor(private readonly param: string) {}

  inflate(inflater: typeof inflateSync, data: Uint8Array): Buffer {
    try {
      const out = inflater(data, { maxOutputLength: Math.max(1, this.left) });
      this.left -= out.length;
      return out;
    } catch (err) {
      if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') {
        throw new GatewayError('payload_too_large', `The document expands to more than ${MAX_INFLATED_BYTES / 1024 / 1024} MB when decompressed; send a smaller one or its text`, { param: this.param, code: 'document_too_large' });
      }
      throw err;
    }
  }
}

export function pdfText(bytes: Uint8Array, param = 'messages'): string {
  const budget = new InflateBudget(param);
  const buffer = Buffer.from(bytes);
  const latin = buffer.toString('latin1');
  const texts: string[] = [];
  const streamRe = /<<((?:[^<>]|<<(?:[^<>]|<<[^<>]*>>)*>>|<[^<>]*>)*)>>\s*stream\r?\n/g;
  for (let m = streamRe.exec(latin); m; m = streamRe.exec(latin)) {
    const dict = m[1]!;
    const start = m.index + m[0].length;
    const end = latin.indexOf('endstream', start);
    if (end < 0) break;
    // The next stream starts after this one's end: searched from inside it, every header before a
    // distant `endstream` re-read all the bytes up to it (0.9 MB of such headers took 36 s).
    streamRe.lastIndex = end + 'endstream'.length;
    if (/\/Subtype\s*\/Image|\/Type\s*\/XObject|\/Length1|\/FontFile/.test(dict)) continue;
    let data: Buffer = buffer.subarray(start, end);
    if (/\/FlateDecode/.test(dict)) {
      try {
        data = budget.inflate(inflateSync, data);
      } catch (err) {
        if (err instanceof GatewayError) throw err;
        continue;
      }
    } else if (/\/Filter/.test(dict)) continue;
    const text = textOfContentStream(data.toString('latin1'));
    if (text.trim()) texts.push(text.trim());
  }
  return texts.join('\n');
}

// --- ZIP (for XLSX): just enough to read named entries ---

function zipEntries(bytes: Uint8Array, budget: InflateBudget): Map<string, Buffer> {
  const buf = Buffer.from(bytes);
  const entries = new Map<string, Buffer>();
  let eocd = -1;
  for (let i = buf.length - 22; i >= Math.max(0, buf.length - 65_557); i--) {
    if (buf.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error('not a zip archive');
  const count = buf.readUInt16LE(eocd + 10);
  let offset = buf.readUInt32LE(eocd + 16);
  for (let n = 0; n < count; n++) {
    if (buf.readUInt32LE(offset) !== 0x02014b50) throw new Error('corrupt zip directory');
    const method = buf.readUInt16LE(offset + 10);
    const compressedSize = buf.readUInt32LE(offset + 20);
    const nameLength = buf.readUInt16LE(offset + 28);
    const extraLength = buf.readUInt16LE(offset + 30);
    const commentLength = buf.readUInt16LE(offset + 32);
    const localOffset = buf.readUInt32LE(offset + 42);
    const name = buf.toString('utf8', offset + 46, offset + 46 + nameLength);
    const localNameLength = buf.readUInt16LE(localOffset + 26);
    const localExtraLength = buf.readUInt16LE(localOffset + 28);
    const dataStart = localOffset + 30 + localNameLength + localExtraLength;
    const raw = buf.subarray(dataStart, dataStart + compressedSize);
    if (method === 0) entries.set(name, raw);
    else if (method === 8) entries.set(name, budget.inflate(inflateRawSync, raw));
    offset += 46 + nameLength + extraLength + commentLength;
  }
  return entries;
}

function xmlText(s: string): string {
  return s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&amp;/g, '&');
}

/**
 * `<tag attributes>content</tag>` (1: attributes, 2: content). The content may not run into
 * another `<tag`, and the attributes not past a `<`: an unclosed element fails at the next one,
 * so a run of them costs linear time (a lazy `[\s\S]*?` read to the end of the text from each
 * one: 32,000 unclosed rows took 1.7 s, quadratic in their number).
 */
function element(tag: string): RegExp {
  return new RegExp(`<${tag}(?=[\\s>/])([^<>]*)>((?:(?!<${tag}[\\s>/])[\\s\\S])*?)</${tag}>`, 'g');
}

export function xlsxText(bytes: Uint8Array, param = 'messages'): string {
  const entries = zipEntries(bytes, new InflateBudget(param));
  const shared = [...(entries.get('xl/sharedStrings.xml')?.toString('utf8') ?? '').matchAll(element('si'))].map((m) =>
    xmlText([...m[2]!.matchAll(element('t'))].map((t) => t[2]).join('')),
  );
  const sheets = [...entries.keys()].filter((k) => /^xl\/worksheets\/sheet\d+\.xml$/.test(k)).sort();
  const out: string[] = [];
  for (const sheet of sheets) {
    out.push(`# ${sheet.replace(/^xl\/worksheets\/|\.xml$/g, '')}`);
    const xml = entries.get(sheet)!.toString('utf8');
    for (const row of xml.matchAll(element('row'))) {
      const cells = [...row[2]!.matchAll(element('c'))].map((c) => {
        const value = element('v').exec(c[2]!)?.[2] ?? element('t').exec(c[2]!)?.[2] ?? '';
        return /t="s"/.test(c[1]!) ? (shared[Number(value)] ?? '') : xmlText(value);
      });
      out.push(cells.join(','));
    }
  }
  return out.join('\n');
}

export function htmlText(html: string): string {
  return html
    // As element() above: nothing runs into the next opening tag, so unclosed ones cost linear time.
    .replace(/<(script|style)\b[^<>]*>(?:(?!<\1\b)[\s\S])*?<\/\1>/gi, '')
    .replace(/<br\s*\/?>|<\/(p|div|li|h[1-6]|tr)>/gi, '\n')
    .replace(/<[^<>]+>/g, '')
    .replace(/&nbsp;/g, ' ')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&amp;/g, '&')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

/** The text of one document, or a 400 naming the format when it cannot be read as text. */
export async function documentText(part: MediaPart, param = 'messages'): Promise<string> {
  const data = part.data ?? new Uint8Array();
  switch (part.mediaType) {
    case DOCUMENT_FORMATS.pdf:
      return pdfText(data, param);
    case DOCUMENT_FORMATS.docx:
      // mammoth inflates without a limit: the entries are measured under the budget first.
      zipEntries(data, new InflateBudget(param));
      return (await mammoth.extractRawText({ buffer: Buffer.from(data) })).value.trim();
    case DOCUMENT_FORMATS.xlsx:
      return xlsxText(data, param);
    case 'text/html':
      return htmlText(decodeUtf8Text(data) ?? '');
    case 'text/csv':
    case 'text/plain':
    case 'text/markdown':
      return decodeUtf8Text(data) ?? '';
    default:
      throw badRequest(`Documents of type ${part.mediaType} cannot be turned into text for a model without document support`, param, 'unsupported_document');
  }
}

/**
 * Replaces document parts with labelled text when the model cannot take documents; unchanged
 * (same object) when there is nothing to do.
 */
export async function documentsAsText(request: ChatRequest, model: ResolvedModel): Promise<ChatRequest> {
  if (model.modalities.includes('document')) return request;
  if (!request.messages.some((m) => m.content.some((p) => p.type === 'document'))) return request;
  let count = 0;
  const messages: Message[] = [];
  for (const [i, message] of request.messages.entries()) {
    const content: ContentPart[] = [];
    for (const part of message.content) {
      if (part.type !== 'document') {
        content.push(part);
        continue;
      }
      count++;
      const text = await documentText(part, `messages[${i}].content`);
      content.push({ type: 'text', text: `Document ${count}${part.name ? ` (${part.name})` : ''}:\n${text}` });
    }
    messages.push({ ...message, content });
  }
  return { ...request, messages };
}
