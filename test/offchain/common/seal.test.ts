/**
 * Sealed boxes to a device key (offchain/common/seal.ts, D64): what the certificate service relies on to send a
 * certificate's private key to one admitted gateway only.
 */
import { createECDH, randomBytes } from "node:crypto";

import { expect } from "chai";
import fc from "fast-check";

import { type Sealed, seal, unseal } from "../../../offchain/common/seal";

function device(): { privateKey: string; publicKey: Buffer } {
  const ecdh = createECDH("secp256k1");
  ecdh.generateKeys();
  return { privateKey: `0x${ecdh.getPrivateKey("hex").padStart(64, "0")}`, publicKey: ecdh.getPublicKey() };
}

const flip = (b64: string, index: number): string => {
  const bytes = Buffer.from(b64, "base64");
  bytes[index % bytes.length] ^= 0x01;
  return bytes.toString("base64");
};

describe("sealed boxes (offchain/common/seal.ts, D64)", () => {
  const alice = device();
  const bob = device();

  it("opens for the recipient and the context it was sealed with, whatever the plaintext; each box is fresh", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 4096 }), fc.string({ maxLength: 253 }), (plaintext, context) => {
        const box = seal(alice.publicKey, Buffer.from(plaintext), context);
        expect(unseal(alice.privateKey, box, context).equals(Buffer.from(plaintext))).to.equal(true);
        const again = seal(alice.publicKey, Buffer.from(plaintext), context);
        expect(again.ephemeral).not.to.equal(box.ephemeral);
        expect(again.iv).not.to.equal(box.iv);
      }),
      { seed: 190_001, numRuns: 200 },
    );
  });

  it("does not open for another device, another context (domain), or after any bit of it changed", () => {
    const box = seal(alice.publicKey, Buffer.from("-----BEGIN PRIVATE KEY-----\nsecret"), "a.example.test");
    expect(() => unseal(bob.privateKey, box, "a.example.test")).to.throw();
    expect(() => unseal(alice.privateKey, box, "b.example.test")).to.throw();
    fc.assert(
      fc.property(fc.constantFrom<keyof Sealed>("ephemeral", "iv", "tag", "ciphertext"), fc.nat(), (field, at) => {
        const changed = { ...box, [field]: flip(box[field], at) };
        expect(() => unseal(alice.privateKey, changed, "a.example.test")).to.throw();
      }),
      { seed: 190_002, numRuns: 300 },
    );
  });

  it("refuses a truncated tag (GCM would take 4 bytes) and an IV that is not 12 bytes", () => {
    const box = seal(alice.publicKey, randomBytes(64), "c.example.test");
    for (const length of [4, 8, 12, 15]) {
      const tag = Buffer.from(box.tag, "base64").subarray(0, length).toString("base64");
      expect(() => unseal(alice.privateKey, { ...box, tag }, "c.example.test"), `${length}`).to.throw();
    }
    const iv = Buffer.concat([Buffer.from(box.iv, "base64"), Buffer.alloc(4)]).toString("base64");
    expect(() => unseal(alice.privateKey, { ...box, iv }, "c.example.test")).to.throw(/12 bytes/);
  });

  it("refuses to seal to anything but an uncompressed secp256k1 public key", () => {
    const compressed = createECDH("secp256k1");
    compressed.generateKeys();
    expect(() => seal(compressed.getPublicKey(undefined, "compressed"), Buffer.from("x"), "d")).to.throw(
      /uncompressed secp256k1/,
    );
    expect(() => seal(Buffer.alloc(65), Buffer.from("x"), "d")).to.throw(/uncompressed secp256k1/);
  });
});
