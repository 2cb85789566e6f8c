/**
 * The gateway under attack (issue 15: F1, F5, F9 and the host-registration replay): a customer's signed job
 * re-sent with a re-encoded signature or all at once, a host's old registration replayed after the gateway
 * forgot the host, floods of distinct signed messages, and a staked host that answers made-up results. The
 * gateway's classes run with their real protocol code; the chain's answers (admission, standing) come from the
 * test, and hosts are real links (HTTP/2 over the connection each host opens), one of them dishonest.
 */
import { expect } from "chai";
import { Counter, Registry } from "prom-client";
import type { Address, Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";

import { isEdgeError } from "../../offchain/common/errors";
import { type SignedJobRequest, signHostRegistration, signJobRequest } from "../../offchain/common/protocol";
import { Customers } from "../../node/roles/gateway/customers";
import { Dispatcher } from "../../node/roles/gateway/dispatch";
import { CONTENT_BAN_MS, HostRegistry, STRIKE_WINDOW_MS } from "../../node/roles/gateway/hosts";
import { JobFrontDoor } from "../../node/roles/gateway/jobs";
import { ReplayGuard } from "../../offchain/common/replayGuard";
import { runJob } from "../../node/roles/host/compute";
import type { JobHandler } from "../../node/roles/host/link";
import { VERIFY_ONE_IN, shouldVerify, wrongResult } from "../../node/roles/jobChecks";
import { WorkTracker } from "../../node/workTracker";
import { connectHost, hostAccount, startGatewayHarness } from "../shared/gatewayHarness";

const CHAIN = 31337;
const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
const gatewayKey = privateKeyToAccount(`0x${"51".repeat(32)}`);
const customer = privateKeyToAccount(`0x${"52".repeat(32)}`);
const VAULT = `0x${"66".repeat(20)}` as Address;
const silentLog = { info() {}, warn() {}, error() {}, debug() {}, child: () => silentLog } as never;

/** The same signature bytes re-encoded: v as 0/1, upper-case hex, or the high-s twin (n - s, v flipped). */
function reencode(signature: string, how: "v01" | "upper" | "highS"): Hex {
  const r = signature.slice(2, 66);
  const s = BigInt(`0x${signature.slice(66, 130)}`);
  const v = Number.parseInt(signature.slice(130), 16);
  if (how === "v01") return `0x${r}${s.toString(16).padStart(64, "0")}${(v - 27).toString(16).padStart(2, "0")}`;
  if (how === "upper") return `0x${signature.slice(2).toUpperCase()}`;
  const twin = (N - s).toString(16).padStart(64, "0");
  return `0x${r}${twin}${(v === 27 ? 28 : 27).toString(16)}`;
}

/** The code of the EdgeError `run` throws (fails the test when it resolves). */
async function codeOf(run: () => Promise<unknown>): Promise<string> {
  try {
    await run();
  } catch (error) {
    if (isEdgeError(error)) return `${error.status} ${error.code}`;
    throw error;
  }
  throw new Error("expected a refusal");
}

/** A Customers whose PaymentVault answers `standing` after `delayMs` (an RPC round trip). */
function customersWith(standing: () => boolean | Promise<boolean>, delayMs = 20, capacity?: number) {
  const contracts = {
    readContract: async () => {
      await new Promise((r) => setTimeout(r, delayMs));
      return standing();
    },
  };
  return new Customers(
    { signer: { account: gatewayKey, chainId: CHAIN }, contracts: contracts as never, paymentVault: VAULT },
    [],
    capacity,
  );
}

const job = (payload = "hello", rounds = 5) => ({ payload, rounds });
const sign = (body = job(), timestamp?: bigint): Promise<SignedJobRequest> =>
  signJobRequest(customer, CHAIN, gatewayKey.address, body, timestamp);

describe("gateway security: replays keyed on digests (F1, F5)", function () {
  it("F1: a re-encoded signature (v 0/1, upper-case hex, high-s) is refused: non-canonical forms 400, the same bytes 409", async function () {
    const customers = customersWith(() => true);
    const { headers, body } = await sign();
    await customers.admit(headers, body);
    const again = (signature: string, extra: Record<string, string> = {}) =>
      codeOf(() => customers.admit({ ...headers, ...extra, "x-edge-signature": signature }, body));
    const signature = headers["x-edge-signature"];
    // The old guard compared text: each of these was a fresh "signature" of the same request, served again.
    expect(await again(reencode(signature, "v01"))).to.equal("400 EDGE_NODE_NONCANONICAL_SIGNATURE");
    expect(await again(reencode(signature, "highS"))).to.equal("400 EDGE_NODE_NONCANONICAL_SIGNATURE");
    expect(await again(reencode(signature, "upper"))).to.equal("409 EDGE_NODE_REPLAYED");
    // Re-spelled headers sign the same digest: still the same request.
    expect(
      await again(signature, {
        "x-edge-timestamp": `00${headers["x-edge-timestamp"]}`,
        "x-edge-customer": customer.address.toLowerCase(),
      }),
    ).to.equal("409 EDGE_NODE_REPLAYED");
    // A new timestamp is a new request.
    const next = await sign(job(), BigInt(headers["x-edge-timestamp"]) + 1n);
    expect((await customers.admit(next.headers, next.body)).customer).to.equal(customer.address);
  });

  it("F5: ten identical requests at once are served exactly once", async function () {
    const customers = customersWith(() => true, 30);
    const { headers, body } = await sign(job("concurrent"));
    const outcomes = await Promise.allSettled(Array.from({ length: 10 }, () => customers.admit(headers, body)));
    const served = outcomes.filter((o) => o.status === "fulfilled");
    const refused = outcomes.flatMap((o) => (o.status === "rejected" ? [(o.reason as { code: string }).code] : []));
    expect(served).to.have.length(1);
    expect(refused).to.deep.equal(Array(9).fill("EDGE_NODE_REPLAYED"));
  });

  it("F5: a request refused before it is served (standing unknown, not in good standing) may be sent again", async function () {
    let answer: () => boolean = () => {
      throw new Error("rpc down");
    };
    const customers = customersWith(() => answer());
    const { headers, body } = await sign(job("retry"));
    expect(await codeOf(() => customers.admit(headers, body))).to.equal("503 EDGE_NODE_VIEW_STALE");
    answer = () => false;
    expect(await codeOf(() => customers.admit(headers, body))).to.equal("402 EDGE_NODE_CUSTOMER_NOT_ALLOWED");
    expect(customers.replayEntries).to.equal(0);
    await new Promise((r) => setTimeout(r, 5_100)); // the standing cache's 5 s
    answer = () => true;
    const admitted = await customers.admit(headers, body);
    expect(await codeOf(() => customers.admit(headers, body))).to.equal("409 EDGE_NODE_REPLAYED");
    admitted.release(); // e.g. no host could run it: not served, not billed
    await customers.admit(headers, body);
  }).timeout(15_000);

  it("F1: a flood of distinct signed requests fills the replay memory to its cap, then 503, never beyond", async function () {
    const customers = customersWith(() => true, 0, 40);
    const now = BigInt(Math.floor(Date.now() / 1000));
    const requests = await Promise.all(Array.from({ length: 60 }, (_, i) => sign(job(`flood ${i}`), now)));
    const codes: string[] = [];
    for (const { headers, body } of requests)
      codes.push(
        await customers.admit(headers, body).then(
          () => "ok",
          (e: { code: string }) => e.code,
        ),
      );
    expect(codes.filter((c) => c === "ok")).to.have.length(40);
    expect(codes.slice(40)).to.deep.equal(Array(20).fill("EDGE_NODE_REPLAY_MEMORY_FULL"));
    expect(customers.replayEntries).to.equal(40);
  });

  it("F1: replay memory entries expire with their timestamp's window, in time order, without a scan", function () {
    let now = 1_000_000_000_000;
    const guard = new ReplayGuard(3, () => now);
    expect(guard.reserve("a", now + 10_000)).to.equal("reserved");
    expect(guard.reserve("b", now + 20_000)).to.equal("reserved");
    expect(guard.reserve("c", now + 30_000)).to.equal("reserved");
    expect(guard.reserve("a", now + 30_000)).to.equal("seen");
    expect(guard.reserve("d", now + 30_000)).to.equal("full");
    now += 11_000;
    expect(guard.has("a")).to.equal(false);
    expect(guard.reserve("d", now + 30_000)).to.equal("reserved");
    guard.release("b");
    expect(guard.size).to.equal(2);
    now += 10 * 3600_000; // long idle: one visit per bucket, not per second
    expect(guard.size).to.equal(2);
    expect(guard.has("c")).to.equal(false);
    expect(guard.size).to.equal(0);
    // A flood of 200,000 digests: the cap holds, and the memory it takes is measured.
    const big = new ReplayGuard(200_000, () => now);
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < 200_000; i++)
      big.reserve(`0x${i.toString(16).padStart(64, "0")}`, now + 300_000 + (i % 600) * 1000);
    const perEntry = (process.memoryUsage().heapUsed - before) / 200_000;
    console.log(`      replay memory: ~${Math.round(perEntry)} bytes a digest`);
    expect(big.reserve(`0x${"f".repeat(64)}`, now + 1000)).to.equal("full");
    expect(big.size).to.equal(200_000);
  });
});

describe("gateway security: host registrations", function () {
  const hostKey = privateKeyToAccount(`0x${"53".repeat(32)}`);
  let now = Date.now();
  let admits = true;
  const registry = (capacity?: number) =>
    new HostRegistry(
      {
        signer: { account: gatewayKey, chainId: CHAIN },
        log: silentLog,
        chainAdmits: () => admits,
        stale: () => false,
        serving: () => true,
      },
      capacity,
      () => now,
    );
  const registration = (leaving: boolean, timestamp: number, account = hostKey) =>
    signHostRegistration(account, CHAIN, {
      gateway: gatewayKey.address,
      url: "http://127.0.0.1:9",
      leaving,
      timestamp: BigInt(timestamp),
    });

  it("F1: an old registration replayed after the host left, was pruned or was forgotten at eviction is refused", async function () {
    now = Date.now();
    admits = true;
    const hosts = registry();
    const old = await registration(false, now - 2_000);
    await hosts.register(old);
    await hosts.register(await registration(true, now - 1_000)); // the host leaves
    expect(await codeOf(() => hosts.register(old))).to.equal("409 EDGE_NODE_REPLAYED");
    const renewed = await registration(false, now);
    await hosts.register(renewed);
    hosts.clear(); // the gateway was evicted and forgot its routing table
    expect(await codeOf(() => hosts.register(renewed))).to.equal("409 EDGE_NODE_REPLAYED");
    expect(hosts.registered).to.equal(0);
    const signature = renewed.signature;
    expect(await codeOf(() => hosts.register({ ...renewed, signature: reencode(signature, "v01") }))).to.equal(
      "400 EDGE_NODE_NONCANONICAL_SIGNATURE",
    );
    await hosts.register(await registration(false, now + 1));
    expect(hosts.registered).to.equal(1);
  });

  it("F1: host replay memory is bounded: a flood of admitted hosts past the cap gets 503, and expired hosts are forgotten", async function () {
    now = Date.now();
    admits = true;
    const hosts = registry(5);
    const keys = Array.from({ length: 7 }, (_, i) => privateKeyToAccount(`0x${(0x70 + i).toString(16).repeat(32)}`));
    const codes: string[] = [];
    for (const key of keys)
      codes.push(
        await hosts.register(await registration(false, now, key)).then(
          () => "ok",
          (e) => e.code,
        ),
      );
    expect(codes).to.deep.equal([
      ...Array(5).fill("ok"),
      "EDGE_NODE_REPLAY_MEMORY_FULL",
      "EDGE_NODE_REPLAY_MEMORY_FULL",
    ]);
    expect(hosts.replayEntries).to.equal(5);
    now += 301_000; // every remembered timestamp has left the window
    await hosts.register(await registration(false, now, keys[6]));
    expect(hosts.replayEntries).to.equal(1);
    // Unadmitted devices never take room, and cost no signature recovery: a forged signature is not even read.
    admits = false;
    const forged = await registration(false, now, keys[5]);
    expect(await codeOf(() => hosts.register({ ...forged, signature: `0x${"00".repeat(65)}` }))).to.equal(
      "403 EDGE_NODE_HOST_NOT_ADMITTED",
    );
    expect(await codeOf(async () => hosts.register(await registration(false, now, keys[5])))).to.equal(
      "403 EDGE_NODE_HOST_NOT_ADMITTED",
    );
    await hosts.register(await registration(true, now, keys[5])); // a leave from a device never routed
    expect(hosts.replayEntries).to.equal(1);
  });
});

/** A host's job handler answering compute jobs with `answer(payload, rounds)`. */
function computeHandler(answer: (payload: string, rounds: number) => string): JobHandler {
  return (req, res) => {
    let data = "";
    req.on("data", (chunk) => (data += chunk));
    req.on("end", () => {
      const body = JSON.parse(data) as { jobId: string; payload: string; rounds: number };
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ jobId: body.jobId, result: answer(body.payload, body.rounds), host: VAULT }));
    });
  };
}

describe("gateway security: checked results (F9)", function () {
  const closing: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const close of closing.splice(0)) await close();
  });

  async function gatewayWith(answers: Array<(payload: string, rounds: number) => string>) {
    const gateway = await startGatewayHarness();
    closing.push(() => gateway.close());
    const devices: string[] = [];
    for (const [i, answer] of answers.entries()) {
      const key = hostAccount(0x90 + i);
      const link = await connectHost(gateway, key, computeHandler(answer));
      closing.unshift(() => link.leave());
      devices.push(key.address);
    }
    const hosts = gateway.hosts;
    const counted: string[] = [];
    const jobs = new Counter({ name: "jobs", help: "jobs", labelNames: ["outcome"] as const, registers: [] });
    const dispatcher = new Dispatcher(
      { metrics: { jobs } },
      hosts,
      gateway.queue,
      { count: (h) => counted.push(h) },
      5_000,
    );
    const billed: string[] = [];
    const customers = customersWith(() => true, 0);
    const door = new JobFrontDoor(
      {
        signer: { account: gatewayKey, chainId: CHAIN },
        serving: () => true,
        work: new WorkTracker(),
        metrics: { jobs, registry: new Registry() },
      },
      { customers, dispatcher, usage: { add: (c: string, what: string) => billed.push(`${c}:${what}`) } },
      10_000,
    );
    return { hosts, dispatcher, door, devices, counted, billed, jobs };
  }

  const honest = (payload: string, rounds: number) => runJob(payload, rounds);
  const cheat = () => `0x${"ab".repeat(32)}`;

  it("F9: a made-up result is not counted, billed or returned; the job goes to another host and the cheat is banned", async function () {
    const g = await gatewayWith([cheat, honest]);
    const request = await sign(job("checked", 300));
    const reply = await g.door.serve(request.headers, request.body);
    expect(reply.result).to.equal(runJob("checked", 300));
    expect(reply.host).to.equal(g.devices[1]);
    expect(g.counted).to.deep.equal([g.devices[1]]);
    expect(g.billed).to.deep.equal([`${customer.address}:jobs`, `${customer.address}:rounds`]);
    expect(g.hosts.bannedHosts().map((b) => b.host)).to.deep.equal([g.devices[0]]);
    expect(g.hosts.routable().map(([h]) => h)).to.deep.equal([g.devices[1]]);
    expect(g.dispatcher.checked).to.deep.equal({ verified: 2, wrong: 1 });
    expect((await g.jobs.get()).values.find((v) => v.labels.outcome === "wrong_result")?.value).to.equal(1);
    // The banned host cannot come back by registering again.
    const key = hostAccount(0x90);
    const back = await signHostRegistration(key, CHAIN, {
      gateway: gatewayKey.address,
      url: "http://127.0.0.1:9",
      leaving: false,
      timestamp: BigInt(Date.now() + 1),
    });
    expect(await codeOf(() => g.hosts.register(back))).to.equal("403 EDGE_NODE_HOST_BANNED");
  });

  it("F9: with only a cheating host the customer gets a 502, nothing is billed, and the signed request may be sent again", async function () {
    const g = await gatewayWith([cheat]);
    const request = await sign(job("only cheat", 10));
    expect(await codeOf(() => g.door.serve(request.headers, request.body))).to.equal("502 EDGE_NODE_HOST_FAILED");
    expect(g.counted).to.deep.equal([]);
    expect(g.billed).to.deep.equal([]);
    expect(await codeOf(() => g.door.serve(request.headers, request.body))).to.equal("503 EDGE_NODE_NO_HOSTS");
  });

  it("F9: small jobs are always recomputed, large ones sampled one in VERIFY_ONE_IN; malformed results always refused (cost measured)", async function () {
    expect(shouldVerify(1_000, () => 5)).to.equal(true);
    expect(shouldVerify(1_001, () => 5)).to.equal(false);
    expect(shouldVerify(1_001, () => 0)).to.equal(true);
    let sampled = 0;
    for (let i = 0; i < 8_000; i++) if (shouldVerify(10_000)) sampled += 1;
    expect(sampled).to.be.within(8_000 / VERIFY_ONE_IN - 200, 8_000 / VERIFY_ONE_IN + 200);
    expect(await wrongResult(job("x", 3), runJob("x", 3), true)).to.equal(undefined);
    expect(await wrongResult(job("x", 3), runJob("x", 4), true)).to.match(/not the job's digest/);
    expect(await wrongResult(job("x", 3), runJob("x", 3).toUpperCase(), false)).to.match(/lower-case hex/);
    runJob("warm up", 2_000);
    const started = process.hrtime.bigint();
    runJob("cost", 20_000);
    const usPerRound = Number(process.hrtime.bigint() - started) / 1e3 / 20_000;
    console.log(
      `      recompute cost: ${usPerRound.toFixed(2)} us a round (1,000 rounds: ${usPerRound.toFixed(2)} ms)`,
    );
  });
});

describe("gateway security: content strikes and countable hosts (D49: R4, R19)", function () {
  const honestHost = hostAccount(0x91);
  const other = hostAccount(0x92);

  /** A registry whose clock and admissions the test sets. */
  function registry() {
    const state = { now: Date.now(), admitted: new Set<string>([honestHost.address, other.address]) };
    const hosts = new HostRegistry(
      {
        signer: { account: gatewayKey, chainId: CHAIN },
        log: silentLog,
        chainAdmits: (device) => state.admitted.has(device),
        stale: () => false,
        serving: () => true,
      },
      100,
      () => state.now,
    );
    let tick = 0;
    const register = async (key = honestHost) =>
      hosts.register(
        await signHostRegistration(key, CHAIN, {
          gateway: gatewayKey.address,
          url: "http://127.0.0.1:9",
          leaving: false,
          timestamp: BigInt(state.now + ++tick),
        }),
      );
    return { hosts, state, register };
  }
  const strike = (at: number, url: string) => ({ at, jobId: `job-${url}`, reason: "other bytes", url });

  it("R4: one mismatch bans nobody; mismatches on 2 URLs within STRIKE_WINDOW_MS ban for CONTENT_BAN_MS, then the host links again", async function () {
    const { hosts, state, register } = registry();
    const t0 = state.now;
    expect(hosts.strike(honestHost.address, strike(t0, "/a"))).to.equal(false);
    expect(hosts.strike(honestHost.address, strike(t0 + 1, "/a")), "same URL again").to.equal(false);
    expect(hosts.bannedHosts()).to.deep.equal([]);
    expect(await register()).to.equal(honestHost.address);
    // An hour later the first strike is forgotten: one more URL is again a single strike.
    state.now = t0 + STRIKE_WINDOW_MS + 1;
    expect(hosts.strike(honestHost.address, strike(state.now, "/b"))).to.equal(false);
    expect(hosts.countable(honestHost.address)).to.equal(true);
    // A second URL within the window bans, for CONTENT_BAN_MS.
    state.now += 1_000;
    expect(hosts.strike(honestHost.address, strike(state.now, "/c"))).to.equal(true);
    const [ban] = hosts.bannedHosts();
    expect(ban).to.include({ host: honestHost.address, jobId: "job-/c", until: state.now + CONTENT_BAN_MS });
    expect(ban.reason).to.match(/wrong content on 2 URLs/);
    expect(await codeOf(register)).to.equal("403 EDGE_NODE_HOST_BANNED");
    expect(hosts.strike(honestHost.address, strike(state.now, "/d")), "already banned").to.equal(false);
    state.now += CONTENT_BAN_MS;
    expect(hosts.bannedHosts()).to.deep.equal([]);
    expect(await register()).to.equal(honestHost.address);
    expect(hosts.countable(honestHost.address)).to.equal(true);
  });

  it("R4: strikes are kept for admitted hosts only; a wrong compute result bans for good, even over a content ban", async function () {
    const { hosts, state } = registry();
    const stranger = hostAccount(0x93).address;
    for (const url of ["/a", "/b", "/c"]) expect(hosts.strike(stranger, strike(state.now, url))).to.equal(false);
    state.admitted.add(stranger);
    expect(hosts.strike(stranger, strike(state.now, "/d")), "nothing was remembered").to.equal(false);
    expect(hosts.strike(other.address, strike(state.now, "/a"))).to.equal(false);
    expect(hosts.strike(other.address, strike(state.now, "/b"))).to.equal(true);
    hosts.ban(other.address, { at: state.now, jobId: "compute-1", reason: "wrong result" });
    hosts.ban(honestHost.address, { at: state.now, jobId: "compute-2", reason: "wrong result" });
    state.now += 10 * CONTENT_BAN_MS;
    expect(hosts.bannedHosts().map((b) => [b.host, b.jobId, b.until])).to.deep.equal([
      [other.address, "compute-1", null],
      [honestHost.address, "compute-2", null],
    ]);
  });

  it("R19: countable is admitted and not banned, at the moment it is asked", async function () {
    const { hosts, state } = registry();
    expect(hosts.countable(honestHost.address)).to.equal(true);
    hosts.ban(honestHost.address, { at: state.now, jobId: "j", reason: "wrong result" });
    expect(hosts.countable(honestHost.address)).to.equal(false);
    expect(hosts.countable(other.address)).to.equal(true);
    state.admitted.delete(other.address);
    expect(hosts.countable(other.address)).to.equal(false);
  });
});
