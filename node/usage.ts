/**
 * Usage for billing, shared by the roles that bill (D58): the gateway adds up, per customer, service and metric
 * (`compute` `jobs` and `rounds`; `cdn` `requests` and `egressBytes`, per site owner), the stargate `dns`
 * `queries` per zone owner, what it served, and queues it into the outbox as one signed UsageBatch (target
 * `billing`) each time it is asked. The batch's sequence number is saved with it (the gateway's state file, the
 * stargate's UsageStateFile), so batches after a restart never reuse one. A batch's `gateway` field is its sender,
 * whatever the sender's role: the wire format predates stargates' usage.
 *
 * Usage not yet in a batch is journaled (N1): every `add` appends a line to `usage.jsonl` before the job's answer
 * leaves, so a kill -9 between two batches loses nothing. The journal's first line names the sequence its batch
 * will take; on start, a journal whose batch is already in the outbox was queued (dropped: never counted twice),
 * any other is replayed. Order in `queue`: sequence saved, batch put in the outbox, then a fresh journal.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";

import { type UsageRecord, signUsageBatch } from "../offchain/common/protocol";
import type { SendingContext } from "./context";

export type UsageContext = Pick<SendingContext, "signer" | "outgoing">;

/** Where the meter keeps its journal (`dir`) and its last batch's sequence (saved with `save`). */
export interface UsageSequenceStore {
  readonly dir: string;
  readonly state: { usageSequence: number };
  save(): void;
}

/** A sequence-only state file (`<dir>/usage-state.json`, atomic writes) for a role without one of its own. */
export class UsageStateFile implements UsageSequenceStore {
  readonly state: { usageSequence: number };
  private readonly file: string;

  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
    this.file = join(dir, "usage-state.json");
    this.state = existsSync(this.file)
      ? (JSON.parse(readFileSync(this.file, "utf8")) as { usageSequence: number })
      : { usageSequence: 0 };
  }

  save(): void {
    writeFileSync(`${this.file}.tmp`, JSON.stringify(this.state));
    renameSync(`${this.file}.tmp`, this.file);
  }
}

const batchId = (sequence: number) => `usage:${sequence}`;

export class UsageMeter {
  /** `${customer}|${service}|${metric}` -> quantity since the last batch */
  private readonly usage = new Map<string, bigint>();
  private readonly journal: string;

  constructor(
    private readonly ctx: UsageContext,
    private readonly store: UsageSequenceStore,
    /** Without billing nothing is recorded. */
    private readonly enabled: boolean,
  ) {
    this.journal = join(store.dir, "usage.jsonl");
    if (enabled) this.recover();
  }

  /** Customer-service-metric lines not yet in a batch. */
  get pending(): number {
    return this.usage.size;
  }

  add(customer: string, metric: string, quantity: bigint, service = "compute"): void {
    this.addAll(customer, service, [[metric, quantity]]);
  }

  /** Several metrics of one customer and service: one journal write for all of them (one request's usage). */
  addAll(customer: string, service: string, lines: ReadonlyArray<readonly [string, bigint]>): void {
    if (!this.enabled) return;
    const keys = lines.map(([metric]) => `${customer.toLowerCase()}|${service}|${metric}`);
    appendFileSync(this.journal, keys.map((key, i) => JSON.stringify([key, lines[i][1].toString()]) + "\n").join(""));
    for (const [i, key] of keys.entries()) this.usage.set(key, (this.usage.get(key) ?? 0n) + lines[i][1]);
  }

  /** Queues what was added since the last batch as a signed batch (nothing when nothing was added). */
  async queue(): Promise<void> {
    if (!this.enabled || this.usage.size === 0) return;
    const sequence = this.store.state.usageSequence + 1;
    const gateway = this.ctx.signer.account.address.toLowerCase(); // the sender, whatever its role
    const time = Date.now();
    const taken = [...this.usage];
    const records: UsageRecord[] = taken.map(([key, quantity], i) => {
      const [customer, service, metric] = key.split("|");
      return {
        id: `${gateway}:${sequence}:${i}`,
        gateway,
        customer,
        service,
        metric,
        quantity: quantity.toString(),
        time,
      };
    });
    const body = await signUsageBatch(this.ctx.signer.account, this.ctx.signer.chainId, BigInt(sequence), records);
    // Usage added while the batch was signed stays for the next one (journaled under the next sequence).
    const later = new Map(this.usage);
    for (const [key, quantity] of taken) {
      const left = later.get(key)! - quantity;
      if (left === 0n) later.delete(key);
      else later.set(key, left);
    }
    this.store.state.usageSequence = sequence;
    this.store.save();
    this.ctx.outgoing.put({ id: batchId(sequence), target: "billing", path: "/usage", body });
    this.usage.clear();
    for (const [key, quantity] of later) this.usage.set(key, quantity);
    this.rewriteJournal();
  }

  /** The journal after a start: what a crash left unbatched comes back; what made it into a batch does not. */
  private recover(): void {
    if (!existsSync(this.journal)) return this.rewriteJournal();
    const [header, ...lines] = readFileSync(this.journal, "utf8").split("\n").filter(Boolean);
    const batch = (JSON.parse(header) as { batch: number }).batch;
    const queued = this.ctx.outgoing.pending().some((item) => item.id === batchId(batch));
    if (!queued) {
      for (const line of lines) {
        let entry: [string, string];
        try {
          entry = JSON.parse(line) as [string, string];
        } catch {
          continue; // a line cut by the crash: its job's answer never left (add writes before it answers)
        }
        const [raw, quantity] = entry;
        const key = raw.split("|").length === 2 ? raw.replace("|", "|compute|") : raw; // a journal from before `cdn`
        this.usage.set(key, (this.usage.get(key) ?? 0n) + BigInt(quantity));
      }
    }
    this.rewriteJournal();
  }

  /** A journal holding exactly the unbatched usage, under the next batch's sequence (atomic: write, rename). */
  private rewriteJournal(): void {
    const lines = [JSON.stringify({ batch: this.store.state.usageSequence + 1 })];
    for (const [key, quantity] of this.usage) lines.push(JSON.stringify([key, quantity.toString()]));
    writeFileSync(`${this.journal}.tmp`, lines.join("\n") + "\n");
    renameSync(`${this.journal}.tmp`, this.journal);
  }
}
