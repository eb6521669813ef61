// Organisation chat content blocks: every modality accepted (Converse and typed forms) and
// rejected as specified, documents read as text by a text-only model, and malformed requests
// answered with 400 in this dialect's error shape.
import assert from 'node:assert/strict';
import zlib from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import { GatewayError } from '../dist/core/errors.js';
import { createScriptedFactory } from './helpers/scripted-provider.mjs';
import * as media from './helpers/media-fixtures.mjs';
import { postJson, startServer } from './helpers/server.mjs';

const scripted = createScriptedFactory({ GatewayError });
const NOVA = 'amazon.nova-lite-v1:0';
const TEXT_ONLY = 'anthropic.claude-text';
let server;
let url;

before(async () => {
  server = await startServer({
    config: {
      models: [
        { id: NOVA, provider: 'scripted', model: 'scripted', modalities: ['text', 'image', 'video', 'document'] },
        { id: TEXT_ONLY, provider: 'scripted', model: 'scripted', modalities: ['text'] },
      ],
    },
    providers: { scripted: scripted.factory },
  });
  url = `${server.url}/api/v3/organizations/acme/ai/chat`;
});
after(() => server.close());

const b64 = (buf) => Buffer.from(buf).toString('base64');
const ask = (blocks, modelId = NOVA) => postJson(url, { modelId, messages: [{ role: 'user', content: [...blocks, { text: 'script:text' }] }] });
const converse = (kind, format, bytes, name) => ({ [kind]: { format, ...(name ? { name } : {}), source: { bytes: b64(bytes) } } });

function lastParts() {
  return scripted.requests.at(-1).messages.at(-1).content;
}

describe('accepted blocks reach the provider with the type read from the bytes', () => {
  const cases = [
    ['image', 'png', media.png, 'image/png'],
    ['image', 'jpeg', media.jpeg, 'image/jpeg'],
    ['image', 'jpg', media.jpeg, 'image/jpeg'],
    ['image', 'gif', media.gif, 'image/gif'],
    ['image', 'webp', media.webp, 'image/webp'],
    ['video', 'mp4', media.mp4, 'video/mp4'],
    ['video', 'mov', media.mov, 'video/quicktime'],
    ['video', 'webm', media.webm, 'video/webm'],
    ['video', 'mkv', media.mkv, 'video/matroska'],
    ['document', 'pdf', media.makePdf(['x']), 'application/pdf'],
    ['document', 'docx', media.makeDocx(['x']), 'application/vnd.openxmlformats-officedocument.wordprocessingml.document'],
    ['document', 'xlsx', media.makeXlsx([['a']]), 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet'],
    ['document', 'csv', Buffer.from('a,b\n1,2\n'), 'text/csv'],
    ['document', 'txt', Buffer.from('plain text é'), 'text/plain'],
    ['document', 'md', Buffer.from('# Title\n'), 'text/markdown'],
    ['document', 'html', Buffer.from('<p>Hi</p>'), 'text/html'],
  ];
  for (const [kind, format, bytes, mediaType] of cases) {
    test(`${kind} ${format} (Converse form)`, async () => {
      const res = await ask([converse(kind, format, bytes, kind === 'document' ? `file.${format}` : undefined)]);
      assert.equal(res.status, 200, res.text);
      const [part, text] = lastParts();
      assert.equal(part.type, kind);
      assert.equal(part.mediaType, mediaType);
      assert.equal(Buffer.from(part.data).equals(Buffer.from(bytes)), true);
      assert.equal(text.text, 'script:text');
      if (kind === 'document') assert.equal(part.name, `file.${format}`);
    });
  }

  test('typed form: format, mediaType and data URI all work', async () => {
    let res = await ask([{ type: 'image', format: 'png', data: b64(media.png) }]);
    assert.equal(res.status, 200, res.text);
    assert.equal(lastParts()[0].mediaType, 'image/png');
    res = await ask([{ type: 'video', mediaType: 'video/webm', data: b64(media.webm) }]);
    assert.equal(res.status, 200, res.text);
    assert.equal(lastParts()[0].mediaType, 'video/webm');
    res = await ask([{ type: 'image', data: `data:image/gif;base64,${b64(media.gif)}` }]);
    assert.equal(res.status, 200, res.text);
    assert.equal(lastParts()[0].mediaType, 'image/gif');
    res = await ask([{ type: 'document', format: 'pdf', name: 'r.pdf', data: b64(media.makePdf(['y'])) }]);
    assert.equal(res.status, 200, res.text);
    assert.equal(lastParts()[0].name, 'r.pdf');
    res = await postJson(url, { modelId: NOVA, messages: [{ role: 'user', content: [{ type: 'text', text: 'script:text' }] }] });
    assert.equal(res.status, 200);
  });
});

describe('rejected blocks', () => {
  const cases = [
    ['png bytes declared jpeg', [converse('image', 'jpeg', media.png)], 'media_type_mismatch'],
    ['gif bytes declared as a webp typed block', [{ type: 'image', format: 'webp', data: b64(media.gif) }], 'media_type_mismatch'],
    ['an unsupported image format', [converse('image', 'bmp', media.png)], 'unsupported_media_type'],
    ['image bytes that are a PDF', [converse('image', 'png', media.makePdf(['x']))], 'unsupported_media_type'],
    ['webm bytes declared mp4', [converse('video', 'mp4', media.webm)], 'media_type_mismatch'],
    ['mov bytes declared mkv', [converse('video', 'mkv', media.mov)], 'media_type_mismatch'],
    ['video bytes that are an image', [converse('video', 'mp4', media.png)], 'unsupported_media_type'],
    ['an unsupported video format', [converse('video', 'avi-x', media.mp4)], 'unsupported_media_type'],
    ['docx bytes declared pdf', [converse('document', 'pdf', media.makeDocx(['x']))], 'media_type_mismatch'],
    ['pdf bytes declared docx', [converse('document', 'docx', media.makePdf(['x']))], 'media_type_mismatch'],
    ['binary bytes declared csv', [converse('document', 'csv', media.png)], 'media_type_mismatch'],
    ['invalid UTF-8 declared txt', [converse('document', 'txt', Buffer.from([0xff, 0xfe, 0x41, 0xc3]))], 'media_type_mismatch'],
    ['an unknown document format', [converse('document', 'pages', Buffer.from('x'))], 'unsupported_media_type'],
    ['a bad base64 payload', [{ image: { format: 'png', source: { bytes: '%%%not-base64%%%' } } }], 'invalid_base64'],
  ];
  for (const [name, blocks, code] of cases) {
    test(name, async () => {
      const res = await ask(blocks);
      assert.equal(res.status, 400, res.text);
      assert.equal(res.body.error.type, 'validation_error');
      assert.equal(res.body.error.code, code);
      assert.match(res.body.error.field, /^messages\[0\]\.content\[0\]/);
      assert.match(res.body.requestId, /^req-/);
    });
  }

  test('a text-only model gets a 400 that names the image modality', async () => {
    const res = await ask([converse('image', 'png', media.png)], TEXT_ONLY);
    assert.equal(res.status, 400);
    assert.equal(res.body.error.code, 'unsupported_modality');
    assert.match(res.body.error.message, /does not accept image input/);
  });

  test('a text-only model gets a 400 that names the video modality', async () => {
    const res = await ask([converse('video', 'mp4', media.mp4)], TEXT_ONLY);
    assert.equal(res.status, 400);
    assert.match(res.body.error.message, /does not accept video input/);
  });
});

describe('documents become labelled text for a text-only model', () => {
  test('a PDF and a DOCX are read as text and reach the provider', async () => {
    const res = await ask(
      [
        converse('document', 'pdf', media.makePdf(['Quarterly revenue: 42 million', 'Signed (by) Ada']), 'report.pdf'),
        converse('document', 'docx', media.makeDocx(['Minutes of the board meeting', 'Approved unanimously']), 'minutes.docx'),
      ],
      TEXT_ONLY,
    );
    assert.equal(res.status, 200, res.text);
    const parts = lastParts();
    assert.deepEqual(parts.map((p) => p.type), ['text', 'text', 'text']);
    assert.equal(parts[0].text, 'Document 1 (report.pdf):\nQuarterly revenue: 42 million\nSigned (by) Ada');
    assert.match(parts[1].text, /^Document 2 \(minutes\.docx\):\nMinutes of the board meeting\n+Approved unanimously/);
  });

  test('CSV, HTML, plain text and XLSX are inlined too', async () => {
    const res = await ask(
      [
        converse('document', 'csv', Buffer.from('city,temp\nSydney,21\n'), 'w.csv'),
        converse('document', 'html', Buffer.from('<html><style>p{}</style><body><p>Hello &amp; welcome</p><script>x()</script></body></html>'), 'page.html'),
        converse('document', 'txt', Buffer.from('just text'), 'notes.txt'),
        converse('document', 'xlsx', media.makeXlsx([['item', 'qty'], ['apples', '3']]), 'stock.xlsx'),
      ],
      TEXT_ONLY,
    );
    assert.equal(res.status, 200, res.text);
    const texts = lastParts().map((p) => p.text);
    assert.equal(texts[0], 'Document 1 (w.csv):\ncity,temp\nSydney,21\n');
    assert.equal(texts[1], 'Document 2 (page.html):\nHello & welcome');
    assert.equal(texts[2], 'Document 3 (notes.txt):\njust text');
    assert.equal(texts[3], 'Document 4 (stock.xlsx):\n# sheet1\nitem,qty\napples,3');
  });

  test('a document that decompresses past 64 MB is a 413 naming it, not a 500 after gigabytes of memory', async () => {
    // 70 MB of zeros deflate to ~70 KB. A 1 MB PDF stream of zeros inflated past 2 GB of memory
    // and held the event loop for seconds before failing with a 500.
    const zeros = Buffer.alloc(70 * 1024 * 1024);
    const stream = zlib.deflateSync(zeros);
    const pdf = Buffer.concat([Buffer.from(`%PDF-1.4\n1 0 obj\n<< /Length ${stream.length} /Filter /FlateDecode >>\nstream\n`), stream, Buffer.from('\nendstream\nendobj\n%%EOF\n')]);
    const bombs = [
      ['pdf', pdf],
      ['docx', media.makeDocx(['x'], { 'word/media/padding.bin': zeros })],
      ['xlsx', media.makeXlsx([['x']], { 'xl/media/padding.bin': zeros })],
    ];
    for (const [format, bytes] of bombs) {
      const res = await ask([converse('document', format, bytes, `bomb.${format}`)], TEXT_ONLY);
      assert.equal(res.status, 413, `${format}: ${res.text}`);
      assert.equal(res.body.error.code, 'document_too_large', format);
      assert.match(res.body.error.message, /expands to more than 64 MB when decompressed/);
    }
  });

  test('a PDF whose stream headers all run to one distant endstream is read once, not once per header', async () => {
    // Searching for the next stream from inside the last one re-read every byte up to the
    // distant endstream for each header: n(n+1)/2 texts here, and 0.9 MB of such headers held
    // the event loop for 36 s.
    const n = 300;
    const pdf = Buffer.from(`%PDF-1.4\n${'<< /Length 1 >>\nstream\nBT (A) Tj ET\n'.repeat(n)}endstream\n%%EOF\n`, 'latin1');
    const res = await ask([converse('document', 'pdf', pdf, 'odd.pdf')], TEXT_ONLY);
    assert.equal(res.status, 200, res.text);
    const text = lastParts()[0].text;
    assert.equal(text.match(/A/g).length, n);
  });

  test('unclosed strings, arrays, tags and elements are read in linear time (they were quadratic: seconds for a few hundred KB)', async () => {
    // Each malformed run below took the old readers minutes (16,000 of them: 0.3–2.5 s, growing
    // with the square), holding the event loop; they must now come back at once. The answer is
    // what is checked; the test's own timeout is the only clock.
    const n = 400_000;
    const content = zlib.deflateSync(Buffer.from(`${'('.repeat(n)}${'['.repeat(n)}BT (kept) Tj ET`, 'latin1'));
    const pdf = Buffer.concat([Buffer.from(`%PDF-1.4\n<< /Length ${content.length} /Filter /FlateDecode >>\nstream\n`), content, Buffer.from('\nendstream\n')]);
    const res = await ask(
      [
        converse('document', 'pdf', pdf, 'parens.pdf'),
        converse('document', 'html', Buffer.from(`${'<a'.repeat(n)}<p>kept</p>${'<script>'.repeat(n)}`), 'tags.html'),
        converse('document', 'xlsx', media.makeXlsx([['kept']], { 'xl/worksheets/sheet2.xml': '<row r="1"><c>'.repeat(n) }), 'rows.xlsx'),
      ],
      TEXT_ONLY,
    );
    assert.equal(res.status, 200, res.text);
    const texts = lastParts().map((p) => p.text);
    assert.match(texts[0], /kept$/);
    assert.match(texts[2], /# sheet1\nkept/);
  });

  test('a model with document support gets the document itself', async () => {
    const res = await ask([converse('document', 'pdf', media.makePdf(['kept']), 'kept.pdf')]);
    assert.equal(res.status, 200);
    assert.equal(lastParts()[0].type, 'document');
  });
});

describe('malformed requests are 400 in this dialect\'s shape', () => {
  const ok = { modelId: NOVA, messages: [{ role: 'user', content: 'script:text' }] };
  const cases = [
    ['body is not JSON', '{"modelId":', undefined],
    ['body is an array', '[]', undefined],
    ['messages missing', { modelId: NOVA }, 'messages'],
    ['messages empty', { ...ok, messages: [] }, 'messages'],
    ['modelId missing', { messages: ok.messages }, 'modelId'],
    ['modelId not a string', { ...ok, modelId: 42 }, 'modelId'],
    ['role not allowed', { ...ok, messages: [{ role: 'tool', content: 'x' }] }, 'messages[0].role'],
    ['content missing', { ...ok, messages: [{ role: 'user' }] }, 'messages[0].content'],
    ['content a number', { ...ok, messages: [{ role: 'user', content: 5 }] }, 'messages[0].content'],
    ['content an empty array', { ...ok, messages: [{ role: 'user', content: [] }] }, 'messages[0].content'],
    ['unknown block', { ...ok, messages: [{ role: 'user', content: [{ audio: {} }] }] }, 'messages[0].content[0]'],
    ['block with two kinds', { ...ok, messages: [{ role: 'user', content: [{ text: 'a', image: {} }] }] }, 'messages[0].content[0]'],
    ['image without source', { ...ok, messages: [{ role: 'user', content: [{ image: { format: 'png' } }] }] }, 'messages[0].content[0].image.source'],
    ['temperature above 2', { ...ok, temperature: 2.5 }, 'temperature'],
    ['temperature not a number', { ...ok, temperature: 'hot' }, 'temperature'],
    ['maxTokens 0', { ...ok, maxTokens: 0 }, 'maxTokens'],
    ['maxTokens above 8192', { ...ok, maxTokens: 8193 }, 'maxTokens'],
    ['maxTokens fractional', { ...ok, maxTokens: 1.5 }, 'maxTokens'],
    ['topP above 1', { ...ok, topP: 1.5 }, 'topP'],
    ['five stop sequences', { ...ok, stopSequences: ['a', 'b', 'c', 'd', 'e'] }, 'stopSequences'],
    ['responseFormat type text', { ...ok, responseFormat: { type: 'text' } }, 'responseFormat.type'],
    ['responseFormat invalid schema', { ...ok, responseFormat: { type: 'json', jsonSchema: { type: 'nonsense' } } }, 'responseFormat.jsonSchema'],
    ['toolSpec without name', { ...ok, toolConfig: { tools: [{ toolSpec: { description: 'x' } }] } }, 'toolConfig.tools[0].toolSpec.name'],
    ['tool name with spaces', { ...ok, toolConfig: { tools: [{ toolSpec: { name: 'get weather' } }] } }, 'toolConfig.tools[0].toolSpec.name'],
    ['duplicate tool names', { ...ok, toolConfig: { tools: [{ toolSpec: { name: 'a' } }, { toolSpec: { name: 'a' } }] } }, 'toolConfig.tools[1].toolSpec.name'],
    ['autoExecute without allowedTools', { ...ok, autoExecute: true }, 'allowedTools'],
    ['autoExecute with empty allowedTools', { ...ok, autoExecute: true, allowedTools: [] }, 'allowedTools'],
    ['allowedTools not an array', { ...ok, allowedTools: 'echo' }, 'allowedTools'],
    ['unknown top-level field', { ...ok, max_tokens: 5 }, 'max_tokens'],
    ['toolResult without an earlier toolUse', { ...ok, messages: [{ role: 'user', content: [{ toolResult: { toolUseId: 'nope', content: [{ text: 'x' }] } }] }] }, 'messages'],
    ['toolUse in a user message', { ...ok, messages: [{ role: 'user', content: [{ toolUse: { toolUseId: 't', name: 'a', input: {} } }] }] }, 'messages[0].content[0]'],
    ['image in a system message', { ...ok, messages: [{ role: 'system', content: [converse('image', 'png', media.png)] }, ...ok.messages] }, 'messages[0].content[0]'],
    ['only system messages', { ...ok, messages: [{ role: 'system', content: 'x' }] }, 'messages'],
    ['stream not a boolean', { ...ok, stream: 'yes' }, 'stream'],
  ];
  for (const [name, body, field] of cases) {
    test(name, async () => {
      const res = await postJson(url, body);
      assert.equal(res.status, 400, res.text);
      assert.equal(typeof res.body.error.type, 'string');
      assert.equal(typeof res.body.error.message, 'string');
      assert.match(res.body.requestId, /^req-/);
      assert.equal(res.body.error.field, field);
    });
  }

  test('the same errors come back from the stream route before any event', async () => {
    const res = await postJson(`${url}/stream`, { ...ok, maxTokens: 0 });
    assert.equal(res.status, 400);
    assert.equal(res.body.error.field, 'maxTokens');
  });

  test('an unknown model is 404 naming modelId', async () => {
    const res = await postJson(url, { ...ok, modelId: 'no-such-model' });
    assert.equal(res.status, 404);
    assert.equal(res.body.error.type, 'not_found');
    assert.equal(res.body.error.field, 'modelId');
  });
});
