import { expect } from "chai";
import fc from "fast-check";
import { type IncomingMessage, type Server, type ServerResponse, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { Address, Hex, LocalAccount } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";

import { createTypedApp } from "../../offchain/common/http";
import { type Region, regionFields, signHello } from "../../offchain/common/protocol";
import type { Catalogue } from "../../node/context";
import {
  CatalogueProducer,
  type PeerVerdict,
  type VerdictSet,
  majority,
  signVerdicts,
  verifyVerdicts,
} from "../../node/roles/stargate/catalogue";
import { type CheckResult, HealthChecker, type HealthTarget } from "../../node/roles/stargate/health";
import type { HelloProof, ProvenHellos } from "../../node/roles/stargate/helloProofs";

const CHAIN_ID = 31337;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const device = (): Address => privateKeyToAccount(generatePrivateKey()).address;
const signer = () => ({ account: privateKeyToAccount(generatePrivateKey()), chainId: CHAIN_ID });

/** `key`'s hello for `role` at `url`, signed over `stargate`'s challenge, as the stargate keeps it. */
async function helloOf(
  key: LocalAccount,
  stargate: Address,
  url: string,
  role = "host" as const,
  region?: Region,
): Promise<HelloProof> {
  const nonce = generatePrivateKey() as Hex;
  const hello = { role, url, ...regionFields(region), version: 1, seq: 0 };
  const signature = await signHello(key, CHAIN_ID, hello, { stargate, nonce });
  return { stargate, version: 1, seq: 0, nonce, signature, ...(region ? { region } : {}) };
}

/** A stargate's proofs of `keys`' hellos at `urlOf` their address. */
async function proofsOf(keys: LocalAccount[], stargate: Address, urlOf: (d: Address) => string): Promise<ProvenHellos> {
  const entries = await Promise.all(
    keys.map(async (k) => {
      const url = urlOf(k.address);
      return [k.address.toLowerCase(), { role: "host" as const, url, hello: await helloOf(k, stargate, url) }] as const;
    }),
  );
  return new Map(entries);
}

type Mode = "ready" | "not-ready" | "hang" | "flap";

/** A real endpoint on its own loopback address answering /health and /ready as `mode` says. */
class Endpoint {
  mode: Mode;
  readyHits = 0;
  healthHits = 0;
  connections = 0;
  readonly arrivals: number[] = [];
  readonly server: Server;
  url = "";

  constructor(
    mode: Mode,
    readonly host: string,
  ) {
    this.mode = mode;
    this.server = createServer((req: IncomingMessage, res: ServerResponse) => this.answer(req, res));
    this.server.on("connection", () => this.connections++);
  }

  private answer(req: IncomingMessage, res: ServerResponse): void {
    if (req.url === "/health") {
      this.healthHits++;
      res.end('{"ok":true}');
      return;
    }
    this.readyHits++;
    this.arrivals.push(performance.now());
    if (this.mode === "hang") return;
    const ready = this.mode === "ready" || (this.mode === "flap" && this.readyHits % 2 === 0);
    res.statusCode = ready ? 200 : 503;
    res.end(ready ? '{"ready":true}' : '{"ready":false,"reason":"draining"}');
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, this.host, resolve));
    this.url = `http://${this.host}:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

describe("Stargate health (D55)", function () {
  this.timeout(30_000);
  const endpoints: Endpoint[] = [];
  const checkers: HealthChecker[] = [];
  const endpoint = async (mode: Mode) => {
    const e = await new Endpoint(mode, `127.0.${10 + endpoints.length}.${1 + endpoints.length}`).start();
    endpoints.push(e);
    return e;
  };
  const checker = (opts: ConstructorParameters<typeof HealthChecker>[0]) => {
    const c = new HealthChecker(opts);
    checkers.push(c);
    c.start();
    return c;
  };

  afterEach(async () => {
    await Promise.all(checkers.splice(0).map((c) => c.stop()));
    await Promise.all(endpoints.splice(0).map((e) => e.stop()));
  });

  describe("checker", () => {
    it("answers liveness, readiness, admission and version per endpoint from one GET /ready per check", async () => {
      const ready = await endpoint("ready");
      const notReady = await endpoint("not-ready");
      const hanging = await endpoint("hang");
      const unadmitted = await endpoint("ready");
      const down = await endpoint("ready");
      await down.stop();
      endpoints.splice(endpoints.indexOf(down), 1);
      const ids = [device(), device(), device(), device(), device()];
      const urls = [ready.url, notReady.url, hanging.url, unadmitted.url, down.url];
      const targets: HealthTarget[] = ids.map((d, i) => ({ device: d, role: "host", url: urls[i], version: i }));
      const results: CheckResult[] = [];
      const c = checker({
        targets: () => targets,
        admits: (d) => d !== ids[3],
        intervalMs: 200,
        timeoutMs: 150,
        onCheck: (_ms, result) => results.push(result),
      });
      await sleep(900);
      const [r, n, h, u, d] = ids.map((id, i) => {
        expect(c.verdict(id), `endpoint ${i} checked`).to.not.equal(undefined);
        return c.verdict(id)!;
      });
      expect(r).to.include({ live: true, ready: true, admitted: true, healthy: true, state: "healthy", version: 0 });
      expect(r.latencyMs).to.be.below(100);
      expect(n).to.include({ live: true, ready: false, healthy: false, state: "unhealthy" });
      expect(n.consecutiveFailures).to.be.at.least(2);
      expect(h).to.include({ live: false, ready: false, healthy: false, state: "unhealthy" });
      expect(u).to.include({ live: true, ready: true, admitted: false, healthy: false, state: "healthy" });
      expect(d).to.include({ live: false, ready: false, healthy: false, state: "unhealthy" });
      expect(results).to.include.members(["ready", "not_ready", "timeout", "unreachable"]);
      expect(ready.healthHits).to.equal(0);
      expect(ready.readyHits).to.be.within(3, 6);
    });

    it("turns unhealthy after 2 failed checks in a row, healthy after 2 passed, and calls a flapping endpoint unhealthy", async () => {
      const e = await endpoint("ready");
      const d = device();
      const changes: boolean[] = [];
      const c = checker({
        targets: () => [{ device: d, role: "gateway", url: e.url, version: 1 }],
        admits: () => true,
        intervalMs: 100,
        onChange: (v) => changes.push(v.healthy),
      });
      await sleep(250);
      expect(c.verdict(d)!.healthy).to.equal(true);
      e.mode = "not-ready";
      const failedFrom = e.readyHits;
      while (e.readyHits < failedFrom + 1) await sleep(10);
      await sleep(20);
      expect(c.verdict(d)!.healthy, "one failure is not enough").to.equal(true);
      while (c.verdict(d)!.consecutiveFailures < 2) await sleep(10);
      expect(c.verdict(d)!.healthy).to.equal(false);
      e.mode = "ready";
      while (c.verdict(d)!.consecutiveFailures > 0) await sleep(10);
      expect(c.verdict(d)!.healthy, "one success is not enough").to.equal(false);
      await sleep(150);
      expect(c.verdict(d)!.healthy).to.equal(true);
      expect(changes).to.deep.equal([true, false, true]);
      // Flapping: every other check fails, never 2 in a row, yet 4 of the last 8 fail.
      e.mode = "flap";
      await sleep(1_100);
      const v = c.verdict(d)!;
      expect(v.consecutiveFailures).to.be.at.most(1);
      expect(v.healthy).to.equal(false);
      expect(v.state).to.equal("unhealthy");
    });

    it("reuses one kept-alive connection per endpoint, spreads checks over the interval, and forgets endpoints that leave", async () => {
      const many = await Promise.all(Array.from({ length: 20 }, () => endpoint("ready")));
      let targets: HealthTarget[] = many.map((e) => ({ device: device(), role: "host", url: e.url, version: 0 }));
      const c = checker({ targets: () => targets, admits: () => true, intervalMs: 400 });
      await sleep(1_300);
      for (const e of many) {
        expect(e.connections).to.equal(1);
        expect(e.readyHits).to.be.within(3, 4);
      }
      // Spread: the 20 first checks fall over most of the interval, not in one burst.
      const firsts = many.map((e) => e.arrivals[0]).sort((a, b) => a - b);
      expect(firsts[firsts.length - 1] - firsts[0]).to.be.above(200);
      targets = targets.slice(0, 5);
      await sleep(1_100);
      expect(c.size()).to.equal(5);
      expect(c.verdicts()).to.have.length(5);
      const hits = many.map((e) => e.readyHits);
      await sleep(500);
      expect(many.slice(5).map((e, i) => e.readyHits - hits[i + 5])).to.deep.equal(new Array(15).fill(0));
    });
  });

  describe("majority rule", () => {
    const NOW = 1_000_000;
    const INTERVAL = 1_000;
    const opts = { nowMs: NOW, intervalMs: INTERVAL, admits: () => true };
    const DEVICES = Array.from({ length: 6 }, device).sort((a, b) => (a.toLowerCase() < b.toLowerCase() ? -1 : 1));
    const verdict = (d: Address, healthy: boolean, checkedAt = NOW - 10): PeerVerdict => ({
      device: d,
      role: "host",
      url: `http://${d.slice(2, 10)}.example:7000`,
      version: 3,
      healthy,
      checkedAt,
    });
    const setOf = (stargate: string, says: boolean[]): VerdictSet => ({
      stargate,
      verdicts: says.map((healthy, i) => verdict(DEVICES[i], healthy)),
    });
    const says = fc.array(fc.boolean(), { minLength: DEVICES.length, maxLength: DEVICES.length });
    const params = { seed: 17, numRuns: 200 };
    const health = (sets: VerdictSet[], o = opts) => majority(sets, o).map((e) => e.healthy);

    it("a single stargate alone decides for itself", () => {
      fc.assert(
        fc.property(says, (own) => {
          expect(health([setOf("a", own)])).to.deep.equal(own);
        }),
        params,
      );
    });

    it("with 3 stargates, one lying or down changes nothing the 2 honest ones agree on", () => {
      fc.assert(
        fc.property(says, says, fc.boolean(), (truth, lie, down) => {
          const honest = [setOf("a", truth), setOf("b", truth)];
          const liar = down ? [] : [setOf("c", lie)];
          expect(health([...honest, ...liar])).to.deep.equal(truth);
        }),
        params,
      );
    });

    it("healthy when at least as many fresh stargates say healthy as unhealthy (ties healthy)", () => {
      fc.assert(
        fc.property(fc.array(says, { minLength: 1, maxLength: 7 }), (sets) => {
          const got = health(sets.map((s, i) => setOf(`s${i}`, s)));
          const want = DEVICES.map((_, d) => 2 * sets.filter((s) => s[d]).length >= sets.length);
          expect(got).to.deep.equal(want);
        }),
        params,
      );
    });

    it("stale verdicts do not vote, one stargate votes once, and an endpoint the chain does not admit is unhealthy", () => {
      const d = DEVICES[0];
      const stale = NOW - 3 * INTERVAL;
      const sets: VerdictSet[] = [
        { stargate: "a", verdicts: [verdict(d, true)] },
        { stargate: "b", verdicts: [verdict(d, false, stale), verdict(DEVICES[1], false, stale)] },
        { stargate: "c", verdicts: [verdict(d, false), verdict(d, false), verdict(d, false)] },
        { stargate: "C", verdicts: [verdict(d, false)] },
      ];
      const got = majority(sets, opts);
      expect(got.map((e) => e.device)).to.deep.equal([d]);
      expect(got[0].healthy, "1 healthy against 1 unhealthy: tie").to.equal(true);
      expect(majority(sets, { ...opts, admits: () => false })[0].healthy).to.equal(false);
      // The own set's details win over a fresher peer's.
      const peer = { ...verdict(d, true, NOW - 1), url: "http://elsewhere.example", version: 9 };
      expect(majority([sets[0], { stargate: "b", verdicts: [peer] }], opts)[0]).to.include({
        url: sets[0].verdicts[0].url,
        version: 3,
      });
    });
  });

  describe("catalogue across stargates", () => {
    const apps: ReturnType<typeof createTypedApp>[] = [];
    const producers: CatalogueProducer[] = [];
    afterEach(async () => {
      await Promise.all(producers.splice(0).map((p) => p.close()));
      await Promise.all(apps.splice(0).map((a) => a.close()));
    });

    /** A stargate's HTTP app serving `producer`'s routes; returns its URL. */
    const serve = async (producer: CatalogueProducer) => {
      const app = createTypedApp({});
      producer.register(app);
      apps.push(app);
      return app.listen({ port: 0, host: "127.0.0.1" });
    };

    it("3 stargates: one lying is outvoted, one down stops counting, and the catalogue is published only on change", async () => {
      const keys = [signer(), signer(), signer()];
      const stargates = new Set(keys.map((k) => k.account.address));
      const targetKeys = [privateKeyToAccount(generatePrivateKey()), privateKeyToAccount(generatePrivateKey())];
      const targets = targetKeys.map((k) => k.address);
      const urlOf = (d: Address) => `http://${d.slice(2, 10)}.example:7000`;
      const hellos = await Promise.all(keys.map((k) => proofsOf(targetKeys, k.account.address, urlOf)));
      const admits = (d: Address, role: string) => (role === "stargate" ? stargates.has(d) : targets.includes(d));
      const own = (healthy: boolean[]) => () =>
        targets.map((d, i) => ({
          device: d,
          role: "host" as const,
          url: urlOf(d),
          version: 1,
          healthy: healthy[i],
          checkedAt: Date.now(),
          live: true,
          ready: healthy[i],
          admitted: true,
          state: healthy[i] ? ("healthy" as const) : ("unhealthy" as const),
          latencyMs: 1,
          consecutiveFailures: 0,
        }));
      const says = [
        [true, false],
        [true, false],
        [false, true], // the liar
      ];
      const published: Catalogue[][] = [[], [], []];
      const make = (i: number, peers: string[]) =>
        new CatalogueProducer({
          signer: keys[i],
          admits,
          ownVerdicts: own(says[i]),
          helloProofs: () => hellos[i],
          peers,
          intervalMs: 1_000,
          publish: (c) => published[i].push(c),
        });
      // Peers' URLs are known only once they listen: the first two serve, the third fetches from them.
      const [p0, p1] = [make(0, []), make(1, [])];
      const urls = [await serve(p0), await serve(p1)];
      const liar = make(2, []);
      const liarUrl = await serve(liar);
      const deadUrl = "http://127.0.0.1:1";
      const p = make(0, [urls[1], liarUrl, deadUrl, urls[0]]);
      producers.push(p0, p1, liar, p);
      await p.pass();
      const got = p.catalogue().endpoints.map((e) => [e.device, e.healthy]);
      expect(got).to.have.deep.members(targets.map((t, i) => [t, says[0][i]]));
      const peers = p.status().peers as { url: string; error?: string; stargate?: string }[];
      expect(peers[1].stargate).to.equal(keys[2].account.address);
      expect(peers[2].error).to.be.a("string");
      expect(peers[3].error).to.equal("it is this stargate");
      expect(published[0]).to.have.length(1);
      p.rebuild();
      expect(published[0], "unchanged: not published again").to.have.length(1);
      expect(
        p
          .peerTargets()
          .map((t) => t.device)
          .sort(),
      ).to.deep.equal([...targets].sort());
    });

    it("R17-5: a peer's verdict naming a device with a URL the device never signed is not probed, nor counted", async () => {
      const [peerKey, own] = [signer(), signer()];
      const [real, unsigned, honest] = [0, 1, 2].map(() => privateKeyToAccount(generatePrivateKey()));
      const stargates = [peerKey.account.address, own.account.address];
      const admits = (d: Address, role: string) => (role === "stargate") === stargates.includes(d);
      const at = (d: Address, url: string) => ({
        ...{ device: d, role: "host" as const, url, version: 1, healthy: false, checkedAt: Date.now() },
        ...{ live: false, ready: false, admitted: true, state: "unhealthy" as const, latencyMs: 1 },
        consecutiveFailures: 2,
      });
      const evil = "http://198.51.100.7:80";
      const peerHello = (k: LocalAccount, url: string) => helloOf(k, peerKey.account.address, url);
      // The peer names `real` at an evil URL, with real's hello for its true URL; `unsigned` with no hello at all.
      const proofs: ProvenHellos = new Map([
        [real.address.toLowerCase(), { role: "host", url: evil, hello: await peerHello(real, "http://real.example") }],
        [honest.address.toLowerCase(), { role: "host", url: "http://h.example", hello: await peerHello(honest, "http://h.example") }], // prettier-ignore
      ]);
      const liar = new CatalogueProducer({
        signer: peerKey,
        admits,
        ownVerdicts: () => [at(real.address, evil), at(unsigned.address, evil), at(honest.address, "http://h.example")],
        helloProofs: () => proofs,
        peers: [],
        intervalMs: 1_000,
      });
      const liarUrl = await serve(liar);
      const p = new CatalogueProducer({ signer: own, admits, ownVerdicts: () => [], peers: [liarUrl], intervalMs: 1_000 }); // prettier-ignore
      producers.push(liar, p);
      await p.pass();
      expect(p.peerTargets()).to.deep.equal([
        { device: honest.address, role: "host", url: "http://h.example", version: 1 },
      ]);
      expect(p.catalogue().endpoints.map((e) => e.device)).to.deep.equal([honest.address]);
      expect((p.status().peers as { unproven?: number }[])[0].unproven).to.equal(2);
    });

    describe("peer verdicts refused", () => {
      const honest = signer();
      const INTERVAL = 1_000;
      const verdicts = (): PeerVerdict[] => [
        {
          device: device(),
          role: "host",
          url: "http://127.0.0.1:9",
          version: 2,
          healthy: false,
          checkedAt: Date.now(),
        },
      ];
      const verify = (body: unknown, admitted: string[] = [honest.account.address], nowMs = Date.now()) =>
        verifyVerdicts(JSON.parse(JSON.stringify(body)), {
          chainId: CHAIN_ID,
          admitsStargate: (s) => admitted.includes(s),
          nowMs,
          intervalMs: INTERVAL,
        });

      it("accepts a fresh body signed by the admitted stargate it names", async () => {
        const body = await signVerdicts(honest, Date.now(), verdicts());
        expect(await verify(body)).to.deep.include({ stargate: honest.account.address });
      });

      it("refuses a body signed by another key than the stargate it names, or with verdicts changed after signing", async () => {
        const forger = signer();
        const forged = { ...(await signVerdicts(forger, Date.now(), verdicts())), stargate: honest.account.address };
        expect(await verify(forged)).to.match(/not signed by/);
        const body = await signVerdicts(honest, Date.now(), verdicts());
        body.verdicts[0].healthy = true;
        expect(await verify(body)).to.match(/not signed by/);
      });

      it("refuses a body signed by a device the chain does not admit as a stargate", async () => {
        const body = await signVerdicts(honest, Date.now(), verdicts());
        expect(await verify(body, [])).to.match(/not an admitted stargate/);
      });

      it("refuses a stale body (3 intervals old) and one dated more than an interval ahead", async () => {
        const now = Date.now();
        expect(await verify(await signVerdicts(honest, now - 3 * INTERVAL, verdicts()), undefined, now)).to.match(
          /stale/,
        );
        expect(await verify(await signVerdicts(honest, now + 2 * INTERVAL, verdicts()), undefined, now)).to.match(
          /future/,
        );
        expect(await verify({ ...(await signVerdicts(honest, now, verdicts())), extra: 1 })).to.match(/schema/);
      });

      it("refuses an oversized answer and a peer that does not answer in time, keeping the others", async () => {
        const big = new CatalogueProducer({
          signer: honest,
          admits: () => true,
          ownVerdicts: () => [],
          peers: [],
          intervalMs: INTERVAL,
        });
        producers.push(big);
        const bigUrl = await serve(big);
        const silent = createServer(() => {});
        await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
        const silentUrl = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
        try {
          const p = new CatalogueProducer({
            signer: signer(),
            admits: () => true,
            ownVerdicts: () => [],
            peers: [bigUrl, silentUrl],
            intervalMs: INTERVAL,
            maxBodyBytes: 100,
            timeoutMs: 300,
          });
          producers.push(p);
          const started = Date.now();
          await p.pass();
          expect(Date.now() - started).to.be.below(1_500);
          const peers = p.status().peers as { error?: string }[];
          expect(peers[0].error).to.match(/over the 100/);
          expect(peers[1].error).to.be.a("string");
          expect(p.peerTargets()).to.deep.equal([]);
        } finally {
          silent.closeAllConnections();
          silent.close();
        }
      });
    });
  });
});
