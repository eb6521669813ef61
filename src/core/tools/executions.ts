// Async tool executions: recorded as pending, run in the background (not tied to the request
// that started them), and stored with their final status so clients can poll.

import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { ToolExecutionStore } from '../../store/tool-executions.js';
import type { ArtifactStore } from '../artifacts/store.js';
import { presentOutput } from './present.js';
import type { ExecutableTool } from './types.js';

export interface StartedExecution {
  executionId: string;
  status: 'pending';
}

export class ExecutionRunner {
  private readonly running = new Set<Promise<void>>();
  private readonly controller = new AbortController();

  constructor(
    private readonly store: ToolExecutionStore,
    private readonly artifacts: ArtifactStore,
    private readonly logger: Logger,
  ) {}

  async start(tool: ExecutableTool, input: Record<string, unknown>, call: { toolUseId: string; organisation: string; requestId: string }): Promise<StartedExecution> {
    const executionId = `exec_${randomBytes(12).toString('hex')}`;
    const now = Date.now();
    await this.store.createExecution({
      id: executionId,
      organisation: call.organisation,
      requestId: call.requestId,
      toolUseId: call.toolUseId,
      toolName: tool.name,
      input,
      status: 'pending',
      createdAt: now,
      updatedAt: now,
    });
    const run = this.run(executionId, tool, input, call).finally(() => this.running.delete(run));
    this.running.add(run);
    return { executionId, status: 'pending' };
  }

  private async run(id: string, tool: ExecutableTool, input: Record<string, unknown>, call: { organisation: string; requestId: string }): Promise<void> {
    // Let the chat response go out first: the client sees `pending`, then polls.
    await new Promise((resolve) => setImmediate(resolve));
    try {
      await this.store.updateExecution(id, { status: 'running' });
      const output = await tool.execute(input, { organisation: call.organisation, requestId: call.requestId, signal: this.controller.signal });
      const presented = await presentOutput(output, this.artifacts, call.organisation);
      if (presented.isError) await this.store.updateExecution(id, { status: 'failed', result: { ...presented.view }, error: presented.modelText });
      else await this.store.updateExecution(id, { status: 'complete', result: { ...presented.view } });
    } catch (err) {
      this.logger.warn({ err, executionId: id, tool: tool.name }, 'async tool execution failed');
      await this.store
        .updateExecution(id, { status: 'failed', error: (err as Error).message ?? String(err) })
        .catch((e: unknown) => this.logger.error({ err: e, executionId: id }, 'could not record a failed execution'));
    }
  }

  /** Stops background work (server shutdown) and waits for it to settle. */
  async close(): Promise<void> {
    this.controller.abort();
    await Promise.allSettled([...this.running]);
  }
}
