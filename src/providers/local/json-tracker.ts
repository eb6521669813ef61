// Tells where a streamed JSON value ends, so grammar-constrained generation stops right after
// the value instead of running through the trailing whitespace the grammar still allows.

export class JsonCompletionTracker {
  private depth = 0;
  private started = false;
  private scalar = false;
  private stringOpen = false;
  private escaped = false;
  private done = false;

  get complete(): boolean {
    return this.done;
  }

  /** The text so far ends inside a string. */
  get inString(): boolean {
    return this.stringOpen;
  }

  /** Index in `text` just past the end of the top-level value, or -1 if it has not ended yet. */
  push(text: string): number {
    if (this.done) return 0;
    for (let i = 0; i < text.length; i++) {
      const ch = text[i]!;
      if (!this.started) {
        if (/\s/.test(ch)) continue;
        this.started = true;
        if (ch === '{' || ch === '[') this.depth = 1;
        else if (ch === '"') this.stringOpen = true;
        else this.scalar = true;
        continue;
      }
      if (this.stringOpen) {
        if (this.escaped) this.escaped = false;
        else if (ch === '\\') this.escaped = true;
        else if (ch === '"') {
          this.stringOpen = false;
          if (this.depth === 0) return this.end(i + 1);
        }
        continue;
      }
      if (this.scalar) {
        // A top-level number or literal ends where the grammar's trailing whitespace begins.
        if (/[\s,\]}]/.test(ch)) return this.end(i);
        continue;
      }
      if (ch === '"') this.stringOpen = true;
      else if (ch === '{' || ch === '[') this.depth++;
      else if (ch === '}' || ch === ']') {
        this.depth--;
        if (this.depth === 0) return this.end(i + 1);
      }
    }
    return -1;
  }

  private end(index: number): number {
    this.done = true;
    return index;
  }
}
