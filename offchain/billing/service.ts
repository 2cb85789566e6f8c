/**
 * The billing service.
 *
 * - Ingestion: gateways POST signed batches of usage records (EIP-712 UsageBatch over the records' RFC 8785 hash,
 *   offchain/common/messages). The gateway must be admitted in the chain view; every record must be priced, in an
 *   open period and not from the future; the batch is stored in one transaction, each record id once (the same id
 *   with other content aborts the batch with a 409).
 * - Closing: once a period has ended plus the grace period (local clock: records carry the gateways' wall-clock
 *   times), usage is summed per (customer, service, metric), priced into bills (./bills) and saved with the
 *   period in one transaction.
 * - Settlement: non-zero bills go to PaymentVault.settle in batches through TxSender (persisted before broadcast);
 *   the chain is asked first (`isSettled`), so a bill is never charged twice; charged amount, shortfall and the
 *   transaction are recorded per bill from the BillSettled events.
 * - Customers sign in with an EIP-4361 message and a bearer token, then read their own bills and usage.
 */
import { randomBytes } from "node:crypto";
import type { FastifyRequest } from "fastify";
import { Type } from "@fastify/type-provider-typebox";
import { Counter, Gauge, Registry } from "prom-client";
import {
  type Address,
  type Hex,
  type Log,
  type PublicClient,
  createPublicClient,
  decodeEventLog,
  encodeFunctionData,
  getAddress,
  http,
  recoverMessageAddress,
} from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { createSiweMessage, generateSiweNonce, parseSiweMessage } from "viem/siwe";

import { paymentVaultAbi } from "../common/generated/abis";
import { contractEntry, readAddressBook } from "../common/addressBook";
import { ChainView } from "../common/chainView";
import { type TypedApp, createServiceApp } from "../common/http";
import {
  AddressSchema,
  ErrorReplySchema,
  type UsageBatchBody,
  UsageBatchBodySchema,
  verifyUsageBatch,
} from "../common/protocol";
import { MONTHLY, type PeriodScheme, periodIdOf, periodIndex, periodOf, periodWindow } from "../common/period";
import { StakeType } from "../common/stakeMap";
import { TxSender } from "../common/txSender";
import { errorFactory } from "../common/errors";
import { WorkLoop } from "../common/workLoop";
import {
  BillingInputError,
  type HashedBill,
  type ParsedRecord,
  type PriceList,
  type UsageTotal,
  makeBill,
  makeBills,
  priceOf,
} from "./bills";
import type { BillingConfig } from "./config";
import { type BillRow, BillingStore } from "./store";

export const BILLING_ERRORS = {
  BILLING_RECORD_GATEWAY_MISMATCH: 400,
  BILLING_UNKNOWN_PRICE: 400,
  BILLING_TIME_IN_FUTURE: 400,
  BILLING_QUANTITY_TOO_LARGE: 400,
  BILLING_BAD_LOGIN: 400,
  BILLING_BAD_SIGNATURE: 401,
  BILLING_UNAUTHORIZED: 401,
  BILLING_SENDER_NOT_STAKED: 403,
  BILLING_SENDER_NOT_ADMITTED: 403,
  BILLING_FORBIDDEN: 403,
  BILLING_NOT_FOUND: 404,
  BILLING_PERIOD_CLOSED: 409,
  BILLING_RECORD_CONFLICT: 409,
  BILLING_NONCE_USED: 409,
} as const;

export const billingError = errorFactory(BILLING_ERRORS);

const MAX_INT64 = (1n << 63n) - 1n;
const MAX_UINT96 = (1n << 96n) - 1n;
const NONCE_TTL_MS = 5 * 60_000;
const TOKEN_UNIT = 10n ** 18n;

const CustomerParams = Type.Object({ customer: AddressSchema }, { additionalProperties: false });
const BillParams = Type.Object(
  { customer: AddressSchema, period: Type.String({ pattern: "^(\\d{4}-\\d{2}|\\d{1,10})$" }) },
  { additionalProperties: false },
);
const PeriodParams = Type.Object(
  { period: Type.String({ pattern: "^(\\d{4}-\\d{2}|\\d{1,10})$" }) },
  { additionalProperties: false },
);
const BearerHeader = Type.Object({ authorization: Type.Optional(Type.String()) });

export interface BillingDeps {
  now?: () => number;
  logger?: import("fastify").FastifyBaseLogger;
}

interface Session {
  customer: string;
  expiresAt: number;
}

export class BillingService {
  readonly app: TypedApp;
  readonly store: BillingStore;
  private readonly client: PublicClient;
  private readonly view: ChainView;
  private readonly sender: TxSender | null;
  private readonly vault: Address;
  private readonly vaultBlock: bigint;
  private readonly scheme: PeriodScheme;
  private readonly now: () => number;
  private readonly registry = new Registry();
  private readonly metrics;
  private readonly nonces = new Map<string, { address: string; expiresAt: number }>();
  private readonly sessions = new Map<string, Session>();
  /** Usage of periods not closed yet: period -> customer -> "service\0metric" -> total. Rebuilt from the database
   * at start, added to after each stored batch, dropped at close: customers' current usage without an index. */
  private readonly openUsage = new Map<number, Map<string, Map<string, UsageTotal>>>();
  private stopView?: () => Promise<void>;
  private readonly loop: WorkLoop;

  private constructor(
    private readonly config: BillingConfig,
    private readonly prices: PriceList,
    book: ReturnType<typeof readAddressBook>,
    private readonly chainId: number,
    deps: BillingDeps,
  ) {
    this.now = deps.now ?? Date.now;
    this.scheme =
      config.periodSeconds === undefined
        ? MONTHLY
        : { kind: "fixed", startMs: config.periodStart, lengthMs: config.periodSeconds * 1000 };
    this.app = createServiceApp({
      name: "billing",
      codePrefix: "BILLING",
      logLevel: config.logLevel,
      logger: deps.logger,
      openapi: {
        title: "Edge Network billing",
        description: "Signed usage in; itemised bills, settled on-chain, out to the customers they belong to.",
        bearer: true,
      },
      registry: this.registry,
      onRejected: (route, code) => {
        if (route === "/usage") this.metrics.batches.inc({ outcome: `rejected_${code.toLowerCase()}` });
      },
      routes: (api) => this.routes(api),
    });
    this.store = new BillingStore(config.db);
    this.client = createPublicClient({
      transport: http(config.rpc, { retryCount: 0, timeout: 30_000, batch: { batchSize: 200 } }),
    }) as PublicClient;
    const staking = contractEntry(book, "StakeManager");
    const vault = contractEntry(book, "PaymentVault");
    this.vault = vault.address as Address;
    this.vaultBlock = BigInt(vault.blockNumber);
    this.view = new ChainView({
      client: this.client,
      stakeManager: staking.address as Address,
      fromBlock: BigInt(staking.blockNumber),
      pollIntervalMs: config.pollIntervalMs,
      confirmations: config.confirmations,
      logger: this.app.log.child({ component: "view" }),
    });
    this.sender = config.billerKey
      ? new TxSender(
          this.store.db,
          this.client,
          privateKeyToAccount(config.billerKey as Hex),
          chainId,
          this.app.log.child({ component: "tx" }),
        )
      : null;
    this.metrics = this.createMetrics();
    this.loop = new WorkLoop(
      () => this.work(),
      config.pollIntervalMs,
      (error) => this.app.log.warn({ err: error.message.split("\n")[0] }, "billing work failed; retrying"),
    );
  }

  /** Reads the price list and the address book, checks the chain and the biller's role; not started. */
  static async create(config: BillingConfig, prices: PriceList, deps: BillingDeps = {}): Promise<BillingService> {
    const book = readAddressBook(config.addresses);
    const client = createPublicClient({ transport: http(config.rpc, { retryCount: 2, timeout: 10_000 }) });
    const chainId = await client.getChainId();
    if (chainId !== book.chainId)
      throw new Error(`the RPC serves chain ${chainId} but ${config.addresses} is for chain ${book.chainId}`);
    const vault = contractEntry(book, "PaymentVault").address as Address;
    if (config.billerKey) {
      const biller = privateKeyToAccount(config.billerKey as Hex).address;
      const role = await client.readContract({ address: vault, abi: paymentVaultAbi, functionName: "BILLER_ROLE" });
      const has = await client.readContract({
        address: vault,
        abi: paymentVaultAbi,
        functionName: "hasRole",
        args: [role, biller],
      });
      if (!has) throw new Error(`the biller key ${biller} does not hold BILLER_ROLE on PaymentVault ${vault}`);
    }
    return new BillingService(config, prices, book, chainId, deps);
  }

  async start(): Promise<string> {
    if (this.store.getMeta("firstPeriod") === undefined) {
      this.store.setMeta("firstPeriod", String(periodIndex(this.periodAt(this.now()))));
    }
    for (const index of this.store.periodsWithRecordsAfter(this.store.lastClosedIndex() ?? -1)) {
      this.addOpenUsage(index, this.store.usageTotals(index));
    }
    await this.sender?.reconcile();
    await this.view
      .syncOnce()
      .catch((error: Error) => this.app.log.warn({ err: error.message }, "initial sync failed; retrying"));
    this.stopView = this.view.start();
    const url = await this.app.listen({ host: this.config.listenHost, port: this.config.port });
    this.loop.start();
    this.app.log.info(
      { url, firstPeriod: this.store.getMeta("firstPeriod"), biller: this.sender?.address ?? null },
      "billing started",
    );
    return url;
  }

  async close(): Promise<void> {
    await this.loop.stop();
    await this.stopView?.();
    await this.app.close();
    this.store.close();
  }

  // ------------------------------------------------------------------------------------------ periods

  private periodAt(timeMs: number): string {
    const id = periodOf(timeMs, this.scheme);
    if (id === undefined) throw billingError("BILLING_PERIOD_CLOSED", `time ${timeMs} is before the first period`);
    return id;
  }

  private addOpenUsage(index: number, totals: Iterable<UsageTotal>): void {
    let byCustomer = this.openUsage.get(index);
    if (!byCustomer) this.openUsage.set(index, (byCustomer = new Map()));
    for (const { customer, service, metric, quantity } of totals) {
      let lines = byCustomer.get(customer);
      if (!lines) byCustomer.set(customer, (lines = new Map()));
      const key = `${service}\u0000${metric}`;
      const line = lines.get(key);
      if (line) line.quantity += quantity;
      else lines.set(key, { customer, service, metric, quantity });
    }
  }

  /** A period takes usage from its first record until it is closed (never before the service's first period). */
  private isOpen(index: number): boolean {
    const first = Number(this.store.getMeta("firstPeriod") ?? "0");
    const last = this.store.lastClosedIndex();
    return index >= first && (last === undefined || index > last);
  }

  /** One pass of the background work; the loop never runs two at once. */
  async work(): Promise<void> {
    await this.sender?.reconcile();
    this.closeDuePeriods();
    await this.settleClosedPeriods();
  }

  /** Closes every period whose end plus the grace period has passed, oldest first. Synchronous: no record slips in. */
  closeDuePeriods(): void {
    const last = this.store.lastClosedIndex();
    let index = last === undefined ? Number(this.store.getMeta("firstPeriod") ?? "0") : last + 1;
    for (;;) {
      const id = periodIdOf(index, this.scheme);
      if (periodWindow(id, this.scheme).endMs + this.config.graceSeconds * 1000 > this.now()) return;
      this.closePeriod(index);
      index += 1;
    }
  }

  /** Bills one period from the database and saves them with the period. */
  closePeriod(index: number): HashedBill[] {
    const period = periodIdOf(index, this.scheme);
    let bills: HashedBill[];
    try {
      bills = makeBills(period, this.store.usageTotals(index), this.prices);
    } catch (error) {
      if (error instanceof BillingInputError) {
        this.app.log.error({ period, err: error.message }, "cannot bill the period: fix the price list");
      }
      throw error;
    }
    let due = 0;
    const rows: BillRow[] = bills.map((bill) => {
      const total = BigInt(bill.total);
      const status = total === 0n ? "zero" : total > MAX_UINT96 ? "unsettleable" : "due";
      return {
        period,
        customer: bill.customer,
        bill,
        total,
        status,
        batch: status === "due" ? Math.floor(due++ / this.config.batchSize) : null,
        charged: null,
        shortfall: null,
        txHash: null,
      };
    });
    this.store.saveClosedPeriod(period, index, this.now(), rows);
    this.openUsage.delete(index);
    for (const row of rows) this.metrics.bills.inc({ status: row.status });
    if (rows.some((r) => r.status === "unsettleable")) {
      this.app.log.error({ period }, "bills above 2^96 - 1 base units cannot be settled on-chain");
    }
    this.app.log.info({ period, bills: rows.length, due }, "period closed");
    return bills;
  }

  // ------------------------------------------------------------------------------------------ settlement

  private async settleClosedPeriods(): Promise<void> {
    for (const period of this.store.unsettledPeriods()) {
      const due = this.store.bills(period.period, "due");
      const batches = [...new Set(due.map((b) => b.batch!))].sort((a, b) => a - b);
      for (const batch of batches) {
        await this.settleBatch(
          period.period,
          period.index,
          batch,
          due.filter((b) => b.batch === batch),
        );
      }
      if (this.store.bills(period.period, "due").length === 0) {
        this.store.markPeriodSettled(period.period, this.now());
        this.app.log.info({ period: period.period }, "period settled");
      }
    }
  }

  private async settleBatch(period: string, index: number, batch: number, bills: BillRow[]): Promise<void> {
    // The chain first: a bill settled before a crash (or by hand with billing:settle) is only recorded.
    const settled = await Promise.all(
      bills.map((b) =>
        this.client.readContract({
          address: this.vault,
          abi: paymentVaultAbi,
          functionName: "isSettled",
          args: [b.customer as Address, BigInt(index)],
        }),
      ),
    );
    const open = bills.filter((_, i) => !settled[i]);
    for (const bill of bills.filter((_, i) => settled[i])) await this.recordFromChain(bill, index);
    if (open.length === 0 || !this.sender) return;
    const data = encodeFunctionData({
      abi: paymentVaultAbi,
      functionName: "settle",
      args: [index, open.map((b) => ({ customer: b.customer as Address, amount: b.total, billHash: b.bill.billHash }))],
    });
    const record = await this.sender.send(`settle:${period}:${batch}`, this.vault, data);
    const receipt = await this.sender.wait(record);
    if (receipt.status !== "success") {
      this.app.log.warn({ period, batch, tx: receipt.transactionHash }, "settlement reverted; retrying");
      return;
    }
    this.recordFromLogs(period, receipt.logs, receipt.transactionHash);
  }

  /** Records BillSettled events of a receipt; PeriodTooOld skips make the bill unsettleable. */
  private recordFromLogs(period: string, logs: readonly Log[], txHash: Hex): void {
    for (const log of logs) {
      if (log.address.toLowerCase() !== this.vault.toLowerCase()) continue;
      let event;
      try {
        event = decodeEventLog({ abi: paymentVaultAbi, data: log.data, topics: log.topics });
      } catch {
        continue;
      }
      if (event.eventName === "BillSettled") {
        const customer = event.args.customer.toLowerCase();
        this.store.markSettled(period, customer, event.args.charged, event.args.shortfall, txHash);
        this.metrics.charged.inc(Number(event.args.charged) / Number(TOKEN_UNIT));
        this.metrics.shortfall.inc(Number(event.args.shortfall) / Number(TOKEN_UNIT));
        this.metrics.settled.inc();
      } else if (event.eventName === "BillSkipped" && event.args.reason === 1) {
        this.store.markUnsettleable(period, event.args.customer.toLowerCase());
        this.app.log.error({ period, customer: event.args.customer }, "the vault refuses a period this old");
      }
    }
  }

  /** A bill already settled on-chain: its BillSettled event, by customer and period (both indexed). */
  private async recordFromChain(bill: BillRow, index: number): Promise<void> {
    const logs = await this.client.getContractEvents({
      address: this.vault,
      abi: paymentVaultAbi,
      eventName: "BillSettled",
      args: { customer: bill.customer as Address, period: BigInt(index) },
      fromBlock: this.vaultBlock,
      toBlock: "latest",
    });
    const log = logs[0];
    if (!log) return; // not visible yet on this node: next pass
    this.recordFromLogs(bill.period, [log], log.transactionHash!);
  }

  // ------------------------------------------------------------------------------------------ HTTP

  private createMetrics() {
    const registry = this.registry;
    const gauge = (name: string, help: string, read: () => number) =>
      new Gauge({
        name,
        help,
        registers: [registry],
        collect() {
          this.set(read());
        },
      });
    gauge("edge_billing_last_closed_period", "Index of the latest period closed into bills", () => {
      return this.store.lastClosedIndex() ?? -1;
    });
    gauge("edge_billing_pending_transactions", "Settlement transactions sent and not yet mined", () => {
      return this.sender?.pending().length ?? 0;
    });
    gauge("edge_billing_unsettled_periods", "Closed periods with bills still to settle", () => {
      return this.store.unsettledPeriods().length;
    });
    gauge("edge_billing_sync_staleness_seconds", "Seconds since the chain view last synced", () => {
      return (this.view.status().stalenessMs ?? NaN) / 1000;
    });
    gauge("edge_billing_sessions", "Customer sessions (bearer tokens) alive", () => this.sessions.size);
    const counter = (name: string, help: string, labelNames: string[] = []) =>
      new Counter({ name, help, labelNames, registers: [registry] });
    return {
      records: counter("edge_billing_records_total", "Usage records by outcome", ["outcome"]),
      batches: counter("edge_billing_usage_batches_total", "Usage batches by outcome", ["outcome"]),
      bills: counter("edge_billing_bills_total", "Bills produced, by status at close", ["status"]),
      settled: counter("edge_billing_bills_settled_total", "Bills settled on-chain"),
      charged: counter("edge_billing_charged_tokens_total", "Tokens charged by settled bills"),
      shortfall: counter(
        "edge_billing_shortfall_tokens_total",
        "Tokens of settled bills that balances could not cover",
      ),
      logins: counter("edge_billing_logins_total", "Customer sign-ins by outcome", ["outcome"]),
    };
  }

  /** The gateway must be bound to a gateway stake that is admitted now (in the confirmed chain view). */
  private requireAdmittedGateway(device: string): void {
    const stake = this.view.map.stakeOfDevice(device);
    if (!stake || stake.stakeType !== StakeType.Gateway || stake.phase === "released")
      throw billingError("BILLING_SENDER_NOT_STAKED", `${device} holds no gateway stake`);
    if (!this.view.map.isAdmitted(device))
      throw billingError("BILLING_SENDER_NOT_ADMITTED", `${device}'s gateway stake is not admitted`);
  }

  /** The customer a bearer token belongs to; 401 without a live token, 403 for another customer's data. */
  private authorize(request: FastifyRequest, customer: string): void {
    const header = (request.headers as { authorization?: string }).authorization ?? "";
    const match = /^Bearer ([A-Za-z0-9_-]{20,100})$/.exec(header);
    const session = match ? this.sessions.get(match[1]) : undefined;
    if (!session || session.expiresAt <= this.now()) {
      if (match && session) this.sessions.delete(match[1]);
      throw billingError("BILLING_UNAUTHORIZED", "sign in first: Authorization: Bearer <token> from /auth/login");
    }
    if (session.customer !== customer.toLowerCase())
      throw billingError("BILLING_FORBIDDEN", "this token belongs to another customer");
  }

  private routes(app: TypedApp): void {
    app.post(
      "/usage",
      {
        schema: {
          summary: "Submit a gateway's signed batch of usage records",
          body: UsageBatchBodySchema,
          response: {
            200: Type.Object({ accepted: Type.Integer(), duplicates: Type.Integer() }),
            "4xx": ErrorReplySchema,
          },
        },
      },
      async (request) => this.ingest(request.body),
    );

    app.post(
      "/auth/nonce",
      {
        schema: {
          summary: "Start a sign-in: the EIP-4361 message to sign with the customer's wallet",
          body: Type.Object({ address: AddressSchema }, { additionalProperties: false }),
          response: {
            200: Type.Object({ message: Type.String(), nonce: Type.String(), expiresAt: Type.String() }),
            "4xx": ErrorReplySchema,
          },
        },
      },
      async (request) => this.issueNonce(request.body.address),
    );

    app.post(
      "/auth/login",
      {
        schema: {
          summary: "Finish a sign-in with the signed message; returns a bearer token",
          body: Type.Object(
            { message: Type.String({ maxLength: 4096 }), signature: Type.String({ pattern: "^0x[0-9a-fA-F]{130}$" }) },
            { additionalProperties: false },
          ),
          response: {
            200: Type.Object({ token: Type.String(), customer: Type.String(), expiresAt: Type.String() }),
            "4xx": ErrorReplySchema,
          },
        },
      },
      async (request) => this.login(request.body as { message: string; signature: Hex }),
    );

    app.post(
      "/auth/logout",
      { schema: { summary: "End the session of the bearer token", headers: BearerHeader, security: [{ bearer: [] }] } },
      async (request) => {
        const token = /^Bearer (.+)$/.exec(request.headers.authorization ?? "")?.[1];
        const existed = token !== undefined && this.sessions.delete(token);
        if (!existed) throw billingError("BILLING_UNAUTHORIZED", "no session for this token");
        return { ok: true };
      },
    );

    app.get(
      "/customers/:customer/bills",
      {
        schema: {
          summary: "The customer's bills, newest last, with their settlement",
          params: CustomerParams,
          headers: BearerHeader,
          security: [{ bearer: [] }],
        },
      },
      async (request) => {
        const { customer } = request.params;
        this.authorize(request, customer);
        return { bills: this.store.customerBills(customer.toLowerCase()).map((row) => this.billSummary(row)) };
      },
    );

    app.get(
      "/customers/:customer/bills/:period",
      {
        schema: {
          summary: "One bill: the itemised bill exactly as hashed, its hash and its settlement",
          params: BillParams,
          headers: BearerHeader,
          security: [{ bearer: [] }],
        },
      },
      async (request) => {
        const { customer, period } = request.params;
        this.authorize(request, customer);
        const row = this.store.bill(period, customer.toLowerCase());
        if (!row) throw billingError("BILLING_NOT_FOUND", `no bill for ${customer} in period ${period}`);
        return { ...this.billSummary(row), bill: row.bill };
      },
    );

    app.get(
      "/customers/:customer/usage",
      {
        schema: {
          summary: "The customer's usage in the current period so far, priced as its bill would be",
          params: CustomerParams,
          headers: BearerHeader,
          security: [{ bearer: [] }],
        },
      },
      async (request) => {
        const { customer } = request.params;
        this.authorize(request, customer);
        const period = this.periodAt(this.now());
        const lines = this.openUsage.get(periodIndex(period))?.get(customer.toLowerCase());
        const totals = lines ? [...lines.values()] : [];
        const { billHash: _draft, ...bill } = makeBill(customer, period, totals, this.prices);
        return { period, ...periodWindowIso(period, this.scheme), draft: bill };
      },
    );

    app.get("/periods", { schema: { summary: "Closed periods and their settlement status" } }, async () => ({
      periods: this.store.periods().map((p) => this.periodSummary(p.period)),
    }));

    app.get(
      "/periods/:period",
      { schema: { summary: "A closed period: bill counts and totals (no customer data)", params: PeriodParams } },
      async (request) => {
        const { period } = request.params;
        if (!this.store.period(period)) throw billingError("BILLING_NOT_FOUND", `period ${period} is not closed`);
        return this.periodSummary(period);
      },
    );
  }

  private periodSummary(period: string) {
    const row = this.store.period(period)!;
    const bills = this.store.bills(period);
    const sum = (pick: (b: BillRow) => bigint | null) => bills.reduce((s, b) => s + (pick(b) ?? 0n), 0n).toString();
    const count = (status: string) => bills.filter((b) => b.status === status).length;
    return {
      period,
      index: row.index,
      status: row.status,
      closedAt: new Date(row.closedAt).toISOString(),
      settledAt: row.settledAt === null ? null : new Date(row.settledAt).toISOString(),
      bills: bills.length,
      zero: count("zero"),
      due: count("due"),
      settled: count("settled"),
      unsettleable: count("unsettleable"),
      total: sum((b) => b.total),
      charged: sum((b) => b.charged),
      shortfall: sum((b) => b.shortfall),
    };
  }

  private billSummary(row: BillRow) {
    return {
      period: row.period,
      total: row.total.toString(),
      billHash: row.bill.billHash,
      status: row.status,
      charged: row.charged?.toString() ?? null,
      shortfall: row.shortfall?.toString() ?? null,
      txHash: row.txHash,
    };
  }

  // ------------------------------------------------------------------------------------------ ingestion

  private async ingest(body: UsageBatchBody): Promise<{ accepted: number; duplicates: number }> {
    if (!(await verifyUsageBatch(this.chainId, body)))
      throw billingError("BILLING_BAD_SIGNATURE", "the usage batch is not signed by its gateway");
    this.requireAdmittedGateway(body.gateway);
    const gateway = body.gateway.toLowerCase();
    const latest = this.now() + this.config.maxSkewSeconds * 1000;
    const periods = new Map<string, number>();
    const records = body.records.map((r, i) => {
      const where = `records[${i}]`;
      if (r.gateway.toLowerCase() !== gateway)
        throw billingError("BILLING_RECORD_GATEWAY_MISMATCH", `${where}: gateway ${r.gateway} is not the sender`);
      if (!priceOf(this.prices, r.service, r.metric))
        throw billingError(
          "BILLING_UNKNOWN_PRICE",
          `${where}: no price for service "${r.service}", metric "${r.metric}"`,
        );
      if (r.time > latest) throw billingError("BILLING_TIME_IN_FUTURE", `${where}: time ${r.time} is in the future`);
      const quantity = BigInt(r.quantity);
      if (quantity > MAX_INT64)
        throw billingError("BILLING_QUANTITY_TOO_LARGE", `${where}: quantity ${quantity} exceeds 2^63 - 1`);
      const id = this.periodAt(r.time);
      let index = periods.get(id);
      if (index === undefined) periods.set(id, (index = periodIndex(id)));
      return {
        id: r.id,
        gateway,
        customer: r.customer.toLowerCase(),
        service: r.service,
        metric: r.metric,
        quantity,
        time: r.time,
        period: index,
      };
    });
    // From here on synchronous: the closer cannot run between the check and the insert.
    for (const [id, index] of periods) {
      if (!this.isOpen(index)) throw billingError("BILLING_PERIOD_CLOSED", `period ${id} is closed: no more usage`);
    }
    const outcome = this.store.insertRecords(records, this.now());
    if ("conflict" in outcome) {
      throw billingError(
        "BILLING_RECORD_CONFLICT",
        `record id "${outcome.conflict}" was accepted before with other content`,
      );
    }
    for (const record of outcome.fresh)
      this.addOpenUsage((record as ParsedRecord & { period: number }).period, [record]);
    this.metrics.batches.inc({ outcome: "accepted" });
    this.metrics.records.inc({ outcome: "accepted" }, outcome.accepted);
    this.metrics.records.inc({ outcome: "duplicate" }, outcome.duplicates);
    return { accepted: outcome.accepted, duplicates: outcome.duplicates };
  }

  // ------------------------------------------------------------------------------------------ sign-in

  private issueNonce(address: string): { message: string; nonce: string; expiresAt: string } {
    const now = this.now();
    for (const [nonce, entry] of this.nonces) if (entry.expiresAt <= now) this.nonces.delete(nonce);
    const nonce = generateSiweNonce();
    const expiresAt = now + NONCE_TTL_MS;
    this.nonces.set(nonce, { address: address.toLowerCase(), expiresAt });
    const message = createSiweMessage({
      domain: this.config.domain,
      address: getAddress(address),
      statement: "Sign in to Edge Network billing to see your bills and usage.",
      uri: `https://${this.config.domain}`,
      version: "1",
      chainId: this.chainId,
      nonce,
      issuedAt: new Date(now),
      expirationTime: new Date(expiresAt),
    });
    return { message, nonce, expiresAt: new Date(expiresAt).toISOString() };
  }

  private async login(body: { message: string; signature: Hex }): Promise<{
    token: string;
    customer: string;
    expiresAt: string;
  }> {
    const fail = (why: string): never => {
      this.metrics.logins.inc({ outcome: "rejected" });
      throw billingError("BILLING_BAD_LOGIN", why);
    };
    const fields = parseSiweMessage(body.message);
    if (!fields.address || !fields.nonce || !fields.domain || !fields.expirationTime)
      return fail("not a sign-in message from /auth/nonce");
    if (fields.domain !== this.config.domain)
      return fail(`the message is for ${fields.domain}, not ${this.config.domain}`);
    if (fields.chainId !== this.chainId) return fail(`the message is for chain ${fields.chainId}, not ${this.chainId}`);
    const now = this.now();
    if (fields.expirationTime.getTime() <= now) return fail("the message has expired");
    const nonce = this.nonces.get(fields.nonce);
    if (!nonce || nonce.expiresAt <= now) {
      this.metrics.logins.inc({ outcome: "rejected" });
      throw billingError("BILLING_NONCE_USED", "unknown, used or expired nonce: ask /auth/nonce for a new one");
    }
    if (nonce.address !== fields.address.toLowerCase()) return fail("the nonce was issued to another address");
    let signer: Address;
    try {
      signer = await recoverMessageAddress({ message: body.message, signature: body.signature });
    } catch {
      signer = "0x0000000000000000000000000000000000000000";
    }
    if (signer !== getAddress(fields.address)) {
      this.metrics.logins.inc({ outcome: "rejected" });
      throw billingError("BILLING_BAD_SIGNATURE", "the message is not signed by its address");
    }
    this.nonces.delete(fields.nonce); // single use: a replayed login finds no nonce
    const token = randomBytes(32).toString("base64url");
    const expiresAt = now + this.config.tokenTtlSeconds * 1000;
    const customer = fields.address.toLowerCase();
    this.sessions.set(token, { customer, expiresAt });
    for (const [t, s] of this.sessions) if (s.expiresAt <= now) this.sessions.delete(t);
    this.metrics.logins.inc({ outcome: "accepted" });
    return { token, customer, expiresAt: new Date(expiresAt).toISOString() };
  }
}

function periodWindowIso(period: string, scheme: PeriodScheme): { start: string; end: string } {
  const { startMs, endMs } = periodWindow(period, scheme);
  return { start: new Date(startMs).toISOString(), end: new Date(endMs).toISOString() };
}
