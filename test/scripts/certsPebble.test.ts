/**
 * Certificates end to end against Pebble (issue 19 Deliver 3, D66), on real daemons (scripts/lib/rolloutNet.ts): the
 * chain, 2 stargates answering DNS for the site, gateway-1 on 127.0.0.11 and gateway-2 on 127.0.0.12 sharing the
 * front door port, which is Pebble's httpPort, the certificate service (offchain/certs, its own process, trusting
 * this run's Pebble root), every gateway with --certs and an HTTPS front door, and only gateway-1 with
 * --acme-directory. Pebble resolves challenge names through stargate-1's Edge DNS. gateway-1 is drained out of DNS
 * before it may order, so the validation request reaches gateway-2, which answers from the service.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";

import { expect } from "chai";
import { request } from "undici";
import { privateKeyToAccount } from "viem/accounts";

import { signCertRequest, type CertAction } from "../../offchain/common/protocol/certs";
import { login } from "../../offchain/rollout/queue";
import { type Pebble, pebbleInstalled, startPebble } from "../../scripts/lib/pebble";
import { askA } from "../../scripts/lib/rolloutLoad";
import { metricValue } from "../../scripts/lib/netDaemon";
import { ROLLOUT_USER, type RolloutNet, startRolloutNet, waitUntil } from "../../scripts/lib/rolloutNet";

const run = promisify(execFile);
const CHAIN_ID = 31337;
const GATEWAY_IPS = { "gateway-1": "127.0.0.11", "gateway-2": "127.0.0.12" } as const;

describe("certificates against Pebble through Edge DNS (test/scripts/certsPebble.test.ts)", function () {
  this.timeout(900_000);
  let net: RolloutNet;
  let pebble: Pebble | undefined;
  let rootFile: string;

  /** A request to the certificate service signed by `name`'s device key. */
  async function signed(
    name: string,
    method: string,
    path: string,
    action: CertAction,
    subject: string,
    body?: unknown,
  ) {
    const account = privateKeyToAccount(net.deviceKey(name));
    const headers = await signCertRequest(account, CHAIN_ID, action, subject, body ?? null);
    const response = await fetch(`${net.certsUrl}${path}`, {
      method,
      headers: { ...headers, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : undefined };
  }

  const gatewayMetrics = async (name: string) =>
    (await fetch(`${net.nodes.find((n) => n.name === name)!.url}/metrics`)).text();

  async function curlHttps(ip: string, hostname: string, path: string) {
    const url = `https://${hostname}:${net.tlsPort}${path}`;
    const args = [
      "-sS",
      "--max-time",
      "10",
      "--cacert",
      rootFile,
      "--resolve",
      `${hostname}:${net.tlsPort}:${ip}`,
      url,
    ];
    return run("curl", args).then(
      ({ stdout }) => ({ code: 0, stdout, stderr: "" }),
      (error: { code?: number; stdout?: string; stderr?: string }) => ({
        code: typeof error.code === "number" ? error.code : -1,
        stdout: error.stdout ?? "",
        stderr: error.stderr ?? "",
      }),
    );
  }

  before(async function () {
    if (!pebbleInstalled()) {
      // CI installs pebble (.ci/run); a machine without it skips rather than failing on a missing tool.
      this.skip();
    }
    net = await startRolloutNet({
      prepare: async ({ cdnPort, dnsServers, dir }) => {
        pebble = await startPebble({ httpPort: cdnPort, dnsServer: dnsServers[0] });
        rootFile = join(dir, "pebble-root.pem");
        writeFileSync(rootFile, await pebble.root());
      },
      certs: { args: () => ["--trust", rootFile] },
    });
  });

  after(async function () {
    await net?.close();
    await pebble?.stop();
  });

  it("a challenge written by gateway A (gateway-1) is answered by gateway B (gateway-2), for the site's Host only (R19-2)", async function () {
    const token = randomBytes(32).toString("base64url");
    const keyAuthorization = `${token}.${randomBytes(32).toString("base64url")}`;
    const put = await signed("gateway-1", "PUT", `/challenges/${token}`, "challenge.put", token, {
      domain: net.site,
      keyAuthorization,
    });
    expect(put.status, JSON.stringify(put.body)).to.be.oneOf([200, 201, 204]);
    const ask = async (host: string) => {
      const response = await request(
        `http://${GATEWAY_IPS["gateway-2"]}:${net.cdnPort}/.well-known/acme-challenge/${token}`,
        { headers: { host } },
      );
      return { status: response.statusCode, body: (await response.body.text()).trim() };
    };
    // Gateway B may still be taking the site's configuration on a loaded machine (CI once saw one 404): up to 10 s.
    let answer = await ask(net.site);
    for (const until = Date.now() + 10_000; answer.status !== 200 && Date.now() < until; answer = await ask(net.site))
      await new Promise((r) => setTimeout(r, 200));
    expect(answer, net.site).to.deep.equal({ status: 200, body: keyAuthorization });
    expect(await ask("unrelated.example.test")).to.deep.equal({ status: 404, body: "not a site of this gateway" });
    const unknown = randomBytes(32).toString("base64url");
    const missing = await request(
      `http://${GATEWAY_IPS["gateway-2"]}:${net.cdnPort}/.well-known/acme-challenge/${unknown}`,
      {
        headers: { host: net.site },
      },
    );
    await missing.body.dump();
    expect(missing.statusCode).to.equal(404);
    const removed = await signed("gateway-1", "DELETE", `/challenges/${token}`, "challenge.delete", token);
    expect(removed.status).to.equal(204);
  });

  it("gateway-1, drained out of DNS, orders the site's certificate from Pebble: the challenge is answered by gateway-2, and every gateway serves the site over HTTPS verifying against Pebble's root", async function () {
    const gateway1 = net.nodes.find((n) => n.name === "gateway-1")!;
    const token = await login(net.apiUrl, ROLLOUT_USER, net.password);
    // Refused (409 EDGE_NODE_LAST_GATEWAY) until the stargate's catalogue has seen gateway-2 healthy too: under
    // load that can come after both daemons are /ready. Any other refusal fails the test.
    const drain = await waitUntil("a drain not refused as the last gateway's", async () => {
      const reply = await fetch(`${net.apiUrl}/api/nodes/${gateway1.address.toLowerCase()}/drain`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}` },
      });
      const text = await reply.text();
      return reply.status === 409 && text.includes("EDGE_NODE_LAST_GATEWAY") ? false : { status: reply.status, text };
    });
    expect(drain.status, drain.text).to.equal(200);
    // Pebble asks stargate-1's DNS: wait until it (and the router) answer the site with gateway-2 only.
    const stargate1 = net.nodes.find((n) => n.name === "stargate-1")!;
    for (const [host, port] of [
      ["127.0.0.1", stargate1.dnsPort!],
      [net.router.host, net.router.port],
    ] as const)
      await waitUntil(`${host}:${port} answering the site with gateway-2 only`, async () => {
        const answer = await askA(host, port, net.site);
        return answer?.rcode === "NOERROR" && answer.addresses.join() === GATEWAY_IPS["gateway-2"];
      });
    const servedBefore = metricValue(await gatewayMetrics("gateway-2"), "edge_gateway_acme_challenges_total", {
      outcome: "served",
    });
    // Only now may gateway-1 order: restarted with the ACME directory (gateway-2 never gets one).
    await net.restart("gateway-1", ["--acme-directory", pebble!.directory, "--acme-ca", pebble!.caFile]);
    const issued = await waitUntil(
      "the service holding the site's certificate",
      async () => {
        const reply = await signed("gateway-2", "POST", "/certificates/query", "certificate.query", "", {
          domains: [net.site],
          have: [],
        });
        const entry = (reply.body?.certificates as Array<Record<string, unknown>> | undefined)?.[0];
        return entry?.status === "issued" ? entry : undefined;
      },
      240_000,
    ).catch((error: Error) => {
      throw new Error(
        `${error.message}\ngateway-1:\n${net.logOf("gateway-1")}\ncerts:\n${net.logOf("certs")}\npebble:\n${pebble!.output()}`,
      );
    });
    expect(issued.chain as string).to.match(/BEGIN CERTIFICATE/);
    const served = metricValue(await gatewayMetrics("gateway-2"), "edge_gateway_acme_challenges_total", {
      outcome: "served",
    });
    expect(served - servedBefore, "challenges gateway-2 served to Pebble").to.be.greaterThan(0);
    const servedByOrderer = metricValue(await gatewayMetrics("gateway-1"), "edge_gateway_acme_challenges_total", {
      outcome: "served",
    });
    expect(servedByOrderer, "challenges the drained gateway-1 served").to.equal(0);
    // gateway-1 placed the order (the only one with an ACME directory); gateway-2 placed none.
    const orders = async (name: string) =>
      metricValue(await gatewayMetrics(name), "edge_gateway_acme_orders_total", { outcome: "issued" });
    await waitUntil("gateway-1 counting its order issued", async () => (await orders("gateway-1")) > 0, 10_000);
    expect(await orders("gateway-2"), "orders gateway-2 placed").to.equal(0);

    for (const [name, ip] of Object.entries(GATEWAY_IPS)) {
      const result = await waitUntil(
        `${name} serving ${net.site} over HTTPS`,
        async () => {
          const answer = await curlHttps(ip, net.site, "/hello");
          return answer.code === 0 ? answer : undefined;
        },
        60_000,
      ).catch(async (error: Error) => {
        const last = await curlHttps(ip, net.site, "/hello");
        throw new Error(`${error.message}: curl exit ${last.code} ${last.stderr}\n${net.logOf(name)}`);
      });
      expect(result.stdout, name).to.equal("origin /hello\n");
      // A name the gateway holds no certificate for: the handshake is refused.
      expect((await curlHttps(ip, "unknown.rollout.test", "/hello")).code, `${name}: unknown SNI`).to.not.equal(0);
    }

    const metrics = await (await fetch(`${net.certsUrl}/metrics`)).text();
    const days = metricValue(metrics, "edge_cert_days_to_expiry", { domain: net.site });
    expect(days, "edge_cert_days_to_expiry{domain} on the service").to.be.greaterThan(0);
  });
});
