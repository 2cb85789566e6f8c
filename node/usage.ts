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
import {
  appendFileSync,
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  writeSync,
} from "node:fs";
import { dirname, join } from "node:path";

import { type UsageRecord, signUsageBatch } from "../offchain/common/protocol";
import type { SendingContext } from "./context";

export type UsageContext = Pick<SendingContext, "signer" | "outgoing">;

/** Where the meter keeps its journal (`dir`) and its last batch's sequence (saved with `save`). */
export interface UsageSequenceStore {
  readonly dir: string;
  readonly state: { usageSequence: number };
  /** The state file, when it could not be read (the meter recovers the sequence, R18-12). */
  readonly unreadable?: string;
  save(): void;
}

/** Writes `file` atomically and durably (R18-12): a temporary file, fsync, rename, fsync of the directory. */
export function writeFileDurably(file: string, text: string): void {
  const fd = openSync(`${file}.tmp`, "w");
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(`${file}.tmp`, file);
  const dir = openSync(dirname(file), "r");
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}

/** A sequence-only state file (`<dir>/usage-state.json`, atomic durable writes) for a role without one of its own. */
export class UsageStateFile implements UsageSequenceStore {
  readonly state: { usageSequence: number } = { usageSequence: 0 };
  readonly unreadable: string | undefined;
  private readonly file: string;

  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
    this.file = join(dir, "usage-state.json");
    if (!existsSync(this.file)) return;
    try {
      const { usageSequence } = JSON.parse(readFileSync(this.file, "utf8")) as { usageSequence: unknown };
      if (!Number.isSafeInteger(usageSequence) || (usageSequence as number) < 0) throw new Error("no usageSequence");
      this.state.usageSequence = usageSequence as number;
    } catch {
      this.unreadable = this.file; // cut by a power loss: the meter recovers the sequence or refuses to start
    }
  }

  save(): void {
    writeFileDurably(this.file, JSON.stringify(this.state));
  }
}

/** One customer's quantity of one service's metric. */
export interface UsageLine {
  customer: string;
  service: string;
  metric: string;
  quantity: bigint;
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

  /**
   * Lines of many customers in one journal append (R18-10): the stargate hands every zone owner's DNS queries of
   * a second at once, so thousands of owners cost one write a flush, not one each.
   */
  addMany(lines: ReadonlyArray<UsageLine>): void {
    if (!this.enabled || lines.length === 0) return;
    const keys = lines.map((l) => `${l.customer.toLowerCase()}|${l.service}|${l.metric}`);
    appendFileSync(this.journal, keys.map((key, i) => JSON.stringify([key, lines[i].quantity.toString()]) + "\n").join("")); // prettier-ignore
    for (const [i, key] of keys.entries()) this.usage.set(key, (this.usage.get(key) ?? 0n) + lines[i].quantity);
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
    const [header, ...lines] = existsSync(this.journal)
      ? readFileSync(this.journal, "utf8").split("\n").filter(Boolean)
      : [];
    this.recoverSequence(journalBatch(header));
    if (header === undefined) return this.rewriteJournal();
    const batch = journalBatch(header) ?? this.store.state.usageSequence + 1;
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

  /**
   * The sequence never goes back (R18-12: billing refuses a batch id twice): at least the highest usage batch still
   * in the outbox and the one before the journal's. An unreadable state file is rewritten from them; with neither,
   * the meter refuses to start, naming the file (a guess could reuse a batch id).
   */
  private recoverSequence(journaled: number | undefined): void {
    let sequence = journaled === undefined ? -1 : journaled - 1;
    for (const item of this.ctx.outgoing.pending()) {
      const match = /^usage:(\d+)$/.exec(item.id);
      if (match) sequence = Math.max(sequence, Number(match[1]));
    }
    if (this.store.unreadable !== undefined && sequence < 0)
      throw new Error(
        `${this.store.unreadable} is unreadable and the usage sequence cannot be recovered (no journal header in ${this.journal}, no usage batch in the outbox): restore the file, or write {"usageSequence": N} with N at least the last batch billing took from this device`,
      );
    if (this.store.unreadable === undefined && sequence <= this.store.state.usageSequence) return;
    this.store.state.usageSequence = Math.max(sequence, this.store.state.usageSequence);
    this.store.save();
  }

  /** A journal holding exactly the unbatched usage, under the next batch's sequence (atomic: write, rename). */
  private rewriteJournal(): void {
    const lines = [JSON.stringify({ batch: this.store.state.usageSequence + 1 })];
    for (const [key, quantity] of this.usage) lines.push(JSON.stringify([key, quantity.toString()]));
    writeFileDurably(this.journal, lines.join("\n") + "\n");
  }
}

/** The batch a journal's header line names, if it can be read. */
function journalBatch(header: string | undefined): number | undefined {
  try {
    const batch = (JSON.parse(header ?? "") as { batch?: unknown }).batch;
    return Number.isSafeInteger(batch) && (batch as number) > 0 ? (batch as number) : undefined;
  } catch {
    return undefined;
  }
}
