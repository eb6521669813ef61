// The one mapping between this dialect's tools and the canonical ones: toolSpec → ToolDefinition,
// and canonical tool calls (+ results of the ones the gateway ran) → toolUse objects.

import type { CollectedToolCall, CollectedToolResult } from '../../core/stream.js';
import type { ToolDefinition } from '../../core/types.js';
import type { OrgToolSpec } from './schema.js';

export interface OrgToolUse {
  toolUseId: string;
  name: string;
  input: Record<string, unknown>;
  /** Async auto-executed tools: the id to poll. */
  executionId?: string;
  /** Auto-executed tools: pending | running | complete | failed. */
  status?: string;
  /** Sync auto-executed tools: the result. */
  result?: unknown;
  images?: string[];
  s3Urls?: string[];
}

export function toolDefinitionFromSpec(spec: OrgToolSpec): ToolDefinition {
  return { name: spec.name, description: spec.description, parameters: spec.inputSchema?.json ?? { type: 'object', properties: {} } };
}

/** Arguments text → the input object (a model's malformed JSON is passed on as `{_raw}`, never dropped). */
export function inputOf(argumentsText: string): Record<string, unknown> {
  if (argumentsText.trim() === '') return {};
  try {
    const value = JSON.parse(argumentsText) as unknown;
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // fall through
  }
  return { _raw: argumentsText };
}

export function toolUseOf(call: Pick<CollectedToolCall, 'id' | 'name' | 'arguments'>, result?: Pick<CollectedToolResult, 'result' | 'extra'>): OrgToolUse {
  const use: OrgToolUse = { toolUseId: call.id, name: call.name, input: inputOf(call.arguments) };
  if (!result) return use;
  const extra = result.extra ?? {};
  if (typeof extra.executionId === 'string') use.executionId = extra.executionId;
  if (typeof extra.status === 'string') use.status = extra.status;
  if (result.result !== undefined) use.result = result.result;
  if (Array.isArray(extra.images)) use.images = extra.images as string[];
  if (Array.isArray(extra.s3Urls)) use.s3Urls = extra.s3Urls as string[];
  return use;
}

/** Seed 001: one object for a single tool request, an array for several. */
export function toolUseField(uses: OrgToolUse[]): OrgToolUse | OrgToolUse[] | undefined {
  if (uses.length === 0) return undefined;
  return uses.length === 1 ? uses[0] : uses;
}
