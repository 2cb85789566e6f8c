/**
 * Crash-safe transaction sending for the oracle and billing services.
 *
 * A transaction is signed locally and written to SQLite (nonce, raw bytes, hash) before it is broadcast, so a
 * process killed at any instant finds it again on restart: `reconcile()` marks it mined or failed from its
 * receipt, rebroadcasts the same raw bytes if the node lost it, or replaces it at the same nonce with higher
 * fees when it is stuck. Callers check the chain for the effect (a posted batch, a settled bill) before asking
 * for a new transaction, and a purpose with a transaction in flight gets that one back instead of a second.
 */
import type Database from "better-sqlite3";
import { type Address, type Hex, type LocalAccount, type PublicClient, type TransactionReceipt, keccak256 } from "viem";

export type TxStatus = "pending" | "mined" | "failed";

export interface TxRecord {
  nonce: number;
  purpose: string;
  to: Address;
  data: Hex;
  /** Every hash signed for this nonce (replacements append), newest last. */
  hashes: Hex[];
  raw: Hex;
  status: TxStatus;
  gas: bigint;
  maxFeePerGas: bigint;
  maxPriorityFeePerGas: bigint;
  createdAt: number;
  sentAt: number;
  minedHash: Hex | null;
}

export interface TxLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

interface Row {
  nonce: number;
  purpose: string;
  to_address: string;
  data: string;
  hashes: string;
  raw: string;
  status: TxStatus;
  gas: string;
  max_fee: string;
  priority_fee: string;
  created_at: number;
  sent_at: number;
  mined_hash: string | null;
}

const fromRow = (r: Row): TxRecord => ({
  nonce: r.nonce,
  purpose: r.purpose,
  to: r.to_address as Address,
  data: r.data as Hex,
  hashes: JSON.parse(r.hashes) as Hex[],
  raw: r.raw as Hex,
  status: r.status,
  gas: BigInt(r.gas),
  maxFeePerGas: BigInt(r.max_fee),
  maxPriorityFeePerGas: BigInt(r.priority_fee),
  createdAt: r.created_at,
  sentAt: r.sent_at,
  minedHash: r.mined_hash as Hex | null,
});

export interface TxSenderOptions {
  /** Rebroadcast or replace a pending transaction older than this. */
  replaceAfterMs?: number;
  /**
   * The most this sender ever offers per gas (wei), first send and replacements alike (F10). A transaction stuck
   * at the cap is rebroadcast, not replaced, and reported: `feeCapped()` counts them and an error is logged.
   */
  maxFeePerGas?: bigint;
  now?: () => number;
}

/** The default fee cap: 1,000 gwei, far above normal mainnet and L2 fees, far below a runaway's. */
export const DEFAULT_MAX_FEE_PER_GAS = 1_000n * 10n ** 9n;

/** A replacement must raise both fees by at least 10% for nodes to accept it; we raise 25%. */
const bump = (fee: bigint) => (fee * 125n) / 100n + 1n;
const minimumReplacement = (fee: bigint) => (fee * 110n) / 100n + 1n;
const min = (a: bigint, b: bigint) => (a < b ? a : b);

export class TxSender {
  private readonly replaceAfterMs: number;
  private readonly maxFeePerGas: bigint;
  private readonly now: () => number;
  /** Nonces of pending transactions that sit at the fee cap. */
  private readonly capped = new Set<number>();

  constructor(
    private readonly db: Database.Database,
    private readonly client: PublicClient,
    private readonly account: LocalAccount,
    private readonly chainId: number,
    private readonly log: TxLogger,
    options: TxSenderOptions = {},
  ) {
    this.replaceAfterMs = options.replaceAfterMs ?? 60_000;
    this.maxFeePerGas = options.maxFeePerGas ?? DEFAULT_MAX_FEE_PER_GAS;
    if (this.maxFeePerGas <= 0n) throw new Error("the fee cap must be positive");
    this.now = options.now ?? Date.now;
    db.exec(`create table if not exists txs (
      nonce integer primary key, purpose text not null, to_address text not null, data text not null,
      hashes text not null, raw text not null, status text not null, gas text not null, max_fee text not null,
      priority_fee text not null, created_at integer not null, sent_at integer not null, mined_hash text)`);
    db.exec("create index if not exists txs_purpose on txs (purpose, status)");
  }

  get address(): Address {
    return this.account.address;
  }

  pending(): TxRecord[] {
    return (this.db.prepare("select * from txs where status = 'pending' order by nonce").all() as Row[]).map(fromRow);
  }

  /** How many pending transactions sit at the fee cap (the `*_tx_fee_capped` gauge: alert when above 0). */
  feeCapped(): number {
    return this.capped.size;
  }

  byPurpose(purpose: string): TxRecord[] {
    return (this.db.prepare("select * from txs where purpose = ? order by nonce").all(purpose) as Row[]).map(fromRow);
  }

  /**
   * Signs, persists and broadcasts a transaction for `purpose`, unless one for it is still pending (then that one
   * is returned). Gas is estimated first, so a call that would revert fails here, before anything is signed.
   */
  async send(purpose: string, to: Address, data: Hex): Promise<TxRecord> {
    const inFlight = this.byPurpose(purpose).find((t) => t.status === "pending");
    if (inFlight) return inFlight;
    const gas = await this.client.estimateGas({ account: this.account, to, data });
    const fees = await this.client.estimateFeesPerGas();
    const chainNonce = await this.client.getTransactionCount({ address: this.account.address, blockTag: "pending" });
    const dbNonce = (this.db.prepare("select max(nonce) n from txs").get() as { n: number | null }).n;
    const nonce = Math.max(chainNonce, dbNonce === null ? 0 : dbNonce + 1);
    const record: TxRecord = {
      nonce,
      purpose,
      to,
      data,
      hashes: [],
      raw: "0x",
      status: "pending",
      gas: (gas * 12n) / 10n, // headroom: state can move between estimate and inclusion
      maxFeePerGas: min(fees.maxFeePerGas, this.maxFeePerGas),
      maxPriorityFeePerGas: min(fees.maxPriorityFeePerGas, this.maxFeePerGas),
      createdAt: this.now(),
      sentAt: this.now(),
      minedHash: null,
    };
    if (fees.maxFeePerGas > this.maxFeePerGas) {
      this.capped.add(nonce);
      this.log.error(
        { nonce, purpose, estimate: fees.maxFeePerGas.toString(), cap: this.maxFeePerGas.toString() },
        "fee estimate above the configured cap: sending at the cap, it may not be mined",
      );
    }
    await this.sign(record);
    this.db
      .prepare(
        `insert into txs (nonce, purpose, to_address, data, hashes, raw, status, gas, max_fee, priority_fee, created_at,
         sent_at, mined_hash) values (?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?, null)`,
      )
      .run(
        record.nonce,
        purpose,
        to,
        data,
        JSON.stringify(record.hashes),
        record.raw,
        record.gas.toString(),
        record.maxFeePerGas.toString(),
        record.maxPriorityFeePerGas.toString(),
        record.createdAt,
        record.sentAt,
      );
    await this.broadcast(record);
    return record;
  }

  /** Waits until `record` is mined (or fails); returns its receipt. */
  async wait(record: TxRecord, timeoutMs = 120_000): Promise<TransactionReceipt> {
    const until = this.now() + timeoutMs;
    for (;;) {
      const receipt = await this.check(record);
      if (receipt) return receipt;
      if (this.now() > until)
        throw new Error(`transaction ${record.hashes.at(-1)} (nonce ${record.nonce}) not mined in time`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  /** Brings every pending transaction up to date with the chain; rebroadcasts or replaces what is stuck. */
  async reconcile(): Promise<void> {
    for (const record of this.pending()) {
      if (await this.check(record)) continue;
      const mined = await this.client.getTransactionCount({ address: this.account.address, blockTag: "latest" });
      if (mined > record.nonce) {
        if (await this.check(record)) continue; // mined between the two reads
        // The nonce was consumed, and by none of our hashes: something else used this key. Our transaction can
        // never be mined; the caller sees it failed and checks the chain for the effect.
        record.status = "failed";
        this.capped.delete(record.nonce);
        this.db.prepare("update txs set status = 'failed' where nonce = ?").run(record.nonce);
        this.log.warn({ nonce: record.nonce, purpose: record.purpose }, "nonce used by another transaction; dropped");
        continue;
      }
      if (this.now() - record.sentAt > this.replaceAfterMs && this.raiseFees(record)) {
        await this.sign(record);
        record.sentAt = this.now();
        this.db
          .prepare("update txs set hashes = ?, raw = ?, max_fee = ?, priority_fee = ?, sent_at = ? where nonce = ?")
          .run(
            JSON.stringify(record.hashes),
            record.raw,
            record.maxFeePerGas.toString(),
            record.maxPriorityFeePerGas.toString(),
            record.sentAt,
            record.nonce,
          );
        this.log.warn(
          { nonce: record.nonce, purpose: record.purpose, hash: record.hashes.at(-1) },
          "replacing a stuck transaction",
        );
      }
      await this.broadcast(record);
    }
  }

  /**
   * Stuck: raise the fees 25% for a replacement at the same nonce, never above the cap. When even the 10% a node
   * requires would pass the cap, the transaction stays as it is (rebroadcast), counted and logged as an error.
   */
  private raiseFees(record: TxRecord): boolean {
    const maxFee = min(bump(record.maxFeePerGas), this.maxFeePerGas);
    if (maxFee < minimumReplacement(record.maxFeePerGas)) {
      this.capped.add(record.nonce);
      this.log.error(
        { nonce: record.nonce, purpose: record.purpose, maxFeePerGas: record.maxFeePerGas.toString() },
        "transaction stuck at the fee cap: not replaced; raise --max-fee-gwei or wait for fees to fall",
      );
      return false;
    }
    record.maxFeePerGas = maxFee;
    record.maxPriorityFeePerGas = min(bump(record.maxPriorityFeePerGas), maxFee);
    return true;
  }

  /** The receipt of any of the record's hashes; updates the record when mined. */
  private async check(record: TxRecord): Promise<TransactionReceipt | undefined> {
    for (const hash of [...record.hashes].reverse()) {
      const receipt = await this.client.getTransactionReceipt({ hash }).catch(() => undefined);
      if (!receipt) continue;
      const status: TxStatus = receipt.status === "success" ? "mined" : "failed";
      record.status = status;
      this.capped.delete(record.nonce);
      record.minedHash = hash;
      this.db.prepare("update txs set status = ?, mined_hash = ? where nonce = ?").run(status, hash, record.nonce);
      if (status === "failed")
        this.log.warn({ nonce: record.nonce, purpose: record.purpose, hash }, "transaction reverted");
      return receipt;
    }
    return undefined;
  }

  private async sign(record: TxRecord): Promise<void> {
    if (!this.account.signTransaction) throw new Error("the sending account cannot sign transactions locally");
    record.raw = await this.account.signTransaction({
      chainId: this.chainId,
      type: "eip1559",
      to: record.to,
      data: record.data,
      nonce: record.nonce,
      gas: record.gas,
      maxFeePerGas: record.maxFeePerGas,
      maxPriorityFeePerGas: record.maxPriorityFeePerGas,
      value: 0n,
    });
    record.hashes.push(keccak256(record.raw));
  }

  private async broadcast(record: TxRecord): Promise<void> {
    try {
      await this.client.sendRawTransaction({ serializedTransaction: record.raw });
    } catch (error) {
      const message = (error as Error).message;
      // Already known, or already mined: the next check finds its receipt. Anything else waits for reconcile().
      if (!/already known|known transaction|nonce too low|already imported/i.test(message)) {
        this.log.warn({ nonce: record.nonce, err: message.split("\n")[0] }, "broadcast failed; will retry");
      }
    }
  }
}
