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

import { createTypedApp } from "../../offchain/common/http";
import { type Region, regionFields, signHello } from "../../offchain/common/protocol";
import { ConfigSubscriber } from "../../node/configSubscriber";
import {
  CLIENT_OPTIONS,
  type NodeMessage,
  type StargateMessage,
  type SubscribeClientCall,
  configStream,
} from "../../node/configWire";
import type { Catalogue, StargateContext } from "../../node/context";
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
});
