/**
 * An on-disk outbox: messages for the oracle and billing (job reports, heartbeats, usage batches) are written
 * to disk before anything tries to send them, and only forgotten once the receiver acknowledged them (2xx: a
 * message it already has is acknowledged too). A restart resends what was pending; receivers are idempotent, so a
 * message sent twice counts once.
 *
 * A conflict (409: the receiver holds other content under the message's key) is never taken as delivered (D42):
 * the item stays, is logged as an error and counted (`conflicts`, a metric), and the items behind it are still
 * sent. A 409 whose code ends in `_CLOSED` (the period or epoch no longer takes messages) can never be delivered:
 * dropped with an error, like a 4xx rejection.
 *
 * The file is JSON lines: {"put": item} or {"ack": id}. It is compacted (rewritten with the pending items
 * only, atomically by rename) when acknowledged lines outnumber pending ones.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

import type { HeartbeatBody, JobReportBody, UsageBatchBody } from "../offchain/common/protocol";

/** What the outbox carries: each receiver's path with the wire message it takes (offchain/common/protocol). */
export type OutboxMessage =
  | { target: "oracle"; path: "/reports"; body: JobReportBody }
  | { target: "oracle"; path: "/heartbeats"; body: HeartbeatBody }
  | { target: "billing"; path: "/usage"; body: UsageBatchBody };

/**
 * An item: `target` is the receiver, resolved to its URL when sent (so a restart with a new URL still
 * delivers); `path` is under the receiver's URL.
 */
export type OutboxItem = OutboxMessage & {
  id: string;
  /** Items with the same key replace each other (a newer job report supersedes an unsent older one). */
  key?: string;
};

export type SendOutcome = "sent" | "retry" | "rejected" | "conflict";
export type Sender = (item: OutboxItem) => Promise<SendOutcome>;

export interface OutboxLogger {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export class Outbox {
  private readonly pending = new Map<string, OutboxItem>();
  private acked = 0;
  private flushing: Promise<number> | null = null;
  /** The pass queued behind the running flush for items put after it began. */
  private nextFlush: Promise<number> | null = null;
  private putSinceFlush = false;
  /** Ids of pending items their receiver answered with a conflict (each logged once per process). */
  private readonly conflicted = new Set<string>();

  constructor(
    private readonly file: string,
    private readonly log: OutboxLogger,
  ) {
    mkdirSync(dirname(file), { recursive: true });
    if (existsSync(file)) this.load();
  }

  get size(): number {
    return this.pending.size;
  }

  /** Pending items whose last answer was a conflict: they need a person (see the error logs). */
  get conflicts(): number {
    return this.conflicted.size;
  }

  items(): OutboxItem[] {
    return [...this.pending.values()];
  }

  /** Persists an item (replacing a pending one with the same key). */
  put(item: OutboxItem): void {
    if (item.key) {
      for (const other of this.pending.values()) if (other.key === item.key && other.id !== item.id) this.ack(other.id);
    }
    appendFileSync(this.file, JSON.stringify({ put: item }) + "\n");
    this.pending.set(item.id, item);
    this.putSinceFlush = true;
  }

  ack(id: string): void {
    if (!this.pending.delete(id)) return;
    this.conflicted.delete(id);
    appendFileSync(this.file, JSON.stringify({ ack: id }) + "\n");
    this.acked += 1;
    if (this.acked > 100 && this.acked > this.pending.size) this.compact();
  }

  /**
   * Tries to send every pending item once, oldest first. Returns how many were delivered. Flushes never
   * overlap (two would send the same items twice): a call while one runs joins it, and when items were put
   * after the running flush took its list, the call also waits for one more pass, so what was pending when
   * it was called has been tried by the time it returns.
   */
  flush(send: Sender): Promise<number> {
    if (this.flushing === null) {
      this.putSinceFlush = false;
      this.flushing = this.flushOnce(send).finally(() => (this.flushing = null));
      return this.flushing;
    }
    if (!this.putSinceFlush) return this.flushing;
    // A failed flush rejected its own callers; the queued pass runs regardless.
    this.nextFlush ??= this.flushing
      .catch(() => 0)
      .then(async (delivered) => {
        this.nextFlush = null;
        return delivered + (await this.flush(send));
      });
    return this.nextFlush;
  }

  private async flushOnce(send: Sender): Promise<number> {
    let delivered = 0;
    for (const item of this.items()) {
      const outcome = await send(item);
      if (outcome === "sent") {
        this.ack(item.id);
        delivered += 1;
      } else if (outcome === "conflict") {
        // Not delivered: the receiver holds something else under this item's key. Kept, reported, not blocking.
        if (!this.conflicted.has(item.id) && this.pending.has(item.id)) {
          this.conflicted.add(item.id);
          this.log.error(
            { id: item.id, target: item.target, path: item.path },
            "outbox item conflicts with what its receiver holds; kept undelivered (see docs/errors.md)",
          );
        }
      } else if (outcome === "rejected") {
        // The receiver says the message itself is wrong: keeping it would block nothing but retry forever.
        this.log.error(
          { id: item.id, target: item.target, path: item.path },
          "outbox item rejected by its receiver; dropped",
        );
        this.ack(item.id);
      } else {
        break; // the receiver is unreachable: keep order, try again later
      }
    }
    return delivered;
  }

  private load(): void {
    const lines = readFileSync(this.file, "utf8").split("\n");
    for (const [i, line] of lines.entries()) {
      if (line.trim() === "") continue;
      try {
        const entry = JSON.parse(line) as { put?: OutboxItem; ack?: string };
        if (entry.put) this.pending.set(entry.put.id, entry.put);
        else if (entry.ack) this.pending.delete(entry.ack);
      } catch {
        // A torn last line (crash mid-write) is expected; anything else is reported.
        if (i < lines.length - 2) this.log.warn({ file: this.file, line: i + 1 }, "outbox line unreadable; skipped");
      }
    }
    this.compact();
  }

  private compact(): void {
    const tmp = `${this.file}.tmp`;
    writeFileSync(
      tmp,
      this.items()
        .map((item) => JSON.stringify({ put: item }) + "\n")
        .join(""),
    );
    renameSync(tmp, this.file);
    this.acked = 0;
  }
}

/**
 * POSTs a body as JSON; classifies the outcome for the outbox: 2xx sent; 409 a conflict, unless its code says the
 * period or epoch is closed (rejected); other 4xx but 408 and 429 rejected; anything else (5xx, 503 from a
 * stale receiver, no answer) retried.
 */
export async function postJson(url: string, body: unknown, timeoutMs = 5_000): Promise<SendOutcome> {
  try {
    const response = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (response.ok) return "sent";
    if (response.status === 409) {
      const code = await response
        .json()
        .then((reply) => (reply as { code?: unknown } | null)?.code)
        .catch(() => undefined);
      return typeof code === "string" && code.endsWith("_CLOSED") ? "rejected" : "conflict";
    }
    if (response.status >= 400 && response.status < 500 && response.status !== 408 && response.status !== 429) {
      return "rejected";
    }
    return "retry";
  } catch {
    return "retry";
  }
}

/**
 * Sends each item to its receiver's URL, looked up when sent; an item whose receiver has no URL configured
 * stays pending ("retry").
 */
export function httpSender(receivers: Partial<Record<OutboxItem["target"], string>>): Sender {
  return async (item) => {
    const base = receivers[item.target];
    return base ? postJson(`${base.replace(/\/$/, "")}${item.path}`, item.body) : "retry";
  };
}
