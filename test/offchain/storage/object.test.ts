import { expect } from "chai";
import fc from "fast-check";
import { createHash, randomBytes } from "node:crypto";
import { privateKeyToAccount } from "viem/accounts";

import { STORAGE_MAX_OBJECT_BYTES, verifyStorageManifest } from "../../../offchain/common/protocol";
import { decryptObject, encryptObject } from "../../../offchain/storage/cipher";
import { checkCodingParameters, decodeFragments, encodeFragments } from "../../../offchain/common/erasure";
import { StorageKey } from "../../../offchain/storage/keys";
import { checkFragments, openObject, sealObject, sha256Hex } from "../../../offchain/storage/object";
import { FC_SEED, fcRuns } from "../../shared/fastcheck";
import { CHAIN_ID, expectEdgeError, objectBytes } from "./helpers";

const owner = privateKeyToAccount(`0x${"a1".repeat(32)}`);
const key = new StorageKey(Buffer.alloc(32, 7), "key-file");
const otherKey = new StorageKey(Buffer.alloc(32, 8), "key-file");
const MiB = 1024 * 1024;

/** Sizes over 0..2 MiB with the edges weighted in: empty, tiny, around a fragment boundary, the maximum. */
const objectSize = fc.oneof(
  fc.constantFrom(0, 1, 7, 8, 9, 143, 144, 145, STORAGE_MAX_OBJECT_BYTES - 1, STORAGE_MAX_OBJECT_BYTES),
  fc.integer({ min: 0, max: 4096 }),
  fc.integer({ min: 0, max: STORAGE_MAX_OBJECT_BYTES }),
);
const indexes = (n: number) => Array.from({ length: n }, (_, i) => i);
/** Keeps only the fragments whose index is in `kept`. */
const only = (fragments: readonly Buffer[], kept: readonly number[]) =>
  fragments.map((f, i) => (kept.includes(i) ? f : undefined));

describe("offchain/storage object (encryption, erasure coding, fragment hashes)", function () {
  it("round-trips objects of 0..2 MiB from any k of the n = 16 fragments", async function () {
    await fc.assert(
      fc.asyncProperty(
        objectSize,
        fc.nat(),
        fc.shuffledSubarray(indexes(16), { minLength: 10, maxLength: 16 }),
        async (size, seed, kept) => {
          const plaintext = objectBytes(size, seed);
          const { manifest, fragments } = await sealObject(key, owner, CHAIN_ID, plaintext);
          expect(manifest.size).to.equal(size);
          expect([manifest.k, manifest.n, manifest.fragments.length, fragments.length]).to.deep.equal([10, 16, 16, 16]);
          expect(fragments.every((f) => f.length === manifest.fragmentSize)).to.equal(true);
          const { plaintext: back, corrupt } = await openObject(key, CHAIN_ID, manifest, only(fragments, kept));
          expect(corrupt).to.deep.equal([]);
          expect(back.equals(plaintext)).to.equal(true);
        },
      ),
      { seed: FC_SEED, numRuns: fcRuns(30) },
    );
  });

  it("rebuilds from any k of n for every k <= 24 and n - k <= 6 the codec supports", async function () {
    const params = fc
      .record({ k: fc.integer({ min: 1, max: 24 }), parity: fc.integer({ min: 1, max: 6 }) })
      .chain(({ k, parity }) =>
        fc.record({
          k: fc.constant(k),
          n: fc.constant(k + parity),
          kept: fc.shuffledSubarray(indexes(k + parity), { minLength: k, maxLength: k }),
          size: fc.integer({ min: 0, max: 64 * 1024 }),
          seed: fc.nat(),
        }),
      );
    await fc.assert(
      fc.asyncProperty(params, async ({ k, n, kept, size, seed }) => {
        const plaintext = objectBytes(size, seed);
        const { manifest, fragments } = await sealObject(key, owner, CHAIN_ID, plaintext, { k, n });
        expect(manifest.fragmentSize % 8).to.equal(0);
        const { plaintext: back } = await openObject(key, CHAIN_ID, manifest, only(fragments, kept));
        expect(back.equals(plaintext)).to.equal(true);
      }),
      { seed: FC_SEED, numRuns: fcRuns(60) },
    );
  });

  it("refuses fewer than k fragments with a clear error", async function () {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 64 * 1024 }),
        fc.shuffledSubarray(indexes(16), { minLength: 0, maxLength: 9 }),
        async (size, kept) => {
          const { manifest, fragments } = await sealObject(key, owner, CHAIN_ID, objectBytes(size, size));
          await expectEdgeError(
            () => openObject(key, CHAIN_ID, manifest, only(fragments, kept)),
            "STORAGE_NOT_ENOUGH_FRAGMENTS",
            new RegExp(`^${kept.length} of 16 fragments of object 0x[0-9a-f]{64} passed .*; 10 are needed$`),
          );
        },
      ),
      { seed: FC_SEED, numRuns: fcRuns(20) },
    );
  });

  it("detects tampered fragments by their sha256 and excludes them; decodes while k good ones remain", async function () {
    const scenario = fc.record({
      size: fc.integer({ min: 0, max: 256 * 1024 }),
      // Each fragment: kept intact, missing, or tampered (one bit flipped at a random position, or truncated).
      fates: fc.array(fc.constantFrom("intact", "missing", "flipped", "truncated"), { minLength: 16, maxLength: 16 }),
      where: fc.nat(),
    });
    await fc.assert(
      fc.asyncProperty(scenario, async ({ size, fates, where }) => {
        const plaintext = objectBytes(size, where);
        const { manifest, fragments } = await sealObject(key, owner, CHAIN_ID, plaintext);
        const given = fragments.map((f, i) => {
          if (fates[i] === "missing") return undefined;
          if (fates[i] === "truncated") return f.subarray(0, f.length - 8);
          const copy = Buffer.from(f);
          if (fates[i] === "flipped") copy[where % copy.length] ^= 1 << (where % 8);
          return copy;
        });
        const tampered = indexes(16).filter((i) => fates[i] === "flipped" || fates[i] === "truncated");
        expect(checkFragments(manifest, given).corrupt).to.deep.equal(tampered);
        const intact = fates.filter((f) => f === "intact").length;
        if (intact >= 10) {
          const opened = await openObject(key, CHAIN_ID, manifest, given);
          expect(opened.corrupt).to.deep.equal(tampered);
          expect(opened.plaintext.equals(plaintext)).to.equal(true);
        } else {
          const error = await expectEdgeError(
            () => openObject(key, CHAIN_ID, manifest, given),
            "STORAGE_NOT_ENOUGH_FRAGMENTS",
            new RegExp(`^${intact} of 16 .*\\(${tampered.length} corrupt`),
          );
          expect((error as unknown as { details: { corrupt: number[] } }).details.corrupt).to.deep.equal(tampered);
        }
      }),
      { seed: FC_SEED, numRuns: fcRuns(60) },
    );
  });

  it("fails authentication with a wrong key, and never returns plaintext", async function () {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 128 * 1024 }), fc.nat(), async (size, seed) => {
        const { manifest, fragments } = await sealObject(key, owner, CHAIN_ID, objectBytes(size, seed));
        await expectEdgeError(
          () => openObject(otherKey, CHAIN_ID, manifest, fragments),
          "STORAGE_DECRYPT_FAILED",
          /does not authenticate: a wrong key/,
        );
      }),
      { seed: FC_SEED, numRuns: fcRuns(10) },
    );
  });

  it("binds the ciphertext to its object id and owner (GCM additional data)", function () {
    const object = { objectId: `0x${"01".repeat(32)}` as const, owner: owner.address };
    const { iv, payload } = encryptObject(key, object, Buffer.from("hello"));
    expect(decryptObject(key, object, iv, payload).toString()).to.equal("hello");
    const otherId = { ...object, objectId: `0x${"02".repeat(32)}` as const };
    const otherOwner = { ...object, owner: `0x${"22".repeat(20)}` };
    for (const wrong of [otherId, otherOwner])
      expect(() => decryptObject(key, wrong, iv, payload)).to.throw(/does not authenticate/);
    const flipped = Buffer.from(payload);
    flipped[0] ^= 1;
    expect(() => decryptObject(key, object, iv, flipped)).to.throw(/does not authenticate/);
    expect(() => decryptObject(key, object, iv, payload.subarray(0, 15))).to.throw(
      /shorter than its authentication tag/,
    );
  });

  it("uses a fresh nonce and id for every object, so equal contents do not look equal", async function () {
    const plaintext = objectBytes(1000, 1);
    const a = await sealObject(key, owner, CHAIN_ID, plaintext);
    const b = await sealObject(key, owner, CHAIN_ID, plaintext);
    expect(a.manifest.objectId).to.not.equal(b.manifest.objectId);
    expect(a.manifest.encryption.iv).to.not.equal(b.manifest.encryption.iv);
    expect(a.manifest.fragments.some((h) => b.manifest.fragments.includes(h))).to.equal(false);
    expect(JSON.stringify(a.manifest)).to.not.include(Buffer.alloc(32, 7).toString("hex"));
  });

  it("refuses objects over 2 MiB with a clear error, before any work", async function () {
    const error = await expectEdgeError(
      () => sealObject(key, owner, CHAIN_ID, Buffer.alloc(STORAGE_MAX_OBJECT_BYTES + 1)),
      "STORAGE_OBJECT_TOO_LARGE",
      /^the object is 2097153 bytes; Edge Storage takes objects of at most 2097152 bytes \(2 MiB\)$/,
    );
    expect((error as unknown as { status: number }).status).to.equal(413);
    await expectEdgeError(() => sealObject(key, owner, CHAIN_ID, Buffer.alloc(3 * MiB)), "STORAGE_OBJECT_TOO_LARGE");
  });

  it("refuses k and n outside the codec's limits", async function () {
    for (const [k, n] of [
      [0, 4],
      [10, 10],
      [10, 17],
      [25, 26],
      [2.5, 4],
    ])
      await expectEdgeError(
        () => sealObject(key, owner, CHAIN_ID, Buffer.alloc(10), { k, n }),
        "STORAGE_BAD_PARAMETERS",
      );
    expect(() => checkCodingParameters(24, 30)).to.not.throw();
    expect(() => checkCodingParameters(1, 2)).to.not.throw();
  });

  it("refuses a manifest that is not its owner's, or not for the owner expected", async function () {
    const { manifest, fragments } = await sealObject(key, owner, CHAIN_ID, Buffer.from("x"));
    expect(verifyStorageManifest(CHAIN_ID, manifest)).to.equal(true);
    const altered = { ...manifest, size: 2, cipherSize: 18 };
    await expectEdgeError(
      () => openObject(key, CHAIN_ID, altered, fragments),
      "STORAGE_MANIFEST_INVALID",
      /not signed by/,
    );
    await expectEdgeError(() => openObject(key, CHAIN_ID + 1, manifest, fragments), "STORAGE_MANIFEST_INVALID");
    await expectEdgeError(
      () => openObject(key, CHAIN_ID, manifest, fragments, { owner: `0x${"33".repeat(20)}` }),
      "STORAGE_MANIFEST_INVALID",
      /not 0x3333/,
    );
  });

  describe("the codec alone", function () {
    it("gives the same fragments as when this format was fixed (stored fragments stay decodable)", async function () {
      // sha256 of the 16 fragments back to back, for objectBytes(size, 1) with k = 10 of n = 16. A change here means
      // a codec version or a layout that cannot read fragments already stored: a new manifest version, not an edit.
      const golden: Array<[number, string]> = [
        [0, "38723a2e5e8a17aa7950dc008209944e898f69a7bd10a23c839d341e935fd5ca"],
        [100_003, "98d8090d1730496b6af136fdd837203c287307511b1366a2c6f6fc38cfa01282"],
        [STORAGE_MAX_OBJECT_BYTES + 16, "ce65a454afffe3a924d9aa942c61194dee9348465835afaca359f311f6bde2d6"],
      ];
      for (const [size, digest] of golden) {
        const { fragments } = await encodeFragments(objectBytes(size, 1), 10, 16);
        expect(createHash("sha256").update(Buffer.concat(fragments)).digest("hex"), `size ${size}`).to.equal(digest);
      }
    });

    it("matches its fragments' hashes across encodings (deterministic) and rebuilds data from parity", async function () {
      const payload = randomBytes(100_003);
      const a = await encodeFragments(payload, 10, 16);
      const b = await encodeFragments(payload, 10, 16);
      expect(a.fragments.map(sha256Hex)).to.deep.equal(b.fragments.map(sha256Hex));
      expect(a.fragmentSize).to.equal(10_008);
      const parityOnlyAndFour = a.fragments.map((f, i) => (i < 6 ? undefined : f));
      const back = await decodeFragments(parityOnlyAndFour, 10, 16, a.fragmentSize, payload.length);
      expect(back.equals(payload)).to.equal(true);
      const wrongSlots = await decodeFragments(a.fragments.slice(1), 10, 16, a.fragmentSize, 1).catch((e) => e);
      expect(wrongSlots).to.be.instanceOf(TypeError);
    });
  });
});
