/**
 * Gateways' admission over time, as billing saw it (D42, F3): a usage record is judged by whether its gateway was
 * admitted at the record's own time, so usage earned while admitted is billed even when it arrives after the
 * gateway's eviction.
 *
 * The chain view says who is admitted now. Each time it changes (and at start), every gateway's admission is
 * compared with the intervals kept in SQLite: a gateway newly admitted opens an interval at that moment, one no
 * longer admitted closes its interval at that moment. Times are billing's clock when it saw the change (the
 * confirmed view lags the chain by its confirmations), the same clock records are checked against. A gateway first
 * seen admitted by a database without any history for it is taken as admitted since forever (its earlier
 * admission was not observed). How far back a record may go is bounded elsewhere: its period must still be open.
 */
import type Database from "better-sqlite3";

import type { ChainView } from "../common/chainView";
import { StakeType } from "../common/stakeMap";

interface Interval {
  since: number;
  /** null while admitted */
  until: number | null;
}

export class AdmissionHistory {
  /** gateway (lowercase) -> its intervals, oldest first */
  private readonly intervals = new Map<string, Interval[]>();

  constructor(
    private readonly db: Database.Database,
    private readonly now: () => number,
  ) {
    db.exec(`create table if not exists gateway_admission (
      gateway text not null, since integer not null, until integer, primary key (gateway, since))`);
    const rows = db
      .prepare("select gateway, since, until from gateway_admission order by gateway, since")
      .all() as Array<{ gateway: string } & Interval>;
    for (const { gateway, since, until } of rows) this.list(gateway).push({ since, until });
  }

  /** Follows `view`: observes it after every change. Returns the unsubscribe function. */
  follow(view: ChainView): () => void {
    return view.onChange(() => this.observe(view));
  }

  /** Opens an interval for each gateway admitted now without one, closes the open one of each gateway that is not. */
  observe(view: Pick<ChainView, "map">): void {
    const now = this.now();
    const admitted = new Set<string>();
    for (const d of view.map.devices()) if (d.admitted && d.stakeType === StakeType.Gateway) admitted.add(d.device);
    const open = this.db.prepare("insert or ignore into gateway_admission (gateway, since, until) values (?, ?, null)");
    const close = this.db.prepare("update gateway_admission set until = ? where gateway = ? and since = ?");
    this.db.transaction(() => {
      for (const gateway of admitted) {
        const list = this.list(gateway);
        const last = list.at(-1);
        if (last && last.until === null) continue;
        const since = list.length === 0 ? 0 : Math.max(now, (last?.until ?? 0) + 1);
        open.run(gateway, since);
        list.push({ since, until: null });
      }
      for (const [gateway, list] of this.intervals) {
        const last = list.at(-1);
        if (!last || last.until !== null || admitted.has(gateway)) continue;
        last.until = Math.max(now, last.since);
        close.run(last.until, gateway, last.since);
      }
    })();
  }

  /** Whether `gateway` was admitted at `time` (billing's view of it). */
  admittedAt(gateway: string, time: number): boolean {
    const list = this.intervals.get(gateway.toLowerCase());
    return !!list?.some((i) => time >= i.since && (i.until === null || time <= i.until));
  }

  /** Whether `gateway` was admitted at any time at or after `time`: records it earned then may still come. */
  admittedSince(gateway: string, time: number): boolean {
    const list = this.intervals.get(gateway.toLowerCase());
    return !!list?.some((i) => i.until === null || i.until >= time);
  }

  private list(gateway: string): Interval[] {
    let list = this.intervals.get(gateway);
    if (!list) this.intervals.set(gateway, (list = []));
    return list;
  }
}
