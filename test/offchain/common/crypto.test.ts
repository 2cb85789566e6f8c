import { expect } from "chai";
import canonicalize from "canonicalize";
import fc from "fast-check";
import {
  type Hex,
  bytesToHex,
  concatHex,
  keccak256 as viemKeccak,
  numberToHex,
  recoverAddress as viemRecover,
  recoverTypedDataAddress,
} from "viem";
import { privateKeyToAccount } from "viem/accounts";

import { keccak256, recoverAddress } from "../../../offchain/common/crypto";
import {
  MESSAGE_TYPES,
  canonicalUsageRecords,
  jobEntriesHash,
  messageDomain,
  recoverSigner,
} from "../../../offchain/common/protocol";
import { FC_SEED, fcRuns } from "../../shared/fastcheck";

const key = fc.uint8Array({ minLength: 32, maxLength: 32 }).filter((k) => k.some((b) => b !== 0) && k[0] < 0xff);

describe("offchain/common/crypto (native keccak and recovery)", function () {
  it("hashes exactly as viem's keccak256, from bytes or hex", function () {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 4096 }), (bytes) => {
        const expected = viemKeccak(bytes);
        expect(keccak256(bytes)).to.equal(expected);
        expect(keccak256(bytesToHex(bytes))).to.equal(expected);
        expect(keccak256(bytes.subarray(1))).to.equal(viemKeccak(bytes.subarray(1)));
      }),
      { seed: FC_SEED, numRuns: fcRuns(200) },
    );
    expect(() => keccak256("0xabc" as Hex)).to.throw(/even number of digits/);
    expect(() => keccak256("0xzz" as Hex)).to.throw(/hex/);
  });

  it("recovers the signer exactly as viem does, and nobody from a malformed signature", async function () {
    await fc.assert(
      fc.asyncProperty(key, fc.uint8Array({ minLength: 32, maxLength: 32 }), async (secret, digest) => {
        const account = privateKeyToAccount(bytesToHex(secret));
        const hash = bytesToHex(digest);
        const signature = await account.sign({ hash });
        expect(recoverAddress(hash, signature)).to.equal(account.address);
        expect(recoverAddress(hash, signature)).to.equal(await viemRecover({ hash, signature }));
        // v as 0/1 instead of 27/28.
        const v = parseInt(signature.slice(-2), 16) - 27;
        expect(recoverAddress(hash, `${signature.slice(0, -2)}0${v}` as Hex)).to.equal(account.address);
        // Another hash recovers someone else.
        expect(recoverAddress(viemKeccak(hash), signature)).to.not.equal(account.address);
      }),
      { seed: FC_SEED, numRuns: fcRuns(50) },
    );
    const hash = viemKeccak("0x01");
    const signature = await privateKeyToAccount(viemKeccak("0x02")).sign({ hash });
    for (const bad of [
      "0x",
      signature.slice(0, -2), // 64 bytes
      `${signature.slice(0, -2)}1d`, // v = 29
      `0x${"00".repeat(64)}1b`, // r = s = 0
      `0x${"ff".repeat(64)}1b`, // r, s above the group order
      `${signature.slice(0, -1)}g`,
    ]) {
      expect(recoverAddress(hash, bad as Hex), bad).to.equal(undefined);
    }
    expect(recoverAddress("0x1234", signature)).to.equal(undefined);
  });

  it("keeps signed messages' hashes and signers unchanged (the formats the daemon signs)", async function () {
    const gateway = privateKeyToAccount(viemKeccak("0x03"));
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(
          fc.record({
            host: fc.uint8Array({ minLength: 20, maxLength: 20 }).map((b) => bytesToHex(b)),
            jobs: fc.bigInt({ min: 0n, max: (1n << 256n) - 1n }),
            tally: fc.option(
              fc.tuple(fc.bigInt({ min: 0n, max: (1n << 256n) - 1n }), fc.bigInt({ min: 0n, max: 10n ** 15n - 1n })),
              { nil: undefined },
            ),
          }),
          { selector: (e) => e.host, maxLength: 30 },
        ),
        fc.boolean(),
        async (entries, upper) => {
          const given = entries.map((e) => ({
            host: upper ? e.host.toUpperCase().replace("0X", "0x") : e.host,
            jobs: e.jobs,
            ...(e.tally && { attested: e.tally[0], tallySeq: e.tally[1] }),
          }));
          // The format written with viem: sorted by lowercase host, host || uint256 jobs || has-tally byte ||
          // uint256 attested || uint64 tally sequence (zeros without a tally), keccak.
          const sorted = [...entries].sort((a, b) => (a.host < b.host ? -1 : 1));
          const expected = viemKeccak(
            concatHex([
              "0x",
              ...sorted.flatMap((e): `0x${string}`[] => [
                e.host,
                numberToHex(e.jobs, { size: 32 }),
                e.tally ? "0x01" : "0x00",
                numberToHex(e.tally?.[0] ?? 0n, { size: 32 }),
                numberToHex(e.tally?.[1] ?? 0n, { size: 8 }),
              ]),
            ]),
          );
          expect(jobEntriesHash(given)).to.equal(expected);
          const message = { gateway: gateway.address, epoch: 1n, sequence: 2n, entriesHash: expected };
          const signature = await gateway.signTypedData({
            domain: messageDomain(31337),
            types: MESSAGE_TYPES,
            primaryType: "JobReport",
            message,
          });
          const viaViem = await recoverTypedDataAddress({
            domain: messageDomain(31337),
            types: MESSAGE_TYPES,
            primaryType: "JobReport",
            message,
            signature,
          });
          expect(await recoverSigner(31337, "JobReport", message, signature)).to.equal(viaViem);
          expect(await recoverSigner(1, "JobReport", message, signature)).to.not.equal(viaViem);
        },
      ),
      { seed: FC_SEED, numRuns: fcRuns(40) },
    );
    expect(() => jobEntriesHash([{ host: "0x12", jobs: 1n }])).to.throw(/not an address/);
    const nonHex = `0x${"zz".repeat(20)}`;
    expect(() =>
      jobEntriesHash([
        { host: gateway.address, jobs: "1" },
        { host: nonHex, jobs: 1n },
      ]),
    ).to.throw(`host ${nonHex} is not an address`);
    expect(() => jobEntriesHash([{ host: gateway.address, jobs: "-1" }])).to.throw(/not a decimal integer/);
    expect(jobEntriesHash([{ host: gateway.address, jobs: "0012" }])).to.equal(
      jobEntriesHash([{ host: gateway.address.toLowerCase(), jobs: 12n }]),
    );
    expect(() => jobEntriesHash([{ host: gateway.address, jobs: 1n << 256n }])).to.throw(/256 bits/);
    // A message that does not encode (the type system forbids it; JSON from a peer might not) recovers nobody.
    const malformed = { gateway: "nope" } as never;
    expect(await recoverSigner(31337, "JobReport", malformed, `0x${"00".repeat(65)}`)).to.equal(undefined);
  });
});

describe("offchain/common/protocol canonical usage records", function () {
  it("equal the general RFC 8785 canonicalisation for any records, of the usual shape or not", function () {
    const text = fc.string({ unit: "binary", maxLength: 12 });
    const usual = fc.record({
      id: text,
      gateway: text,
      customer: text,
      service: text,
      metric: text,
      quantity: fc.oneof(text, fc.maxSafeNat(), fc.constant(-0)),
      time: fc.oneof(fc.maxSafeInteger(), fc.constant(-0)),
    });
    const odd = fc.oneof(
      usual.map((r) => ({ ...r, extra: 1 })),
      usual.map((r) => ({ ...r, quantity: 1.5 })),
      usual.map((r) => ({ ...r, time: "1" })),
      usual.map(({ metric: _m, ...r }) => r),
    );
    fc.assert(
      fc.property(
        fc.array(fc.oneof({ weight: 9, arbitrary: usual }, { weight: 1, arbitrary: odd }), { maxLength: 8 }),
        (records) => {
          expect(canonicalUsageRecords(records as never)).to.equal(canonicalize(records));
        },
      ),
      { seed: FC_SEED, numRuns: fcRuns(300) },
    );
  });
});
