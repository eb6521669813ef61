// Canonical messages → OpenAI messages (for reading a session back).

import type { Message } from '../../core/types.js';

export function renderMessages(messages: Message[]): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  for (const m of messages) {
    const text = m.content.map((p) => (p.type === 'text' ? p.text : '')).join('');
    if (m.role === 'tool') {
      for (const p of m.content) {
        if (p.type !== 'tool-result') continue;
        out.push({ role: 'tool', tool_call_id: p.toolCallId, content: p.content.map((c) => (c.type === 'text' ? c.text : '')).join('') });
      }
      continue;
    }
    const message: Record<string, unknown> = { role: m.role, content: text };
    if (m.name) message.name = m.name;
    const calls = m.content.flatMap((p) => (p.type === 'tool-call' ? [{ id: p.id, type: 'function', function: { name: p.name, arguments: p.arguments } }] : []));
    if (calls.length) {
      message.tool_calls = calls;
      if (!text) message.content = null;
    }
    const images = m.content.filter((p) => p.type === 'image');
    if (images.length) {
      message.content = [
        ...(text ? [{ type: 'text', text }] : []),
        ...images.map((p) => ({
          type: 'image_url',
          image_url: { url: p.type === 'image' && p.data ? `data:${p.mediaType};base64,${Buffer.from(p.data).toString('base64')}` : p.type === 'image' ? p.url : '' },
        })),
      ];
    }
    out.push(message);
  }
  return out;
}
