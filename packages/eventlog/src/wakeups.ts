/**
 * A worker's alarm clock: `sleep` ends at its timeout or at the first `wake`, whichever is
 * first; a `wake` while awake is kept, so the next sleep returns at once and no notification
 * that arrived during a read is lost.
 */
export class Wakeup {
  private woken = false;
  private stopped = false;
  private ring: () => void = () => {};

  /** Ends the current sleep and makes every later one return at once. */
  stop(): void {
    this.stopped = true;
    this.ring();
  }

  wake(): void {
    this.woken = true;
    this.ring();
  }

  sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      if (this.woken || this.stopped) {
        this.woken = false;
        resolve();
        return;
      }
      const timer = setTimeout(done, ms);
      const self = this;
      function done() {
        clearTimeout(timer);
        self.ring = () => {};
        self.woken = false;
        resolve();
      }
      this.ring = done;
    });
  }
}

/**
 * Readers stop below the oldest running transaction cluster-wide, so any commit may be what was
 * hiding events already committed in other partitions, whose own notifications found nothing
 * readable (those workers are still pending). Waking them for each commit would cost a query per
 * commit under load; once per `delayMs` is enough.
 */
export class ThrottledWakeAll {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly delayMs: number,
    private readonly wakePending: () => void,
  ) {}

  poke(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.wakePending();
    }, this.delayMs);
  }

  cancel(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
