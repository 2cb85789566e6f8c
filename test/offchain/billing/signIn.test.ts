import { expect } from "chai";
import type { Hex } from "viem";
import { parseSiweMessage } from "viem/siwe";

import { isEdgeError } from "../../../offchain/common/errors";
import { SignIn } from "../../../offchain/billing/signIn";
import { CHAIN_ID, customerAccount } from "./helpers";

const T0 = Date.UTC(2026, 10, 1);
const TTL_MS = 3600_000;

/** The code of the EdgeError `action` throws or rejects with. */
async function codeOf(action: () => unknown): Promise<string> {
  try {
    await action();
  } catch (error) {
    if (isEdgeError(error)) return error.code;
    throw error;
  }
  throw new Error("expected an error");
}

describe("billing sign-in (SignIn, injected clock)", function () {
  let clock: { t: number };
  let outcomes: string[];
  let signIn: SignIn;
  beforeEach(function () {
    clock = { t: T0 };
    outcomes = [];
    signIn = new SignIn({
      domain: "billing.example",
      chainId: CHAIN_ID,
      tokenTtlMs: TTL_MS,
      now: () => clock.t,
      onLogin: (outcome) => outcomes.push(outcome),
    });
  });

  /** Asks a nonce for customer `n` and signs the message with `signer` (the customer itself by default). */
  async function signed(n: number, signer = n): Promise<{ message: string; signature: Hex }> {
    const { message } = signIn.issueNonce(customerAccount(n).address);
    return { message, signature: await customerAccount(signer).signMessage({ message }) };
  }

  it("issues an EIP-4361 message naming the domain, chain and address, valid for 5 minutes", function () {
    const address = customerAccount(0).address;
    const reply = signIn.issueNonce(address.toLowerCase());
    const fields = parseSiweMessage(reply.message);
    expect(fields).to.deep.include({ domain: "billing.example", address, chainId: CHAIN_ID, nonce: reply.nonce });
    expect(fields.issuedAt?.getTime()).to.equal(T0);
    expect(fields.expirationTime?.getTime()).to.equal(T0 + 5 * 60_000);
    expect(reply.expiresAt).to.equal(new Date(T0 + 5 * 60_000).toISOString());
    expect(signIn.issueNonce(address).nonce).to.not.equal(reply.nonce);
  });

  it("turns a signed message into a token once, and the token into the customer's session until it expires", async function () {
    const { message, signature } = await signed(0);
    const me = customerAccount(0).address;
    const login = await signIn.login(message, signature);
    expect(login.customer).to.equal(me.toLowerCase());
    expect(login.expiresAt).to.equal(new Date(T0 + TTL_MS).toISOString());
    expect(signIn.sessionCount).to.equal(1);
    expect(await codeOf(() => signIn.login(message, signature))).to.equal("BILLING_NONCE_USED");

    const bearer = `Bearer ${login.token}`;
    signIn.authorize(bearer, me);
    signIn.authorize(bearer, me.toLowerCase());
    expect(await codeOf(() => signIn.authorize(bearer, customerAccount(1).address))).to.equal("BILLING_FORBIDDEN");
    expect(await codeOf(() => signIn.authorize(undefined, me))).to.equal("BILLING_UNAUTHORIZED");
    expect(await codeOf(() => signIn.authorize(login.token, me))).to.equal("BILLING_UNAUTHORIZED");
    clock.t = T0 + TTL_MS;
    expect(await codeOf(() => signIn.authorize(bearer, me))).to.equal("BILLING_UNAUTHORIZED");
    expect(signIn.sessionCount, "an expired session is dropped when used").to.equal(0);
    expect(outcomes).to.deep.equal(["accepted", "rejected"]);
  });

  it("F5 (sign-in): identical logins sent at once get one token; the others find the nonce used", async function () {
    const { message, signature } = await signed(0);
    const results = await Promise.allSettled(Array.from({ length: 5 }, () => signIn.login(message, signature)));
    expect(results.filter((r) => r.status === "fulfilled")).to.have.length(1);
    for (const r of results.filter((r) => r.status === "rejected"))
      expect((r as PromiseRejectedResult).reason.code).to.equal("BILLING_NONCE_USED");
    expect(signIn.sessionCount).to.equal(1);
  });

  it("ends a session at logout, once", async function () {
    const { message, signature } = await signed(0);
    const { token } = await signIn.login(message, signature);
    signIn.logout(`Bearer ${token}`);
    expect(signIn.sessionCount).to.equal(0);
    expect(await codeOf(() => signIn.logout(`Bearer ${token}`))).to.equal("BILLING_UNAUTHORIZED");
    expect(await codeOf(() => signIn.logout(undefined))).to.equal("BILLING_UNAUTHORIZED");
  });

  it("refuses forged, stolen, expired and foreign messages, and counts each refusal", async function () {
    const forged = await signed(0, 1);
    expect(await codeOf(() => signIn.login(forged.message, forged.signature))).to.equal("BILLING_BAD_SIGNATURE");
    // The nonce was issued to customer 0: customer 1 cannot use it, even signing its own address in.
    const { message } = signIn.issueNonce(customerAccount(0).address);
    const stolen = message.replace(customerAccount(0).address, customerAccount(1).address);
    const stolenSignature = await customerAccount(1).signMessage({ message: stolen });
    expect(await codeOf(() => signIn.login(stolen, stolenSignature))).to.equal("BILLING_BAD_LOGIN");
    const foreign = message.replace("billing.example wants you", "evil.example wants you");
    expect(await codeOf(() => signIn.login(foreign, forged.signature))).to.equal("BILLING_BAD_LOGIN");
    expect(await codeOf(() => signIn.login("hello", forged.signature))).to.equal("BILLING_BAD_LOGIN");
    const late = await signed(0);
    clock.t += 5 * 60_000;
    expect(await codeOf(() => signIn.login(late.message, late.signature))).to.equal("BILLING_BAD_LOGIN");
    expect(outcomes).to.deep.equal(Array(5).fill("rejected"));
    expect(signIn.sessionCount).to.equal(0);
  });

  it("F6: a nonce flood is bounded: 429 per client past its rate, 429 for all once full, expiry by age without a scan", async function () {
    const bounded = new SignIn({
      domain: "billing.example",
      chainId: CHAIN_ID,
      tokenTtlMs: TTL_MS,
      maxNonces: 10_000,
      noncesPerMinute: 10,
      now: () => clock.t,
    });
    const address = customerAccount(0).address;
    // One client: its burst, then 429; a token back every 6 s.
    for (let i = 0; i < 10; i++) bounded.issueNonce(address, "10.0.0.1");
    expect(await codeOf(() => bounded.issueNonce(address, "10.0.0.1"))).to.equal("BILLING_NONCE_RATE_LIMITED");
    clock.t += 6_000;
    bounded.issueNonce(address, "10.0.0.1");
    expect(await codeOf(() => bounded.issueNonce(address, "10.0.0.1"))).to.equal("BILLING_NONCE_RATE_LIMITED");

    // A flood from 60,000 addresses: the store holds at most 10,000, the rest are told to come back.
    const started = performance.now();
    const codes = new Map<string, number>();
    for (let i = 0; i < 60_000; i++) {
      let code = "ok";
      try {
        bounded.issueNonce(address, `10.1.${i >> 8}.${i & 255}`);
      } catch (error) {
        code = isEdgeError(error) ? error.code : String(error);
      }
      codes.set(code, (codes.get(code) ?? 0) + 1);
    }
    const seconds = (performance.now() - started) / 1000;
    expect(Object.fromEntries(codes)).to.deep.equal({ ok: 10_000 - 11, BILLING_SIGN_IN_BUSY: 50_011 });
    expect(bounded.nonceCount).to.equal(10_000);
    // Refusals cost no scan of the store: the whole flood is far under the old 113 req/s.
    expect(seconds).to.be.below(10);

    // Five minutes later every nonce has expired (oldest first) and sign-in works again.
    clock.t += 5 * 60_000;
    const { message } = bounded.issueNonce(address, "10.2.0.1");
    expect(bounded.nonceCount).to.equal(1);
    const signature = await customerAccount(0).signMessage({ message });
    expect((await bounded.login(message, signature)).customer).to.equal(address.toLowerCase());
  });
});
