/**
 * Regions (D68): a node's region is signed where it travels (its configuration hello, the hello proofs relayed
 * in the stargates' verdicts, a host's registration), so nobody but the device can move it.
 */
import { expect } from "chai";
import * as grpc from "@grpc/grpc-js";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Registry } from "prom-client";
import { type Address, type Hex, type LocalAccount, zeroHash } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";

import { createTypedApp, errorHandler } from "../../offchain/common/http";
import { EdgeError } from "../../offchain/common/errors";
import { type Region, regionFields, signHello, signHostRegistration } from "../../offchain/common/protocol";
import { ConfigSubscriber } from "../../node/configSubscriber";
import {
  CLIENT_OPTIONS,
  type NodeMessage,
  type StargateMessage,
  type SubscribeClientCall,
  configStream,
} from "../../node/configWire";
import type { Catalogue, CatalogueEndpoint, StargateContext } from "../../node/context";
import { HostRegistry } from "../../node/roles/gateway/hosts";
import type { HostLink } from "../../node/roles/gateway/links";
import { NetworkApi } from "../../node/roles/stargate/api";
import { type RegionsView, regionsView } from "../../node/roles/stargate/apiRegions";
import { registerApiRoutes } from "../../node/roles/stargate/apiRoutes";
import { CatalogueProducer } from "../../node/roles/stargate/catalogue";
import { ConfigServer } from "../../node/roles/stargate/configServer";
import { ConfigStore } from "../../node/roles/stargate/configStore";
import type { HelloProof, ProvenHellos } from "../../node/roles/stargate/helloProofs";
import { CHAIN, silentLog, waitUntil } from "../shared/gatewayHarness";

const DE: Region = { country: "DE", region: "eu-central" };
const US: Region = { country: "US", region: "us-east" };
const account = () => privateKeyToAccount(generatePrivateKey());

describe("regions (D68)", function () {
  this.timeout(30_000);

  describe("the configuration hello", function () {
    const stargate = account();
    const admitted = new Set<string>();
    let dir: string;
    let server: ConfigServer;
    let target: string;
    const subscribers: ConfigSubscriber[] = [];

    before(async function () {
      dir = mkdtempSync(join(tmpdir(), "edge-regions-"));
      admitted.add(stargate.address.toLowerCase());
      const ctx = {
        signer: { account: stargate, chainId: CHAIN },
        log: silentLog,
        metrics: { registry: new Registry() },
        chainAdmits: (device: string) => admitted.has(device.toLowerCase()),
      } as unknown as StargateContext;
      server = new ConfigServer(ctx, new ConfigStore(join(dir, "config.sqlite")), {
        host: "127.0.0.1",
        port: 0,
        helloTimeoutMs: 2_000,
        failedHellosBurst: 1_000,
      });
      target = `127.0.0.1:${await server.start()}`;
    });

    after(async function () {
      for (const s of subscribers) await s.stop();
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    });

    /** Sends `key`'s hello (signed with `signed` as its region), as `edit` changes it; the call's end status. */
    async function rawHello(
      key: LocalAccount,
      signed: Region | undefined,
      edit: (hello: Record<string, unknown>) => Record<string, unknown>,
    ): Promise<grpc.StatusObject> {
      const { Client } = configStream();
      const raw = new Client(target, grpc.credentials.createInsecure(), CLIENT_OPTIONS);
      const call: SubscribeClientCall = raw.Subscribe();
      const ended = new Promise<grpc.StatusObject>((resolve) => call.on("status", resolve));
      call.on("error", () => undefined);
      call.on("data", async (message: StargateMessage) => {
        if (message.body !== "challenge") return;
        const challenge = {
          stargate: message.challenge.stargate as Address,
          nonce: `0x${message.challenge.nonce.toString("hex")}` as Hex,
        };
        const hello = { role: "gateway", url: "http://127.0.0.1:9", ...regionFields(signed), version: 0, seq: 0 };
        const signature = await signHello(key, CHAIN, hello, challenge);
        call.write({
          body: "hello",
          hello: edit({ ...hello, node: key.address, signature }),
        } as unknown as NodeMessage);
        setTimeout(() => call.cancel(), 1_000).unref(); // a hello taken leaves the call open: end it
      });
      const status = await ended;
      raw.close();
      return status;
    }

    it("a subscriber's --region is signed into its hello: the stargate's view and the catalogue it streams carry it", async function () {
      const node = account();
      admitted.add(node.address.toLowerCase());
      const catalogues: Catalogue[] = [];
      const sub = new ConfigSubscriber(
        { signer: { account: node, chainId: CHAIN }, log: silentLog },
        {
          role: "gateway",
          url: () => "http://127.0.0.1:9",
          region: DE,
          stargates: [target],
          anchor: {
            hashOf: async () => undefined,
            latest: async () => ({ version: 0, hash: zeroHash }),
            isDeltaSigner: async () => false,
          },
          isStargate: (address) => address === stargate.address,
          apply: () => undefined,
          applyCatalogue: (catalogue) => catalogues.push(catalogue),
        },
      );
      subscribers.push(sub);
      await sub.start();
      await waitUntil("subscribed", () => server.subscribers().some((s) => s.device === node.address && s.connected));
      expect(server.subscribers().find((s) => s.device === node.address)?.region).to.deep.equal(DE);
      expect(server.helloProofs().get(node.address.toLowerCase())?.hello.region).to.deep.equal(DE);
      const other = account().address;
      server.publishCatalogue({
        atMs: 1,
        endpoints: [
          { device: node.address, role: "gateway", url: "http://127.0.0.1:9", healthy: true, version: 0, region: DE },
          { device: other, role: "host", url: "http://127.0.0.1:8", healthy: true, version: 0 },
        ],
      });
      await waitUntil("catalogue", () => catalogues.length > 0);
      expect(catalogues.at(-1)!.endpoints[0].region).to.deep.equal(DE);
      expect(catalogues.at(-1)!.endpoints[1]).not.to.have.property("region");
    });

    it("a hello whose region was changed after signing, or signed by another key, is PERMISSION_DENIED", async function () {
      const node = account();
      admitted.add(node.address.toLowerCase());
      const moved = await rawHello(node, DE, (h) => ({ ...h, ...regionFields(US) }));
      expect(moved.code).to.equal(grpc.status.PERMISSION_DENIED);
      expect(moved.details).to.match(/not signed by/);
      const declared = await rawHello(node, undefined, (h) => ({ ...h, ...regionFields(DE) }));
      expect(declared.code).to.equal(grpc.status.PERMISSION_DENIED);
      const borrowed = await rawHello(account(), DE, (h) => ({ ...h, node: node.address }));
      expect(borrowed.code).to.equal(grpc.status.PERMISSION_DENIED);
      const honest = await rawHello(node, US, (h) => h);
      expect(honest.code).to.equal(grpc.status.CANCELLED); // taken: the client ended it
    });

    it('an invalid country ("EU", "ZZ", "de") or region name is INVALID_ARGUMENT with the reason, before admission or signature', async function () {
      const stranger = account(); // not admitted, and its signature is garbage: neither is looked at
      const cases: [Record<string, string>, RegExp][] = [
        [{ country: "EU", region: "eu-central" }, /hello's region: "EU" is not an ISO 3166-1 alpha-2 country code/],
        [{ country: "ZZ", region: "x" }, /"ZZ" is not an ISO 3166-1/],
        [{ country: "de", region: "eu-central" }, /"de" is not an ISO 3166-1/],
        [{ country: "DE", region: "" }, /"" is not a region name/],
        [{ country: "", region: "eu-central" }, /"" is not an ISO 3166-1/],
        [{ country: "DE", region: "EU Central" }, /is not a region name/],
      ];
      for (const [fields, reason] of cases) {
        const status = await rawHello(stranger, undefined, (h) => ({
          ...h,
          ...fields,
          signature: `0x${"11".repeat(65)}`,
        }));
        expect(status.code, JSON.stringify(fields)).to.equal(grpc.status.INVALID_ARGUMENT);
        expect(status.details).to.match(reason);
      }
    });
  });

  describe("hello proofs in the stargates' verdicts", function () {
    const producers: CatalogueProducer[] = [];
    const apps: ReturnType<typeof createTypedApp>[] = [];
    after(async function () {
      for (const p of producers) await p.close();
      for (const a of apps) await a.close();
    });

    async function helloOf(key: LocalAccount, stargate: Address, url: string, region?: Region): Promise<HelloProof> {
      const nonce = generatePrivateKey() as Hex;
      const hello = { role: "host", url, ...regionFields(region), version: 1, seq: 0 };
      const signature = await signHello(key, CHAIN, hello, { stargate, nonce });
      return { stargate, version: 1, seq: 0, nonce, signature, ...(region ? { region } : {}) };
    }

    it("a peer relaying a proof with another region than the device signed is not taken; the catalogue names the signed regions", async function () {
      const [peer, own] = [account(), account()];
      const [moved, honest, undeclared] = [account(), account(), account()];
      const stargates = [peer.address, own.address];
      const admits = (d: Address, role: string) => (role === "stargate") === stargates.includes(d);
      const at = (d: Address, url: string) => ({
        ...{ device: d, role: "host" as const, url, version: 1, healthy: true, checkedAt: Date.now() },
        ...{ live: true, ready: true, admitted: true, state: "healthy" as const, latencyMs: 1 },
        consecutiveFailures: 0,
      });
      const url = (d: Address) => `http://${d.slice(2, 10).toLowerCase()}.example`;
      // `moved` signed DE; the lying peer relays its proof saying US.
      const movedProof = { ...(await helloOf(moved, peer.address, url(moved.address), DE)), region: US };
      const proofs: ProvenHellos = new Map([
        [moved.address.toLowerCase(), { role: "host", url: url(moved.address), hello: movedProof }],
        [honest.address.toLowerCase(), { role: "host", url: url(honest.address), hello: await helloOf(honest, peer.address, url(honest.address), US) }], // prettier-ignore
        [undeclared.address.toLowerCase(), { role: "host", url: url(undeclared.address), hello: await helloOf(undeclared, peer.address, url(undeclared.address)) }], // prettier-ignore
      ]);
      const liar = new CatalogueProducer({
        signer: { account: peer, chainId: CHAIN },
        admits,
        ownVerdicts: () => [moved, honest, undeclared].map((k) => at(k.address, url(k.address))),
        helloProofs: () => proofs,
        peers: [],
        intervalMs: 1_000,
      });
      const app = createTypedApp({});
      liar.register(app);
      apps.push(app);
      const liarUrl = await app.listen({ port: 0, host: "127.0.0.1" });
      const p = new CatalogueProducer({ signer: { account: own, chainId: CHAIN }, admits, ownVerdicts: () => [], peers: [liarUrl], intervalMs: 1_000 }); // prettier-ignore
      producers.push(liar, p);
      await p.pass();
      expect((p.status().peers as { unproven?: number }[])[0].unproven).to.equal(1);
      const endpoints = p.catalogue().endpoints;
      expect(endpoints.map((e) => e.device)).to.have.members([honest.address, undeclared.address]);
      expect(endpoints.find((e) => e.device === honest.address)?.region).to.deep.equal(US);
      expect(endpoints.find((e) => e.device === undeclared.address)).not.to.have.property("region");
      // A stargate's own catalogue names its subscribers' regions from their hellos (checked when they came).
      liar.rebuild();
      expect(liar.catalogue().endpoints.find((e) => e.device === honest.address)?.region).to.deep.equal(US);
    });
  });

  describe("host registrations", function () {
    const gateway = account();
    const registry = () =>
      new HostRegistry({
        signer: { account: gateway, chainId: CHAIN },
        log: silentLog,
        chainAdmits: () => true,
        stale: () => false,
        serving: () => true,
      });
    const registration = (key: LocalAccount, region?: Region, timestamp = Date.now()) =>
      signHostRegistration(key, CHAIN, {
        gateway: gateway.address,
        url: "http://127.0.0.1:9",
        leaving: false,
        timestamp: BigInt(timestamp),
        region,
      });
    const refusal = (promise: Promise<unknown>) =>
      promise.then(
        () => expect.fail("registered"),
        (error: EdgeError<string>) => ({ code: error.code, message: error.message }),
      );

    it("the gateway keeps each host's signed region: on its link, in /hosts' entries and counted by region", async function () {
      const hosts = registry();
      const [de, us, none] = [account(), account(), account()];
      for (const [key, region] of [
        [de, DE],
        [us, US],
        [none, undefined],
      ] as const)
        await hosts.register(await registration(key, region));
      const link = { host: de.address, close() {} } as unknown as HostLink;
      hosts.attach(de.address, link);
      expect(link.region).to.deep.equal(DE);
      expect(hosts.routable().map(([host, entry]) => [host, entry.region])).to.deep.equal([[de.address, DE]]);
      expect(hosts.regions()).to.deep.equal({ "DE/eu-central": 1, "US/us-east": 1, undeclared: 1 });
    });

    it("a host registration with its region changed after signing is refused (EDGE_NODE_BAD_SIGNATURE)", async function () {
      const hosts = registry();
      const key = account();
      const signed = await registration(key, DE);
      for (const moved of [
        { ...signed, ...regionFields(US) },
        { ...signed, region: "eu-west" },
        { ...signed, ...regionFields(undefined) },
      ])
        expect(await refusal(hosts.register(moved))).to.include({ code: "EDGE_NODE_BAD_SIGNATURE" });
      const borrowed = { ...(await registration(account(), DE)), host: key.address };
      expect(await refusal(hosts.register(borrowed))).to.include({ code: "EDGE_NODE_BAD_SIGNATURE" });
      expect(await hosts.register(signed)).to.equal(key.address);
    });

    it('a host registration with an unassigned country ("EU", "ZZ") is EDGE_NODE_BAD_REGION before its signature is checked', async function () {
      const hosts = registry();
      const signed = await registration(account(), DE);
      for (const country of ["EU", "ZZ", "UK"]) {
        const got = await refusal(hosts.register({ ...signed, country, signature: `0x${"11".repeat(65)}` }));
        expect(got.code, country).to.equal("EDGE_NODE_BAD_REGION");
        expect(got.message).to.include(`"${country}" is not an ISO 3166-1 alpha-2 country code`);
      }
      const half = await refusal(hosts.register({ ...signed, region: "" }));
      expect(half.code).to.equal("EDGE_NODE_BAD_REGION");
    });
  });

  describe("GET /api/regions", function () {
    const stargate = account();
    const [gwDe, gwUs, hostDe, hostNone, evicted] = [account(), account(), account(), account(), account()];
    const ep = (key: LocalAccount, role: CatalogueEndpoint["role"], healthy: boolean, region?: Region) => ({
      device: key.address,
      role,
      url: `http://${key.address.slice(2, 8).toLowerCase()}.example:7000`,
      healthy,
      version: 1,
      ...(region ? { region } : {}),
    });
    const endpoints: CatalogueEndpoint[] = [
      ep(gwDe, "gateway", true, DE),
      ep(gwUs, "gateway", false, US),
      ep(hostDe, "host", true, DE),
      ep(hostNone, "host", true),
      ep(evicted, "host", false, DE),
      ep(stargate, "stargate", true, US),
    ];
    const admits = (d: Address) => d !== evicted.address;
    let app: ReturnType<typeof createTypedApp>;

    before(async function () {
      app = createTypedApp({ logger: false });
      app.setErrorHandler(errorHandler({ codePrefix: "EDGE_NODE" }));
      const api = new NetworkApi({
        ctx: { signer: { account: stargate, chainId: CHAIN }, log: app.log, chainAdmits: (d) => admits(d as Address) },
        users: undefined,
        tokenTtlMs: 600_000,
        peers: [],
        publicUrl: () => "http://stargate.example:8080",
        authority: () => undefined,
        configSigner: () => undefined,
        anchor: undefined,
        effectiveConfig: () => undefined,
        catalogue: () => ({ atMs: 7, endpoints }),
      });
      registerApiRoutes(app, api);
      await app.ready();
    });
    after(() => app.close());

    async function walletToken(who: LocalAccount): Promise<string> {
      const nonce = (await app.inject({ url: `/api/nonce?address=${who.address}` })).json().message as string;
      const payload = { message: nonce, signature: await who.signMessage({ message: nonce }) };
      return (await app.inject({ method: "POST", url: "/api/login/wallet", payload })).json().token;
    }

    it("groups the catalogue's admitted endpoints by their signed region and role, undeclared last; needs a token", async function () {
      expect((await app.inject({ url: "/api/regions" })).statusCode).to.equal(401);
      const token = await walletToken(account());
      const r = await app.inject({ url: "/api/regions", headers: { authorization: `Bearer ${token}` } });
      expect(r.statusCode).to.equal(200);
      const view = r.json() as RegionsView;
      expect(view.atMs).to.equal(7);
      expect(Object.keys(view.regions)).to.deep.equal(["DE/eu-central", "US/us-east", "undeclared"]);
      const de = view.regions["DE/eu-central"];
      expect(de).to.include({ country: "DE", region: "eu-central" });
      expect(de.gateway).to.deep.include({ count: 1, healthy: 1, truncated: false });
      expect(de.gateway.endpoints).to.deep.equal([{ device: gwDe.address, url: ep(gwDe, "gateway", true).url, healthy: true }]); // prettier-ignore
      expect(de.host.endpoints.map((e) => e.device)).to.deep.equal([hostDe.address]); // the evicted one is left out
      expect(view.regions["US/us-east"].gateway).to.deep.include({ count: 1, healthy: 0 });
      expect(view.regions["US/us-east"].stargate.count).to.equal(1);
      expect(view.regions.undeclared.host.endpoints.map((e) => e.device)).to.deep.equal([hostNone.address]);
      expect(view.regions.undeclared).not.to.have.property("country");
      const bad = await app.inject({ url: "/api/regions?limit=0", headers: { authorization: `Bearer ${token}` } });
      expect(bad.statusCode).to.equal(400);
    });

    it("is bounded: at most `limit` endpoints listed per region and role, with the counts and `truncated`", function () {
      const many = Array.from({ length: 250 }, () => ({ ...ep(account(), "host", true, DE) }));
      const view = regionsView({ atMs: 1, endpoints: many }, () => true);
      expect(view.regions["DE/eu-central"].host).to.deep.include({ count: 250, healthy: 250, truncated: true });
      expect(view.regions["DE/eu-central"].host.endpoints).to.have.length(100);
      const listed = view.regions["DE/eu-central"].host.endpoints.map((e) => e.device);
      expect(listed).to.deep.equal([...listed].sort((a, b) => a.localeCompare(b)));
      expect(regionsView({ atMs: 1, endpoints: many }, () => true, 1_000).regions["DE/eu-central"].host.truncated).to.equal(false); // prettier-ignore
      expect(regionsView(undefined, () => true)).to.deep.equal({ atMs: 0, regions: {} });
    });
  });
});
