// An on/off setting for a fast path that tests and A/B timings turn off around a call.

export class Toggle {
  constructor(private on: boolean) {}

  get enabled(): boolean {
    return this.on;
  }

  /** Runs fn with the setting off, then restores it. */
  without<T>(fn: () => T): T {
    const previous = this.on;
    this.on = false;
    try {
      return fn();
    } finally {
      this.on = previous;
    }
  }
}
