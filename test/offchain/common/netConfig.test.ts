import { expect } from "chai";
import fc from "fast-check";
import { type Hex, keccak256 } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";

import {
  type DeltaBody,
  type DeltaOp,
  MAX_DELTA_BYTES,
  MAX_DOCUMENT_BYTES,
  applyDeltas,
  canonicalBytes,
  configDeltaDigest,
  documentHash,
  emptyConfig,
  encodeDocument,
  issueToken,
  messageDigest,
  parseDeltaBody,
  parseDocument,
  readToken,
  recoverDeltaSigner,
  signDelta,
} from "../../../offchain/common/protocol";
import { FC_SEED, fcRuns } from "../../shared/fastcheck";

const CHAIN = 31337;
const account = privateKeyToAccount(generatePrivateKey());
/** secp256k1's group order: n - s is the high-s twin of a signature's s. */
const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

function highS(signature: Hex): Hex {
  const s = BigInt(`0x${signature.slice(66, 130)}`);
  const v = Number.parseInt(signature.slice(130), 16);
  return `${signature.slice(0, 66)}${(N - s).toString(16).padStart(64, "0")}${(v === 27 ? 28 : 27).toString(16)}` as Hex;
}

const octet = fc.integer({ min: 0, max: 255 });
const ipRange = fc.tuple(octet, octet, octet, octet).map((o) => `${o.join(".")}/32`);
const pathRule = fc.record({
  hostname: fc.constantFrom("a.test", "b.test", "*"),
  prefix: fc.constantFrom("/x/", "/y", "/private/"),
});
const op: fc.Arbitrary<DeltaOp> = fc.oneof(
  ipRange.map((ipRange) => ({ kind: "blocklist.add" as const, ipRange })),
  ipRange.map((ipRange) => ({ kind: "blocklist.remove" as const, ipRange })),
  pathRule.map((path) => ({ kind: "blocklist.add" as const, path })),
  pathRule.map((path) => ({ kind: "blocklist.remove" as const, path })),
);

describe("offchain/common/protocol/netConfig (the network configuration and its deltas)", function () {
  it("a document parses only from its canonical bytes, whose keccak-256 is its hash", function () {
    const doc = emptyConfig(3);
    doc.blocklist.ipRanges.push("203.0.113.0/24");
    const bytes = encodeDocument(doc);
    expect(parseDocument(bytes)).to.deep.equal(doc);
    expect(documentHash(bytes)).to.equal(keccak256(bytes));
    // The same JSON another way (spaces, other key order) is not the document the chain names.
    expect(parseDocument(Buffer.from(JSON.stringify(doc, null, 1)))).to.match(/not in canonical JSON/);
    const { version, ...rest } = doc;
    const reordered = Buffer.from(JSON.stringify({ ...rest, version }));
    expect(parseDocument(reordered)).to.match(/not in canonical JSON/);
    expect(parseDocument(Buffer.from("{"))).to.equal("the document is not JSON");
    expect(parseDocument(canonicalBytes({ ...doc, extra: 1 }))).to.match(/does not match its schema/);
    expect(parseDocument(canonicalBytes({ ...doc, version: 0 }))).to.match(/does not match its schema at \/version/);
    expect(parseDocument(Buffer.alloc(MAX_DOCUMENT_BYTES + 1))).to.match(/over the 16777216 allowed/);
    expect(parseDeltaBody(Buffer.alloc(MAX_DELTA_BYTES + 1))).to.match(/over the 16384 allowed/);
    const delta: DeltaBody = {
      base: 3,
      seq: 1,
      issuedAt: 5,
      op: { kind: "token.revoke", token: { id: `0x${"a".repeat(64)}`, expiresAt: 9 } },
    };
    expect(parseDeltaBody(canonicalBytes(delta))).to.deep.equal(delta);
    expect(parseDeltaBody(canonicalBytes({ ...delta, seq: 0 }))).to.match(/schema at \/seq/);
  });

  it("applyDeltas: adding twice or removing what is absent changes nothing; the input is never changed; order decides", function () {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 30 }), (ops) => {
        const base = emptyConfig(1);
        const before = JSON.stringify(base);
        const deltas = ops.map((o, i) => ({ base: 1, seq: i + 1, issuedAt: 0, op: o }));
        const once = applyDeltas(base, deltas);
        expect(JSON.stringify(base)).to.equal(before);
        // Replaying the whole list on top of its result is a no-op for sets: the last word on each entry wins.
        const twice = applyDeltas(once, deltas);
        expect(new Set(twice.blocklist.ipRanges)).to.deep.equal(new Set(once.blocklist.ipRanges));
        expect(twice.blocklist.paths).to.have.length(once.blocklist.paths.length);
        // A model: each range is present iff its last op was an add.
        const last = new Map<string, boolean>();
        for (const o of ops) if ("ipRange" in o) last.set(o.ipRange, o.kind === "blocklist.add");
        for (const [range, present] of last) expect(once.blocklist.ipRanges.includes(range)).to.equal(present);
        expect(new Set(once.blocklist.ipRanges).size).to.equal(once.blocklist.ipRanges.length);
      }),
      { seed: FC_SEED, numRuns: fcRuns(200) },
    );
  });

  it("applyDeltas: site.put replaces the site of its id, site.remove drops it, revocations past now are pruned", function () {
    const doc = emptyConfig(1);
    doc.sites.push({ id: "a", hostname: "a.test" }, { id: "b", hostname: "b.test" });
    const next = applyDeltas(
      doc,
      [
        { base: 1, seq: 1, issuedAt: 0, op: { kind: "site.put", site: { id: "a", hostname: "new.test" } } },
        { base: 1, seq: 2, issuedAt: 0, op: { kind: "site.remove", id: "b", owner: account.address } },
        {
          base: 1,
          seq: 3,
          issuedAt: 0,
          op: { kind: "token.revoke", token: { id: `0x${"1".repeat(64)}`, expiresAt: 100 } },
        },
        {
          base: 1,
          seq: 4,
          issuedAt: 0,
          op: { kind: "token.revoke", token: { id: `0x${"2".repeat(64)}`, expiresAt: 300 } },
        },
      ],
      200,
    );
    expect(next.sites).to.deep.equal([{ id: "a", hostname: "new.test" }]);
    expect(next.revoked).to.deep.equal([{ id: `0x${"2".repeat(64)}`, expiresAt: 300 }]);
  });

  it("configDeltaDigest equals the EIP-712 digest viem computes, and recovers the signer of signDelta", async function () {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
        fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
        fc.uint8Array({ maxLength: 512 }),
        async (base, seq, body) => {
          const viemDigest = messageDigest(CHAIN, "ConfigDelta", {
            base: BigInt(base),
            seq: BigInt(seq),
            bodyHash: keccak256(body),
          });
          expect(configDeltaDigest(CHAIN, base, seq, body)).to.equal(viemDigest);
        },
      ),
      { seed: FC_SEED, numRuns: fcRuns(100) },
    );
    const delta: DeltaBody = { base: 7, seq: 2, issuedAt: 1, op: { kind: "blocklist.add", ipRange: "10.0.0.1" } };
    const signed = await signDelta(account, CHAIN, delta);
    expect(await recoverDeltaSigner(CHAIN, delta, signed.body, signed.signature)).to.equal(account.address);
    // Another body, base or seq under the same signature recovers someone else (or nobody).
    expect(await recoverDeltaSigner(CHAIN, { base: 7, seq: 3 }, signed.body, signed.signature)).to.not.equal(
      account.address,
    );
    expect(await recoverDeltaSigner(CHAIN, delta, Buffer.from("{}"), signed.signature)).to.not.equal(account.address);
    // The signature's other encodings (v 0/1, high s) are refused, not recovered.
    const v01 = `${signed.signature.slice(0, 130)}${signed.signature.endsWith("1b") ? "00" : "01"}` as Hex;
    expect(await recoverDeltaSigner(CHAIN, delta, signed.body, v01)).to.equal(undefined);
    expect(await recoverDeltaSigner(CHAIN, delta, signed.body, highS(signed.signature))).to.equal(undefined);
    expect(() => configDeltaDigest(CHAIN, -1, 1, signed.body)).to.throw(RangeError);
  });

  it("a token reads back only as its issuer signed it: altered claims or another encoding are refused", async function () {
    const id = `0x${"ab".repeat(32)}` as Hex;
    const token = await issueToken(account, CHAIN, {
      id,
      subject: "ops",
      scopes: ["node:drain"],
      expiresAt: 2_000_000_000,
    });
    const claims = await readToken(CHAIN, token);
    expect(claims).to.deep.include({ issuer: account.address, id, subject: "ops", expiresAt: 2_000_000_000 });
    const [payload, signature] = token.split(".");
    const altered = JSON.parse(Buffer.from(payload, "base64url").toString());
    altered.scopes = ["node:drain", "config:publish"];
    const forged = `${Buffer.from(JSON.stringify(altered)).toString("base64url")}.${signature}`;
    expect(await readToken(CHAIN, forged)).to.equal("the token is not signed by its issuer");
    expect(await readToken(CHAIN, `${payload}.${highS(signature as Hex)}`)).to.equal(
      "the token is not signed by its issuer",
    );
    expect(await readToken(CHAIN, `${payload}.${signature}x`)).to.equal("the token is malformed");
    expect(await readToken(CHAIN, "x".repeat(5000))).to.equal("the token is malformed");
  });
});
