import { expect } from "chai";
import fc from "fast-check";
import type { Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";

import {
  STORAGE_MAX_OBJECT_BYTES,
  type StorageManifest,
  checkStorageManifest,
  signStorageManifest,
  storageFragmentSize,
  storageManifestDigest,
  storageManifestProblem,
  storageObjectId,
  verifyStorageManifest,
} from "../../../offchain/common/protocol";
import { StorageKey } from "../../../offchain/storage/keys";
import { sealObject } from "../../../offchain/storage/object";
import { FC_SEED, fcRuns } from "../../shared/fastcheck";
import { CHAIN_ID } from "./helpers";

const owner = privateKeyToAccount(`0x${"a1".repeat(32)}`);
const mallory = privateKeyToAccount(`0x${"b2".repeat(32)}`);
const key = new StorageKey(Buffer.alloc(32, 7), "key-file");
const ORDER = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

/** The other valid encoding of the same signature: s -> n - s (high s) and v flipped. */
function highS(signature: string): Hex {
  const s = BigInt(`0x${signature.slice(66, 130)}`);
  const v = Number.parseInt(signature.slice(130), 16);
  return `${signature.slice(0, 66)}${(ORDER - s).toString(16).padStart(64, "0")}${(v === 27 ? 28 : 27).toString(16)}` as Hex;
}

const unsigned = ({ signature: _, ...rest }: StorageManifest) => rest;
const hex32 = (byte: number) => `0x${byte.toString(16).padStart(2, "0").repeat(32)}`;

describe("offchain/common/protocol storageManifest", function () {
  let manifest: StorageManifest;
  before(async function () {
    manifest = (await sealObject(key, owner, CHAIN_ID, Buffer.alloc(1234, 1), { now: 1_700_000_000_000 })).manifest;
  });

  it("accepts the owner's canonical signature and returns the digest it signs", function () {
    expect(checkStorageManifest(CHAIN_ID, manifest)).to.deep.equal({
      ok: true,
      digest: storageManifestDigest(CHAIN_ID, manifest),
    });
    expect(manifest.placement).to.deep.equal([]);
    expect(JSON.stringify(manifest)).to.not.match(/key/i);
  });

  it("refuses a manifest with any signed field altered", function () {
    const alterations: Array<[string, (m: StorageManifest) => StorageManifest]> = [
      ["size", (m) => ({ ...m, size: m.size + 1, cipherSize: m.cipherSize + 1 })],
      ["k and n", (m) => ({ ...m, k: 11, n: 16, fragmentSize: storageFragmentSize(m.cipherSize, 11) })],
      ["a fragment hash", (m) => ({ ...m, fragments: [hex32(9), ...m.fragments.slice(1)] })],
      ["the fragment order", (m) => ({ ...m, fragments: [m.fragments[1], m.fragments[0], ...m.fragments.slice(2)] })],
      ["the nonce (iv)", (m) => ({ ...m, encryption: { ...m.encryption, iv: `0x${"00".repeat(12)}` } })],
      ["createdAt", (m) => ({ ...m, createdAt: "1700000000001" })],
    ];
    for (const [what, alter] of alterations) {
      const check = checkStorageManifest(CHAIN_ID, alter(manifest));
      expect(check, what).to.deep.include({ ok: false, reason: "wrong-signer" });
    }
    expect(checkStorageManifest(CHAIN_ID + 1, manifest)).to.deep.include({ ok: false, reason: "wrong-signer" });
  });

  it("lets placement change without the owner (it is not signed), but only to indexes below n, each once", function () {
    const placed = { ...manifest, placement: [{ fragment: 0, host: `0x${"44".repeat(20)}` }] };
    expect(verifyStorageManifest(CHAIN_ID, placed)).to.equal(true);
    const outside = { ...manifest, placement: [{ fragment: 16, host: `0x${"44".repeat(20)}` }] };
    expect(checkStorageManifest(CHAIN_ID, outside)).to.deep.include({ ok: false, reason: "malformed" });
    const twice = { ...manifest, placement: [placed.placement[0], placed.placement[0]] };
    expect(storageManifestProblem(twice)).to.equal("placement names fragment 0 twice");
  });

  it("refuses another signer, a forged signature, and the owner's signature over another object", async function () {
    // Mallory signs the owner's very digest: the owner field says whose signature it must be.
    const byMallory = {
      ...manifest,
      signature: await mallory.sign({ hash: storageManifestDigest(CHAIN_ID, manifest) }),
    };
    expect(checkStorageManifest(CHAIN_ID, byMallory)).to.deep.include({ ok: false, reason: "wrong-signer" });
    // Mallory claims the owner's object id as hers: the id derives from the owner, so it does not match.
    const claimed = await signStorageManifest(mallory, CHAIN_ID, { ...unsigned(manifest), owner: mallory.address });
    expect(checkStorageManifest(CHAIN_ID, claimed)).to.deep.include({ ok: false, reason: "malformed" });
    expect(storageManifestProblem(claimed)).to.match(/^objectId 0x[0-9a-f]{64} is not derived from owner/);
    // Random 65-byte signatures (canonical in form) recover nobody or someone else.
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 64, maxLength: 64 }), fc.constantFrom(27, 28), (rs, v) => {
        const sig = `0x${Buffer.from(rs).toString("hex")}${v.toString(16)}`;
        expect(verifyStorageManifest(CHAIN_ID, { ...manifest, signature: sig })).to.equal(false);
      }),
      { seed: FC_SEED, numRuns: fcRuns(100) },
    );
  });

  it("refuses non-canonical encodings of the owner's own signature: high s, v 0/1, wrong length", function () {
    const sig = manifest.signature;
    const cases: Array<[string, string, string]> = [
      ["high s", highS(sig), "non-canonical"],
      ["v 0/1", `${sig.slice(0, 130)}${sig.endsWith("1b") ? "00" : "01"}`, "non-canonical"],
      ["64 bytes (EIP-2098 compact)", sig.slice(0, 130), "malformed"],
      ["66 bytes", `${sig}00`, "malformed"],
    ];
    for (const [what, signature, reason] of cases)
      expect(checkStorageManifest(CHAIN_ID, { ...manifest, signature }), what).to.deep.include({ ok: false, reason });
  });

  it("refuses malformed manifests: schema, sizes that disagree, n - k outside the codec", function () {
    const cases: Array<[Partial<StorageManifest> | Record<string, unknown>, RegExp]> = [
      [{ size: STORAGE_MAX_OBJECT_BYTES + 1 }, /^the manifest at \/size/],
      [{ cipherSize: manifest.cipherSize + 8 }, /^cipherSize \d+ is not size/],
      [{ fragmentSize: manifest.fragmentSize + 8 }, /^fragmentSize \d+ is not \d+ for k = 10$/],
      [{ n: 17 }, /^n - k is 7/],
      [{ fragments: manifest.fragments.slice(1) }, /lists 15 fragment hashes for n = 16/],
      [{ objectId: manifest.objectId.toUpperCase().replace("0X", "0x") }, /^the manifest at \/objectId/],
      [{ extra: 1 }, /^the manifest/],
      [{ version: 2 }, /^the manifest at \/version/],
      [{ encryption: { ...manifest.encryption, cipher: "AES-128-CBC" } }, /^the manifest at \/encryption\/cipher/],
    ];
    for (const [change, message] of cases) {
      const check = checkStorageManifest(CHAIN_ID, { ...manifest, ...change });
      expect(check, JSON.stringify(change)).to.deep.include({ ok: false, reason: "malformed" });
      expect((check as { message: string }).message).to.match(message);
    }
    for (const bad of [null, 7, "manifest", [], {}]) expect(verifyStorageManifest(CHAIN_ID, bad)).to.equal(false);
  });

  it("derives object ids from owner and nonce only: a property over random owners and nonces", function () {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 20, maxLength: 20 }),
        fc.uint8Array({ minLength: 20, maxLength: 20 }),
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        (a, b, nonce) => {
          const hexOf = (bytes: Uint8Array) => `0x${Buffer.from(bytes).toString("hex")}` as Hex;
          const idA = storageObjectId(hexOf(a), hexOf(nonce));
          expect(idA).to.equal(storageObjectId(hexOf(a).toUpperCase().replace("0X", "0x"), hexOf(nonce)));
          if (!Buffer.from(a).equals(Buffer.from(b))) expect(idA).to.not.equal(storageObjectId(hexOf(b), hexOf(nonce)));
        },
      ),
      { seed: FC_SEED, numRuns: fcRuns(200) },
    );
    expect(() => storageObjectId(owner.address, "0x00")).to.throw(/nonce 32 bytes/);
  });

  it("refuses to sign a manifest for another owner", async function () {
    let error: unknown;
    await signStorageManifest(mallory, CHAIN_ID, unsigned(manifest)).catch((e) => (error = e));
    expect(String(error)).to.match(/is not the signer/);
  });
});
