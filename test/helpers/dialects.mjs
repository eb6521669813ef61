// One chat call per client-facing dialect, normalised for tests that must hold on every dialect
// (limits, keys, usage, metrics): status, Retry-After, the error's type and message, and usage.
import { postJson, readSse } from './server.mjs';

function withUsage(res, usage) {
  return { status: res.status, headers: res.headers, body: res.body, usage };
}

export const dialectCalls = [
  {
    name: 'openai',
    async send(url, { key, model, text, maxTokens = 2 }) {
      const res = await postJson(`${url}/v1/chat/completions`, { model, messages: [{ role: 'user', content: text }], max_tokens: maxTokens }, { authorization: `Bearer ${key}` });
      return withUsage(res, res.status === 200 ? { input: res.body.usage.prompt_tokens, output: res.body.usage.completion_tokens } : undefined);
    },
    error: (body) => ({ type: body.error.type, message: body.error.message }),
  },
  {
    name: 'openai-stream',
    async send(url, { key, model, text, maxTokens = 2 }) {
      const res = await fetch(`${url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
        body: JSON.stringify({ model, messages: [{ role: 'user', content: text }], max_tokens: maxTokens, stream: true, stream_options: { include_usage: true } }),
      });
      if (res.status !== 200) return withUsage({ status: res.status, headers: res.headers, body: await res.json() });
      const { events } = await readSse(res);
      const last = events.map((e) => (e.data === '[DONE]' ? undefined : JSON.parse(e.data))).filter((c) => c?.usage).pop();
      return withUsage({ status: 200, headers: res.headers, body: last }, { input: last.usage.prompt_tokens, output: last.usage.completion_tokens });
    },
    error: (body) => ({ type: body.error.type, message: body.error.message }),
  },
  {
    name: 'org',
    async send(url, { key, model, text, maxTokens = 2, organisation }) {
      const res = await postJson(`${url}/api/v3/organizations/${organisation}/ai/chat`, { messages: [{ role: 'user', content: text }], modelId: model, maxTokens }, { authorization: `Bearer ${key}` });
      return withUsage(res, res.status === 200 ? { input: res.body.usage.inputTokens, output: res.body.usage.outputTokens } : undefined);
    },
    error: (body) => ({ type: body.error.type, message: body.error.message }),
  },
  {
    name: 'org-stream',
    async send(url, { key, model, text, maxTokens = 2, organisation }) {
      const res = await fetch(`${url}/api/v3/organizations/${organisation}/ai/chat/stream`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
        body: JSON.stringify({ messages: [{ role: 'user', content: text }], modelId: model, maxTokens }),
      });
      if (res.status !== 200) return withUsage({ status: res.status, headers: res.headers, body: await res.json() });
      const { events } = await readSse(res);
      const done = JSON.parse(events.find((e) => e.event === 'done').data);
      return withUsage({ status: 200, headers: res.headers, body: done }, { input: done.usage.inputTokens, output: done.usage.outputTokens });
    },
    error: (body) => ({ type: body.error.type, message: body.error.message }),
  },
  {
    name: 'messages',
    async send(url, { key, model, text, maxTokens = 2 }) {
      const res = await postJson(`${url}/v1/messages`, { model, max_tokens: maxTokens, messages: [{ role: 'user', content: text }] }, { 'x-api-key': key });
      return withUsage(res, res.status === 200 ? { input: res.body.usage.input_tokens, output: res.body.usage.output_tokens } : undefined);
    },
    error: (body) => ({ type: body.error.type, message: body.error.message }),
  },
  {
    name: 'eden',
    async send(url, { key, model, text, maxTokens = 2 }) {
      const res = await postJson(`${url}/v2/text/chat`, { providers: model, text, max_tokens: maxTokens }, { authorization: `Bearer ${key}` });
      const result = res.status === 200 ? res.body[model] : undefined;
      return withUsage(res, result ? { input: result.usage.prompt_tokens, output: result.usage.completion_tokens } : undefined);
    },
    error: (body) => ({ type: body.error.type, message: typeof body.error.message === 'string' ? body.error.message : JSON.stringify(body.error.message) }),
  },
];
