import { expect } from "chai";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { Writable } from "node:stream";
import type { Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";

import { createTypedApp, type TypedApp } from "../../offchain/common/http";
import { type NetworkConfig, emptyConfig, issueToken } from "../../offchain/common/protocol";
import { StakeType } from "../../offchain/common/stakeMap";
import { clientKey } from "../../offchain/common/tokenBucket";
import type { AppliedConfig } from "../../node/context";
import { registerNodeRoutes } from "../../node/routes";
import { NetworkApi } from "../../node/roles/stargate/api";
import { registerApiRoutes } from "../../node/roles/stargate/apiRoutes";
import { hashPassword, parsePasswordHash } from "../../node/roles/stargate/passwords";
import { parseUsers } from "../../node/roles/stargate/users";

const CHAIN_ID = 31337;
const STARGATE_KEY = `0x${"5a".repeat(32)}` as Hex;
const OTHER_KEY = `0x${"6b".repeat(32)}` as Hex;
const stargate = privateKeyToAccount(STARGATE_KEY);
/** The configuration key (DELTA_SIGNER_ROLE): it signs password logins' tokens (R17-1). */
const configKey = privateKeyToAccount(`0x${"c0".repeat(32)}` as Hex);
const other = privateKeyToAccount(OTHER_KEY);
const alice = privateKeyToAccount(`0x${"a1".repeat(32)}` as Hex);
const bob = privateKeyToAccount(`0x${"b0".repeat(32)}` as Hex);
const PASSWORD = "correct horse battery staple 42";
const LOGN = 12; // the cheapest accepted cost keeps the tests fast; the format carries it

interface Harness {
  app: TypedApp;
  api: NetworkApi;
  logs: string[];
  clock: { t: number };
  config: { current: AppliedConfig | undefined };
  drained: number[];
  /** Delta signer lookups the verifier made (the anchor's). */
  signerReads: string[];
}

let dir: string;
before(async function () {
  dir = mkdtempSync(join(tmpdir(), "network-api-"));
  const users = {
    users: [
      {
        name: "ops",
        passwordHash: await hashPassword(PASSWORD, { logN: LOGN, r: 8, p: 1 }),
        scopes: ["blocklist:write", "tokens:revoke", "node:drain"],
      },
      { name: "viewer", passwordHash: await hashPassword("viewer-password", { logN: LOGN, r: 8, p: 1 }), scopes: [] },
    ],
  };
  writeFileSync(join(dir, "users.json"), JSON.stringify(users));
});
after(() => rmSync(dir, { recursive: true, force: true }));

const applied = (document: NetworkConfig): AppliedConfig => ({
  version: document.version,
  seq: 0,
  hash: `0x${"00".repeat(32)}`,
  document,
});

async function harness(
  login: ConstructorParameters<typeof NetworkApi>[0]["login"] = {},
  withKey = true,
  peers: string[] = [],
): Promise<Harness> {
  const logs: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      logs.push(chunk.toString());
      done();
    },
  });
  const app = createTypedApp({ logger: { level: "trace", stream } });
  const clock = { t: Date.UTC(2026, 10, 30, 12) };
  const config: { current: AppliedConfig | undefined } = { current: applied(emptyConfig(1)) };
  const signerReads: string[] = [];
  const api = new NetworkApi({
    ctx: {
      signer: { account: stargate, chainId: CHAIN_ID },
      log: app.log,
      chainAdmits: (d, t) => t === StakeType.Stargate && d.toLowerCase() === stargate.address.toLowerCase(),
    },
    users: join(dir, "users.json"),
    tokenTtlMs: 600_000,
    peers,
    publicUrl: () => "http://stargate.example:8080",
    authority: () => undefined,
    configSigner: () => (withKey ? configKey : undefined),
    // ConfigRegistry's answer, as ConfigAnchor gives it: only the configuration key holds DELTA_SIGNER_ROLE.
    anchor: {
      isDeltaSigner: async (address) => {
        signerReads.push(address);
        return address.toLowerCase() === configKey.address.toLowerCase();
      },
    },
    effectiveConfig: () => config.current,
    now: () => clock.t,
    login,
  });
  registerApiRoutes(app, api);
  const drained: number[] = [];
  registerNodeRoutes(app, {
    serving: () => true,
    notServingReason: () => "",
    status: () => ({}),
    registry: undefined as never,
    adminToken: undefined,
    tokens: api.verifier,
    drain: async () => {
      drained.push(clock.t);
      return { drained: true, inFlight: 0 };
    },
  });
  return { app, api, logs, clock, config, drained, signerReads };
}

async function call(
  h: Harness,
  method: "GET" | "POST" | "PUT" | "DELETE",
  url: string,
  body?: unknown,
  token?: string,
  remoteAddress = "127.0.0.1",
) {
  const response = await h.app.inject({
    method,
    url,
    payload: body as never,
    headers: token ? { authorization: `Bearer ${token}` } : {},
    remoteAddress,
  });
  return {
    status: response.statusCode,
    body: response.json() as Record<string, unknown> & { code?: string; error?: string },
  };
}

async function passwordToken(h: Harness, name = "ops", password = PASSWORD): Promise<string> {
  const r = await call(h, "POST", "/api/login", { name, password });
  expect(r.status, JSON.stringify(r.body)).to.equal(200);
  return r.body.token as string;
}

async function walletToken(h: Harness, who = alice): Promise<string> {
  const nonce = await call(h, "GET", `/api/nonce?address=${who.address}`);
  expect(nonce.status).to.equal(200);
  const message = nonce.body.message as string;
  const r = await call(h, "POST", "/api/login/wallet", { message, signature: await who.signMessage({ message }) });
  expect(r.status, JSON.stringify(r.body)).to.equal(200);
  return r.body.token as string;
}

/** The token with its claims replaced (signature kept). */
function withClaims(token: string, change: (claims: Record<string, unknown>) => void): string {
  const [payload, signature] = token.split(".");
  const claims = JSON.parse(Buffer.from(payload, "base64url").toString());
  change(claims);
  return `${Buffer.from(JSON.stringify(claims)).toString("base64url")}.${signature}`;
}

describe("Network API (stargate, app.inject)", function () {
  this.timeout(30_000);

  it("logs a user in with the right password; a wrong password and an unknown name get the same 401", async function () {
    const h = await harness();
    const token = await passwordToken(h);
    const me = await call(h, "GET", "/api/whoami", undefined, token);
    expect(me.status).to.equal(200);
    expect(me.body).to.include({ subject: "ops", issuer: configKey.address });
    expect(me.body.scopes).to.deep.equal(["blocklist:write", "tokens:revoke", "node:drain"]);
    const wrong = await call(h, "POST", "/api/login", { name: "ops", password: "wrong" });
    const unknown = await call(h, "POST", "/api/login", { name: "nobody", password: "wrong" });
    expect(wrong.status).to.equal(401);
    expect(unknown.body).to.deep.equal(wrong.body);
    expect(wrong.body.code).to.equal("EDGE_NODE_LOGIN_FAILED");
  });

  it("an unknown name costs a hash like a known one (no enumeration by time)", async function () {
    const h = await harness({ perClientPerMinute: 1000, perNamePerMinute: 1000 });
    const time = async (name: string) => {
      const t = process.hrtime.bigint();
      for (let i = 0; i < 4; i += 1) await call(h, "POST", "/api/login", { name, password: "wrong" });
      return Number(process.hrtime.bigint() - t) / 4e6;
    };
    await time("ops"); // warm-up (the decoy hash is made at start)
    const known = await time("ops");
    const unknown = await time("nobody");
    expect(unknown).to.be.greaterThan(known / 3);
    expect(unknown).to.be.lessThan(known * 3);
  });

  it("limits logins by user name and by client before hashing; a full hashing queue answers 503 at once", async function () {
    const h = await harness({ perNamePerMinute: 3, perClientPerMinute: 100 });
    for (let i = 0; i < 3; i += 1) await call(h, "POST", "/api/login", { name: "ops", password: "wrong" });
    const limited = await call(h, "POST", "/api/login", { name: "ops", password: PASSWORD });
    expect(limited.status).to.equal(429);
    expect(limited.body.code).to.equal("EDGE_NODE_LOGIN_RATE_LIMITED");
    // An unknown name is limited the same way (the limit says nothing about which names exist).
    for (let i = 0; i < 3; i += 1) await call(h, "POST", "/api/login", { name: "ghost", password: "x" });
    expect((await call(h, "POST", "/api/login", { name: "ghost", password: "x" })).status).to.equal(429);
    h.clock.t += 60_000;
    expect((await call(h, "POST", "/api/login", { name: "ops", password: PASSWORD })).status).to.equal(200);

    const byClient = await harness({ perClientPerMinute: 2, perNamePerMinute: 100 });
    await call(byClient, "POST", "/api/login", { name: "a", password: "x" });
    await call(byClient, "POST", "/api/login", { name: "b", password: "x" });
    const third = await call(byClient, "POST", "/api/login", { name: "c", password: "x" });
    expect(third.body.code).to.equal("EDGE_NODE_LOGIN_RATE_LIMITED");

    const busy = await harness({ parallel: 1, maxQueued: 2, perClientPerMinute: 100, perNamePerMinute: 100 });
    const answers = await Promise.all(
      Array.from({ length: 6 }, (_, i) => call(busy, "POST", "/api/login", { name: `u${i}`, password: "x" })),
    );
    const codes = answers.map((a) => a.body.code);
    expect(codes.filter((c) => c === "EDGE_NODE_LOGIN_BUSY")).to.have.length(3);
    expect(codes.filter((c) => c === "EDGE_NODE_LOGIN_FAILED")).to.have.length(3);
    expect(busy.api.passwords!.load).to.deep.equal({ running: 0, waiting: 0 });
  });

  it("never logs a password (nor the token), even at trace level and on refusals", async function () {
    const h = await harness();
    const token = await passwordToken(h);
    await call(h, "POST", "/api/login", { name: "ops", password: "wrong-secret-xyz" });
    await call(h, "POST", "/api/login", { name: "ops", password: 12345, extra: "wrong-secret-abc" });
    await call(h, "GET", "/api/whoami", undefined, token);
    const text = h.logs.join("");
    expect(text).to.include("/api/login");
    for (const secret of [PASSWORD, "wrong-secret-xyz", "wrong-secret-abc", token.split(".")[1]])
      expect(text).to.not.include(secret);
  });

  it("logs a wallet in (EIP-4361) with sites:write on its own sites, listed from the effective configuration", async function () {
    const h = await harness();
    const token = await walletToken(h);
    const me = await call(h, "GET", "/api/whoami", undefined, token);
    expect(me.body).to.include({ subject: alice.address.toLowerCase() });
    expect(me.body.scopes).to.deep.equal(["sites:write"]);
    const doc = emptyConfig(1);
    doc.sites = [
      { id: "alice-site", hostname: "a.example", owner: alice.address, origin: "http://127.0.0.1:1" },
      { id: "bob-site", hostname: "b.example", owner: bob.address, origin: "http://127.0.0.1:1" },
    ];
    h.config.current = applied(doc);
    const sites = await call(h, "GET", "/api/sites", undefined, token);
    expect((sites.body.sites as { id: string }[]).map((s) => s.id)).to.deep.equal(["alice-site"]);
    // A replayed sign-in finds its nonce used.
    const nonce = await call(h, "GET", `/api/nonce?address=${alice.address}`);
    const message = nonce.body.message as string;
    const signature = await alice.signMessage({ message });
    await call(h, "POST", "/api/login/wallet", { message, signature });
    expect((await call(h, "POST", "/api/login/wallet", { message, signature })).body.code).to.equal(
      "EDGE_NODE_NONCE_USED",
    );
    const forged = await call(h, "GET", `/api/nonce?address=${alice.address}`);
    const badSig = await bob.signMessage({ message: forged.body.message as string });
    const refused = await call(h, "POST", "/api/login/wallet", { message: forged.body.message, signature: badSig });
    expect(refused.body.code).to.equal("EDGE_NODE_BAD_SIGNATURE");
  });

  it("enforces scopes: 403 names the missing one; a customer cannot write another's site", async function () {
    const h = await harness();
    const customer = await walletToken(h);
    const viewer = await passwordToken(h, "viewer", "viewer-password");
    const block = await call(h, "POST", "/api/blocklist", { ipRange: "203.0.113.0/24" }, customer);
    expect(block.status).to.equal(403);
    expect(block.body).to.include({ code: "EDGE_NODE_SCOPE_MISSING", scope: "blocklist:write" });
    expect(block.body.error).to.include("blocklist:write");
    const site = await call(
      h,
      "PUT",
      "/api/sites/new",
      { hostname: "n.example", origin: "http://127.0.0.1:1" },
      viewer,
    );
    expect(site.body).to.include({ code: "EDGE_NODE_SCOPE_MISSING", scope: "sites:write" });

    const doc = emptyConfig(1);
    doc.sites = [{ id: "bob-site", hostname: "b.example", owner: bob.address, origin: "http://127.0.0.1:1" }];
    h.config.current = applied(doc);
    const overwrite = await call(
      h,
      "PUT",
      "/api/sites/bob-site",
      { hostname: "b.example", origin: "http://evil.example" },
      customer,
    );
    expect(overwrite.status).to.equal(403);
    expect(overwrite.body.code).to.equal("EDGE_NODE_SITE_NOT_OWNED");
    const asBob = await call(
      h,
      "PUT",
      "/api/sites/x",
      { hostname: "x.example", origin: "http://127.0.0.1:1", owner: bob.address },
      customer,
    );
    expect(asBob.body.code).to.equal("EDGE_NODE_SITE_NOT_OWNED");
    expect((await call(h, "DELETE", "/api/sites/bob-site", undefined, customer)).body.code).to.equal(
      "EDGE_NODE_SITE_NOT_OWNED",
    );
    const clash = await call(
      h,
      "PUT",
      "/api/sites/mine",
      { hostname: "b.example", origin: "http://127.0.0.1:1" },
      customer,
    );
    expect(clash.body.code).to.equal("EDGE_NODE_SITES_INVALID");
    // Its own site passes every check; with no configuration key and no peer the write answers 503 with why.
    const own = await call(
      h,
      "PUT",
      "/api/sites/mine",
      { hostname: "m.example", origin: "http://127.0.0.1:1" },
      customer,
    );
    expect(own.status).to.equal(503);
    expect(own.body.code).to.equal("EDGE_NODE_NO_AUTHORITY");
  });

  it("refuses forged tokens: another signer, a non-stargate issuer, altered claims, re-encoded signatures", async function () {
    const h = await harness();
    const token = await passwordToken(h);
    const expect401 = async (bad: string, why: RegExp) => {
      const r = await call(h, "GET", "/api/whoami", undefined, bad);
      expect(r.status, bad).to.equal(401);
      expect(r.body.code).to.equal("EDGE_NODE_TOKEN_INVALID");
      expect(r.body.error).to.match(why);
    };
    const claims = {
      id: `0x${"11".repeat(32)}` as Hex,
      subject: "ops",
      scopes: ["node:drain"],
      expiresAt: Math.floor(h.clock.t / 1000) + 600,
    };
    // A key that is no admitted stargate issues a well-formed token in its own name.
    await expect401(await issueToken(other, CHAIN_ID, { ...claims, scopes: [] }), /not an admitted stargate/);
    await expect401(await issueToken(other, CHAIN_ID, claims), /holds no DELTA_SIGNER_ROLE/);
    // The same, naming the admitted stargate as its issuer.
    await expect401(
      withClaims(await issueToken(other, CHAIN_ID, claims), (c) => (c.issuer = stargate.address)),
      /not signed by its issuer/,
    );
    // A real token with a scope added.
    await expect401(
      withClaims(token, (c) => (c.scopes = ["config:publish"])),
      /not signed by its issuer/,
    );
    await expect401(
      withClaims(token, (c) => (c.subject = "root")),
      /not signed by its issuer/,
    );
    // Re-encoded signatures: v 0/1, and high s (n - s, v flipped); both recover nobody.
    const [payload, sig] = token.split(".");
    const v = Number.parseInt(sig.slice(130), 16);
    await expect401(`${payload}.${sig.slice(0, 130)}${(v - 27).toString(16).padStart(2, "0")}`, /not signed/);
    const n = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
    const highS = (n - BigInt(`0x${sig.slice(66, 130)}`)).toString(16).padStart(64, "0");
    await expect401(`${payload}.${sig.slice(0, 66)}${highS}${(v === 27 ? 28 : 27).toString(16)}`, /not signed/);
    await expect401("not-a-token", /malformed/);
    await expect401(`${"A".repeat(5000)}.0x${"00".repeat(65)}`, /too long/);
    expect((await call(h, "GET", "/api/whoami")).body.code).to.equal("EDGE_NODE_UNAUTHORIZED");
  });

  it("refuses an expired token and a revoked one, both before recovering the signature", async function () {
    const h = await harness();
    const token = await passwordToken(h);
    const id = (await call(h, "GET", "/api/whoami", undefined, token)).body.id as string;
    // Forged claims that are expired: refused as expired (the signature is never looked at).
    const expiredForgery = withClaims(token, (c) => (c.expiresAt = 1));
    expect((await call(h, "GET", "/api/whoami", undefined, expiredForgery)).body.code).to.equal(
      "EDGE_NODE_TOKEN_EXPIRED",
    );
    const doc = emptyConfig(1);
    doc.revoked = [{ id, expiresAt: Math.floor(h.clock.t / 1000) + 600 }];
    h.config.current = applied(doc);
    const revoked = await call(h, "GET", "/api/whoami", undefined, token);
    expect(revoked.status).to.equal(401);
    expect(revoked.body.code).to.equal("EDGE_NODE_TOKEN_REVOKED");
    h.config.current = applied(emptyConfig(2));
    expect((await call(h, "GET", "/api/whoami", undefined, token)).status).to.equal(200);
    h.clock.t += 600_000;
    expect((await call(h, "GET", "/api/whoami", undefined, token)).body.code).to.equal("EDGE_NODE_TOKEN_EXPIRED");
  });

  it("drains a node with a node:drain token, 403 without the scope, and not for another bearer value", async function () {
    const h = await harness();
    const viewer = await passwordToken(h, "viewer", "viewer-password");
    const denied = await call(h, "POST", "/admin/drain", undefined, viewer);
    expect(denied.status).to.equal(403);
    expect(denied.body).to.include({ code: "EDGE_NODE_SCOPE_MISSING", scope: "node:drain" });
    // Without EDGE_NODE_ADMIN_TOKEN, a bearer value that is no signed token is told the admin token is off.
    expect((await call(h, "POST", "/admin/drain", undefined, "wrong")).body.code).to.equal("EDGE_NODE_ADMIN_DISABLED");
    expect(h.drained).to.have.length(0);
    const ops = await passwordToken(h);
    expect((await call(h, "POST", "/admin/drain", undefined, ops)).body).to.deep.equal({ drained: true, inFlight: 0 });
    expect(h.drained).to.have.length(1);
  });

  const claimsFor = (h: Harness, scopes: string[], lifeS = 600) => ({
    id: `0x${randomBytes(32).toString("hex")}` as Hex,
    subject: "someone",
    scopes,
    expiresAt: Math.floor(h.clock.t / 1000) + lifeS,
  });

  it("R17-1: a token with config:publish/node:drain signed by an admitted stargate's device key (no DELTA_SIGNER_ROLE) is refused by the API and by /admin/drain", async function () {
    const h = await harness();
    const minted = await issueToken(stargate, CHAIN_ID, claimsFor(h, ["config:publish", "node:drain"]));
    const api = await call(h, "GET", "/api/whoami", undefined, minted);
    expect(api.status).to.equal(401);
    expect(api.body.code).to.equal("EDGE_NODE_TOKEN_INVALID");
    expect(api.body.error).to.match(/DELTA_SIGNER_ROLE/);
    const drain = await call(h, "POST", "/admin/drain", undefined, minted);
    expect(drain.body.code).to.equal("EDGE_NODE_TOKEN_INVALID");
    expect(h.drained).to.have.length(0);
    // The same claims signed by the configuration key drain; a wallet's token is still the stargate's own.
    const real = await issueToken(configKey, CHAIN_ID, claimsFor(h, ["config:publish", "node:drain"]));
    expect((await call(h, "POST", "/admin/drain", undefined, real)).status).to.equal(200);
    expect((await call(h, "GET", "/api/whoami", undefined, await walletToken(h))).body.issuer).to.equal(
      stargate.address,
    );
  });

  it("R17-1: a token expiring in 10 years is refused before any key recovery or chain read", async function () {
    const h = await harness();
    const tenYears = await issueToken(configKey, CHAIN_ID, claimsFor(h, ["node:drain"], 10 * 365 * 86_400));
    const r = await call(h, "GET", "/api/whoami", undefined, tenYears);
    expect(r.status).to.equal(401);
    expect(r.body.error).to.match(/longer than any token may/);
    expect(h.signerReads).to.deep.equal([]);
    // The longest lifetime (a day) plus 60 s of clock skew still passes.
    const aDay = await issueToken(configKey, CHAIN_ID, claimsFor(h, ["node:drain"], 86_400 + 59));
    expect((await call(h, "GET", "/api/whoami", undefined, aDay)).status).to.equal(200);
  });

  it("R17-1: a customer token with an extra scope is refused", async function () {
    const h = await harness();
    for (const extra of ["blocklist:write", "tokens:revoke", "config:publish"]) {
      const token = await issueToken(stargate, CHAIN_ID, {
        ...claimsFor(h, ["sites:write", extra]),
        subject: alice.address,
      });
      const r = await call(h, "POST", "/api/blocklist", { ipRange: "203.0.113.0/24" }, token);
      expect(r.status, extra).to.equal(401);
      expect(r.body.code).to.equal("EDGE_NODE_TOKEN_INVALID");
    }
  });

  it("R17-1: without the configuration key a password login is forwarded to a peer that has it, else 503", async function () {
    const alone = await harness({}, false);
    const refused = await call(alone, "POST", "/api/login", { name: "ops", password: PASSWORD });
    expect(refused.status).to.equal(503);
    expect(refused.body.code).to.equal("EDGE_NODE_NO_AUTHORITY");
    expect(refused.body.error).to.match(/password logins need the configuration key/);
    const keyed = await harness();
    const url = await keyed.app.listen({ host: "127.0.0.1", port: 0 });
    try {
      const relay = await harness({}, false, [url]);
      const token = await passwordToken(relay);
      const me = await call(relay, "GET", "/api/whoami", undefined, token);
      expect(me.body).to.include({ subject: "ops", issuer: configKey.address });
      expect(relay.api.status()).to.include({ writesForwarded: 1, signsPasswordTokens: false });
    } finally {
      await keyed.app.close();
    }
  });

  it("R17-11: logins are limited per IPv6 /64 (an IPv4-mapped address counts as its IPv4 address)", async function () {
    expect(clientKey("2001:db8:1:2:aaaa::1")).to.equal("2001:db8:1:2::/64");
    expect(clientKey("::ffff:198.51.100.7")).to.equal("198.51.100.7");
    const h = await harness({ perClientPerMinute: 2, perNamePerMinute: 1000 });
    const login = (ip: string) => call(h, "POST", "/api/login", { name: "x", password: "x" }, undefined, ip);
    await login("2001:db8:1:2::1");
    await login("2001:db8:1:2:ffff:ffff:ffff:fffe");
    expect((await login("2001:db8:1:2:abcd::9")).body.code).to.equal("EDGE_NODE_LOGIN_RATE_LIMITED");
    expect((await login("2001:db8:1:3::1")).body.code).to.equal("EDGE_NODE_LOGIN_FAILED");
    await login("::ffff:198.51.100.7");
    await login("::ffff:198.51.100.7");
    expect((await login("198.51.100.7")).body.code).to.equal("EDGE_NODE_LOGIN_RATE_LIMITED");
  });

  it("R17-11: at most max(1, cores - 1) password hashes run at once", async function () {
    const h = await harness({ perClientPerMinute: 1000, perNamePerMinute: 1000 });
    let most = 0;
    const watch = setInterval(() => (most = Math.max(most, h.api.passwords!.load.running)), 1);
    const logins = Array.from({ length: availableParallelism() + 2 }, (_, i) =>
      call(h, "POST", "/api/login", { name: `u${i}`, password: "x" }),
    );
    await Promise.all(logins);
    clearInterval(watch);
    expect(most).to.equal(Math.max(1, availableParallelism() - 1));
  });

  it("R17-11: failed token checks are limited per client before the signature recovery and the chain read", async function () {
    const h = await harness();
    // Signed for real by a key with no role: each costs a recovery and a DELTA_SIGNER_ROLE read, then fails.
    const forged = await issueToken(other, CHAIN_ID, claimsFor(h, ["node:drain"]));
    const from = (ip: string, token = forged) => call(h, "GET", "/api/whoami", undefined, token, ip);
    for (let i = 0; i < 60; i += 1) expect((await from("2001:db8::1")).body.code).to.equal("EDGE_NODE_TOKEN_INVALID");
    expect(h.signerReads).to.have.length(60);
    const limited = await from("2001:db8::2");
    expect(limited.status).to.equal(429);
    expect(limited.body.code).to.equal("EDGE_NODE_TOKEN_RATE_LIMITED");
    expect(h.signerReads).to.have.length(60);
    // Another client is not affected; the limited one is served again once its bucket refills.
    const token = await passwordToken(h);
    expect((await from("203.0.113.9", token)).status).to.equal(200);
    expect((await from("2001:db8::3", token)).status).to.equal(429);
    h.clock.t += 2_000;
    expect((await from("2001:db8::3", token)).status).to.equal(200);
  });

  it("a users file is refused with its problem named; hashes describe their cost", async function () {
    expect(() => parseUsers({ users: [{ name: "a", passwordHash: "plain", scopes: [] }] })).to.throw(
      /a's passwordHash/,
    );
    expect(() => parseUsers({ users: [{ name: "a", passwordHash: "x", scopes: ["root"] }] })).to.throw(/users file/);
    const hash = await hashPassword("pw", { logN: LOGN, r: 8, p: 1 });
    expect(hash).to.match(/^scrypt\$12\$8\$1\$/);
    expect(parsePasswordHash(hash.replace("$12$", "$4$"))).to.match(/log2 N must be 12 to 20/);
  });
});
