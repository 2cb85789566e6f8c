/** A service's background work: one pass at a time, every interval, retried after a failure, stopped cleanly. */
export class WorkLoop {
  private loop?: Promise<void>;
  private stopped = false;
  private wake?: () => void;

  constructor(
    private readonly work: () => Promise<void>,
    private readonly intervalMs: number,
    private readonly onError: (error: Error) => void,
  ) {}

  start(): void {
    this.loop ??= this.run();
  }

  /** Lets the pass under way finish, then returns. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.loop;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      try {
        await this.work();
      } catch (error) {
        this.onError(error as Error);
      }
      if (this.stopped) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.intervalMs);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }
}
