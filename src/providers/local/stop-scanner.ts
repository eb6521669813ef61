// Finds stop strings in streamed text. Text that could be the start of a stop string is held
// back until it is known not to be one, so a stop string is never streamed out, even in part.

export interface ScanResult {
  /** Text that is safe to emit now. */
  emit: string;
  /** The stop string found; the text from it on is dropped. */
  match?: string;
}

export class StopScanner {
  private buffer = '';
  private readonly patterns: string[];

  constructor(patterns: Iterable<string>) {
    this.patterns = [...new Set([...patterns].filter((p) => p.length > 0))];
  }

  push(text: string): ScanResult {
    this.buffer += text;
    let matchIndex = -1;
    let match: string | undefined;
    for (const pattern of this.patterns) {
      const index = this.buffer.indexOf(pattern);
      if (index >= 0 && (matchIndex < 0 || index < matchIndex)) {
        matchIndex = index;
        match = pattern;
      }
    }
    if (match !== undefined) {
      const emit = this.buffer.slice(0, matchIndex);
      this.buffer = '';
      return { emit, match };
    }
    const hold = this.partialSuffixLength();
    const emit = this.buffer.slice(0, this.buffer.length - hold);
    this.buffer = this.buffer.slice(this.buffer.length - hold);
    return { emit };
  }

  /** The held-back text, at the end of generation. */
  flush(): string {
    const rest = this.buffer;
    this.buffer = '';
    return rest;
  }

  /** Length of the longest suffix of the buffer that is a proper prefix of some pattern. */
  private partialSuffixLength(): number {
    let longest = 0;
    for (const pattern of this.patterns) {
      for (let n = Math.min(pattern.length - 1, this.buffer.length); n > longest; n--) {
        if (this.buffer.endsWith(pattern.slice(0, n))) {
          longest = n;
          break;
        }
      }
    }
    return longest;
  }
}
