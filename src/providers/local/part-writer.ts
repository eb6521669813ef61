// Builds the canonical stream parts of one response: opens and closes the text and reasoning
// blocks around their deltas, and frames tool calls.

import { randomBytes } from 'node:crypto';
import type { StreamPart } from '../../core/types.js';

export function newToolCallId(): string {
  return `call_${randomBytes(12).toString('base64url')}`;
}

export class PartWriter {
  private open?: { kind: 'text' | 'reasoning'; id: string };
  private blocks = 0;

  text(delta: string): StreamPart[] {
    return this.delta('text', delta);
  }

  reasoning(delta: string): StreamPart[] {
    return this.delta('reasoning', delta);
  }

  /** Closes the open text or reasoning block, if any. */
  close(): StreamPart[] {
    const open = this.open;
    if (!open) return [];
    this.open = undefined;
    return [open.kind === 'text' ? { type: 'text-end', id: open.id } : { type: 'reasoning-end', id: open.id }];
  }

  toolStart(id: string, toolName: string): StreamPart[] {
    return [...this.close(), { type: 'tool-input-start', id, toolName }];
  }

  private delta(kind: 'text' | 'reasoning', delta: string): StreamPart[] {
    if (!delta) return [];
    const parts: StreamPart[] = [];
    if (this.open?.kind !== kind) {
      parts.push(...this.close());
      const id = `${kind}_${this.blocks++}`;
      this.open = { kind, id };
      parts.push(kind === 'text' ? { type: 'text-start', id } : { type: 'reasoning-start', id });
    }
    const id = this.open!.id;
    parts.push(kind === 'text' ? { type: 'text-delta', id, delta } : { type: 'reasoning-delta', id, delta });
    return parts;
  }
}
