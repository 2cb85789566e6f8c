/**
 * Relay: every accepted report and heartbeat is queued (in the same database transaction that stores it) for
 * each peer instance, and sent in order; a peer that is unreachable keeps the queue for the next pass.
 */
import type { OracleStore } from "./store";

export async function flushRelay(store: OracleStore): Promise<void> {
  for (const item of store.relayItems()) {
    try {
      const response = await fetch(`${item.peer.replace(/\/$/, "")}${item.path}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: item.body,
        signal: AbortSignal.timeout(5_000),
      });
      // Delivered, or refused for a reason resending cannot fix (the peer logs it): either way done.
      if (response.status < 500) store.dropRelay(item.id);
    } catch {
      return; // unreachable: keep the queue and its order, retry next pass
    }
  }
}
