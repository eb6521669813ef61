// Splits a model's output into reasoning and answer: Qwen3/DeepSeek-style models open their
// response with `<think>…</think>`. Only a thought at the very start of the response counts, so
// an answer that merely mentions the tag is left alone. Partial tags are held back while
// streaming; whitespace around the thought is dropped.

export interface SplitPiece {
  channel: 'reasoning' | 'text';
  text: string;
}

type State = 'start' | 'reasoning' | 'text';

export class ThinkSplitter {
  private state: State;
  private buffer = '';
  /** Strip leading whitespace of the current channel until its first visible character. */
  private trimLeading = true;

  constructor(
    private readonly open: string,
    private readonly close: string,
    startInside = false,
  ) {
    this.state = startInside ? 'reasoning' : 'start';
  }

  get inReasoning(): boolean {
    return this.state === 'reasoning';
  }

  push(text: string): SplitPiece[] {
    this.buffer += text;
    const pieces: SplitPiece[] = [];
    for (;;) {
      if (this.state === 'start') {
        const trimmed = this.buffer.trimStart();
        if (trimmed.startsWith(this.open)) {
          this.buffer = trimmed.slice(this.open.length);
          this.enter('reasoning');
          continue;
        }
        if (this.open.startsWith(trimmed)) return pieces; // maybe a tag still arriving
        this.enter('text');
        continue;
      }
      if (this.state === 'reasoning') {
        const end = this.buffer.indexOf(this.close);
        if (end >= 0) {
          this.add(pieces, 'reasoning', this.buffer.slice(0, end));
          this.buffer = this.buffer.slice(end + this.close.length);
          this.enter('text');
          continue;
        }
        const hold = partialSuffix(this.buffer, this.close);
        this.add(pieces, 'reasoning', this.buffer.slice(0, this.buffer.length - hold));
        this.buffer = this.buffer.slice(this.buffer.length - hold);
        return pieces;
      }
      this.add(pieces, 'text', this.buffer);
      this.buffer = '';
      return pieces;
    }
  }

  /** Ends the thought now (reasoning budget spent); what follows is answer text. */
  closeThought(): SplitPiece[] {
    const pieces: SplitPiece[] = [];
    if (this.state !== 'reasoning') return pieces;
    this.add(pieces, 'reasoning', this.buffer);
    this.buffer = '';
    this.enter('text');
    return pieces;
  }

  flush(): SplitPiece[] {
    const pieces: SplitPiece[] = [];
    this.add(pieces, this.state === 'reasoning' ? 'reasoning' : 'text', this.buffer);
    this.buffer = '';
    return pieces;
  }

  private enter(state: State): void {
    this.state = state;
    this.trimLeading = true;
  }

  private add(pieces: SplitPiece[], channel: SplitPiece['channel'], text: string): void {
    if (this.trimLeading) {
      text = text.trimStart();
      if (text) this.trimLeading = false;
    }
    if (text) pieces.push({ channel, text });
  }
}

function partialSuffix(text: string, tag: string): number {
  for (let n = Math.min(tag.length - 1, text.length); n > 0; n--) if (text.endsWith(tag.slice(0, n))) return n;
  return 0;
}
