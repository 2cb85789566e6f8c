/** What the gateway's job queue (queue.ts) needs of a host's link, and of a job. */
import type { Region } from "../../../offchain/common/protocol/regions";
import type { SiteRef } from "../../placement";

/** What the queue needs of a host's link. */
export interface Slot {
  readonly host: string;
  /** Jobs running on the link now (the queue counts them). */
  inflight: number;
  /** Jobs the host runs at once. */
  readonly capacity: number;
  /** Where the host runs, from its signed registration (D68); undefined: undeclared. */
  readonly region?: Region;
  /** The last ping round trip to the host (ms), measured by the gateway (D69: dynamic sites' region order). */
  readonly rttMs?: number;
  /** True once the link is gone for good (the queue then forgets it). */
  readonly closed?: boolean;
  /** Jobs failed in a row by this host (the queue's breaker), and until when it takes none. */
  failures?: number;
  pausedUntil?: number;
}

export interface QueuedJob<L extends Slot> {
  /** A host this job must not go to (the one a retry comes from). */
  readonly avoid?: string;
  /** The site the job serves, with its placement (D69); absent: any host. Never bypassed. */
  readonly site?: SiteRef;
  /** The deciding gateway's region: a dynamic site's first region. */
  readonly origin?: Region;
  /**
   * Starts the job on `link` (already counted in flight) at `startedAt` (the queue's clock); the job calls
   * `queue.done(link, startedAt)` once it ends (its time on the host counts in the region's p99).
   */
  run(link: L, startedAt: number): void;
  /** The job waited too long (or was cancelled): it was never started. */
  expire(error: Error): void;
  /** True once nobody waits for the job any more (its client left): it is dropped, never started. */
  cancelled?(): boolean;
}
