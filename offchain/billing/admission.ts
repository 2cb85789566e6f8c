/**
 * Senders' admission over time, as billing saw it (D42, F3; stargates since D58): a usage record is judged by
 * whether its sender (a gateway, or a stargate for DNS) was admitted at the record's own time, so usage earned while
 * admitted is billed even when it arrives after the sender's eviction.
 *
 * The chain view says who is admitted now. Each time it changes (and at start), every gateway's and stargate's
 * admission is compared with the intervals kept in SQLite (one table per kind: `gateway_admission`,
 * `stargate_admission`): a device newly admitted opens an interval at that moment, one no longer admitted closes its
 * interval at that moment. Times are billing's clock when it saw the change (the confirmed view lags the chain by
 * its confirmations), the same clock records are checked against. A device first seen admitted by a database
 * without any history for it is taken as admitted since forever (its earlier admission was not observed). How far
 * back a record may go is bounded elsewhere: its period must still be open.
 */
import type Database from "better-sqlite3";

import type { ChainView } from "../common/chainView";
import { StakeType } from "../common/stakeMap";

interface Interval {
  since: number;
  /** null while admitted */
  until: number | null;
}

/** The kinds of sender billing takes usage from, and their table (the column is named like the kind). */
export type SenderKind = StakeType.Gateway | StakeType.Stargate;
const TABLES: Record<SenderKind, string> = { [StakeType.Gateway]: "gateway", [StakeType.Stargate]: "stargate" };
const KINDS = [StakeType.Gateway, StakeType.Stargate] as const;

export class AdmissionHistory {
  /** kind -> device (lowercase) -> its intervals, oldest first */
  private readonly intervals = new Map<SenderKind, Map<string, Interval[]>>(KINDS.map((kind) => [kind, new Map()]));

  constructor(
    private readonly db: Database.Database,
    private readonly now: () => number,
  ) {
    for (const kind of KINDS) {
      const name = TABLES[kind];
      db.exec(`create table if not exists ${name}_admission (
        ${name} text not null, since integer not null, until integer, primary key (${name}, since))`);
      const rows = db
        .prepare(`select ${name} as device, since, until from ${name}_admission order by ${name}, since`)
        .all() as Array<{ device: string } & Interval>;
      for (const { device, since, until } of rows) this.list(kind, device).push({ since, until });
    }
  }

  /** Follows `view`: observes it after every change. Returns the unsubscribe function. */
  follow(view: ChainView): () => void {
    return view.onChange(() => this.observe(view));
  }

  /** Per kind: opens an interval for each device admitted now without one, closes the open one of each that is not. */
  observe(view: Pick<ChainView, "map">): void {
    const now = this.now();
    const devices = view.map.devices();
    this.db.transaction(() => {
      for (const kind of KINDS) {
        const admitted = new Set<string>();
        for (const d of devices) if (d.admitted && d.stakeType === kind) admitted.add(d.device.toLowerCase());
        this.observeKind(kind, admitted, now);
      }
    })();
  }

  /** Whether `device` was admitted as a `kind` (a gateway unless said) at `time` (billing's view of it). */
  admittedAt(device: string, time: number, kind: SenderKind = StakeType.Gateway): boolean {
    const list = this.intervals.get(kind)!.get(device.toLowerCase());
    return !!list?.some((i) => time >= i.since && (i.until === null || time <= i.until));
  }

  /** Whether `device` was admitted as a `kind` at any time at or after `time`: records it earned then may come. */
  admittedSince(device: string, time: number, kind: SenderKind = StakeType.Gateway): boolean {
    const list = this.intervals.get(kind)!.get(device.toLowerCase());
    return !!list?.some((i) => i.until === null || i.until >= time);
  }

  private observeKind(kind: SenderKind, admitted: Set<string>, now: number): void {
    const name = TABLES[kind];
    const open = this.db.prepare(`insert or ignore into ${name}_admission (${name}, since, until) values (?, ?, null)`);
    const close = this.db.prepare(`update ${name}_admission set until = ? where ${name} = ? and since = ?`);
    for (const device of admitted) {
      const list = this.list(kind, device);
      const last = list.at(-1);
      if (last && last.until === null) continue;
      const since = list.length === 0 ? 0 : Math.max(now, (last?.until ?? 0) + 1);
      open.run(device, since);
      list.push({ since, until: null });
    }
    for (const [device, list] of this.intervals.get(kind)!) {
      const last = list.at(-1);
      if (!last || last.until !== null || admitted.has(device)) continue;
      last.until = Math.max(now, last.since);
      close.run(last.until, device, last.since);
    }
  }

  private list(kind: SenderKind, device: string): Interval[] {
    const byDevice = this.intervals.get(kind)!;
    let list = byDevice.get(device);
    if (!list) byDevice.set(device, (list = []));
    return list;
  }
}
