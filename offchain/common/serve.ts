/** Shared by the services' `serve` commands: start, then run until SIGINT or SIGTERM. */

export interface Runnable {
  app: { log: { info(obj: object, msg: string): void } };
  start(): Promise<string>;
  close(): Promise<void>;
}

/**
 * Builds and starts the service, then keeps it up until SIGINT/SIGTERM and closes it cleanly (exit code 0). A
 * service that cannot start prints one line and returns 1.
 */
export async function runUntilSignal(name: string, create: () => Promise<Runnable>): Promise<number> {
  let service: Runnable;
  try {
    service = await create();
    await service.start();
  } catch (error) {
    process.stderr.write(`${name}: cannot start: ${(error as Error).message.split("\n")[0]}\n`);
    return 1;
  }
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      service.app.log.info({ signal }, "shutting down");
      service.close().then(resolve, resolve);
    };
    process.once("SIGINT", () => stop("SIGINT"));
    process.once("SIGTERM", () => stop("SIGTERM"));
  });
  return 0;
}
