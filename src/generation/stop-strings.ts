/**
 * Stop strings matched on decoded text, across token boundaries. Text that could still be the
 * start of a stop string is held back from the stream until it is known not to be one, so a
 * streamed answer never shows part of a stop string. The stop string itself is not emitted.
 */
export class StopStringMatcher {
  private readonly stops: string[];
  private text = '';
  private emitted = 0;
  stopped = false;

  constructor(stops: readonly string[]) {
    this.stops = stops.filter((s) => s.length > 0);
  }

  /** Feed the next decoded text delta; returns the part that is safe to show now. */
  push(delta: string): string {
    if (this.stopped) return '';
    this.text += delta;
    let cut = -1;
    for (const s of this.stops) {
      const at = this.text.indexOf(s, Math.max(0, this.emitted - s.length + 1));
      if (at >= 0 && (cut < 0 || at < cut)) cut = at;
    }
    if (cut >= 0) {
      this.stopped = true;
      return this.release(cut);
    }
    return this.release(this.text.length - this.heldBack());
  }

  /** At the end of generation: whatever was held back is not a stop string after all. */
  flush(): string {
    return this.stopped ? '' : this.release(this.text.length);
  }

  /** The visible text so far (stop string excluded). */
  get output(): string {
    return this.text.slice(0, this.emitted);
  }

  /** Length of the longest suffix of the text that is a proper prefix of some stop string. */
  private heldBack(): number {
    let hold = 0;
    for (const s of this.stops) {
      for (let n = Math.min(s.length - 1, this.text.length); n > hold; n--) {
        if (this.text.endsWith(s.slice(0, n))) {
          hold = n;
          break;
        }
      }
    }
    return hold;
  }

  private release(upTo: number): string {
    if (upTo <= this.emitted) return '';
    const out = this.text.slice(this.emitted, upTo);
    this.emitted = upTo;
    return out;
  }
}
