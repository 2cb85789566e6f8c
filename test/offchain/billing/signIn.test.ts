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
});
