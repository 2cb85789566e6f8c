import { expect } from "chai";
import { chmodSync, chownSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspect } from "node:util";
import secp256k1 from "secp256k1";
import { type Hex, hashMessage } from "viem";
import { privateKeyToAccount } from "viem/accounts";

import {
  StorageKey,
  generateKeyFile,
  readKeyFile,
  storageKeyFromWalletSignature,
  walletKeyMessage,
  walletStorageKey,
} from "../../../offchain/storage/keys";
import { openObject, sealObject } from "../../../offchain/storage/object";
import { CHAIN_ID, expectEdgeError } from "./helpers";

const PRIVATE_KEY = `0x${"c3".repeat(32)}` as const;
const wallet = privateKeyToAccount(PRIVATE_KEY);
const ORDER = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

/** Whether a key seals what the other opens: the way to compare keys that never show their bytes. */
async function sameKey(a: StorageKey, b: StorageKey): Promise<boolean> {
  const { manifest, fragments } = await sealObject(a, wallet, CHAIN_ID, Buffer.from("same?"));
  return openObject(b, CHAIN_ID, manifest, fragments).then(
    () => true,
    () => false,
  );
}

describe("offchain/storage keys (key files, wallet-derived keys)", function () {
  let dir: string;
  beforeEach(function () {
    dir = mkdtempSync(join(tmpdir(), "edge-storage-keys-"));
  });
  afterEach(function () {
    rmSync(dir, { recursive: true, force: true });
  });

  describe("key files", function () {
    it("keygen writes 32 random bytes as hex, mode 0600, and reads back the same key", async function () {
      const file = join(dir, "storage.key");
      generateKeyFile(file);
      expect(statSync(file).mode & 0o777).to.equal(0o600);
      expect(readFileSync(file, "utf8")).to.match(/^[0-9a-f]{64}\n$/);
      expect(await sameKey(readKeyFile(file), readKeyFile(file))).to.equal(true);
      const other = join(dir, "other.key");
      generateKeyFile(other);
      expect(readFileSync(other, "utf8")).to.not.equal(readFileSync(file, "utf8"));
      expect(await sameKey(readKeyFile(file), readKeyFile(other))).to.equal(false);
    });

    it("never overwrites an existing file", async function () {
      const file = join(dir, "storage.key");
      generateKeyFile(file);
      const before = readFileSync(file, "utf8");
      await expectEdgeError(
        () => generateKeyFile(file),
        "STORAGE_KEY_FILE_INVALID",
        /it exists; a key file is never overwritten/,
      );
      expect(readFileSync(file, "utf8")).to.equal(before);
    });

    it("refuses a key file group or others may read or write", async function () {
      if (process.platform === "win32") this.skip();
      const file = join(dir, "storage.key");
      generateKeyFile(file);
      for (const mode of [0o640, 0o604, 0o644, 0o620, 0o602, 0o666, 0o660]) {
        chmodSync(file, mode);
        const octal = mode.toString(8);
        await expectEdgeError(
          () => readKeyFile(file),
          "STORAGE_KEY_FILE_INVALID",
          new RegExp(`it is open to group or others \\(mode ${octal}\\): chmod 600 it$`),
        );
      }
      chmodSync(file, 0o400);
      expect(() => readKeyFile(file)).to.not.throw();
    });

    it("refuses a key file another user owns (checked when the tests run as root, who can give it away)", async function () {
      if (process.getuid?.() !== 0) this.skip();
      const file = join(dir, "storage.key");
      generateKeyFile(file);
      chownSync(file, 12345, 12345);
      await expectEdgeError(
        () => readKeyFile(file),
        "STORAGE_KEY_FILE_INVALID",
        /owned by uid 12345, not by this user/,
      );
    });

    it("checks the file a symbolic link points to", async function () {
      if (process.platform === "win32") this.skip();
      const file = join(dir, "storage.key");
      generateKeyFile(file);
      symlinkSync(file, join(dir, "link.key"));
      expect(() => readKeyFile(join(dir, "link.key"))).to.not.throw();
      chmodSync(file, 0o644);
      await expectEdgeError(() => readKeyFile(join(dir, "link.key")), "STORAGE_KEY_FILE_INVALID", /mode 644/);
    });

    it("refuses a missing file, a directory, and files that are not exactly one key", async function () {
      await expectEdgeError(() => readKeyFile(join(dir, "none")), "STORAGE_KEY_FILE_INVALID", /ENOENT/);
      await expectEdgeError(() => readKeyFile(dir), "STORAGE_KEY_FILE_INVALID", /not a regular file/);
      const contents = ["", "00".repeat(31) + "\n", "AB".repeat(32) + "\n", "00".repeat(33), "00".repeat(32) + "\n\n"];
      for (const [i, text] of contents.entries()) {
        const file = join(dir, `bad${i}.key`);
        writeFileSync(file, text, { mode: 0o600 });
        await expectEdgeError(() => readKeyFile(file), "STORAGE_KEY_FILE_INVALID", /not a key file/);
      }
      const raw = join(dir, "raw.key");
      writeFileSync(raw, Buffer.alloc(32, 1), { mode: 0o600 });
      await expectEdgeError(() => readKeyFile(raw), "STORAGE_KEY_FILE_INVALID", /64 lowercase hex digits/);
    });

    it("never shows the key's bytes: inspect, JSON, String, and error messages", async function () {
      const file = join(dir, "storage.key");
      generateKeyFile(file);
      const secret = readFileSync(file, "utf8").trim();
      const key = readKeyFile(file);
      const shown = [inspect(key), JSON.stringify({ key }), String(key), `${key}`, inspect({ nested: { key } })];
      for (const text of shown) {
        expect(text).to.not.include(secret);
        expect(text).to.include("[redacted]");
      }
      chmodSync(file, 0o644);
      const error = await expectEdgeError(() => readKeyFile(file), "STORAGE_KEY_FILE_INVALID");
      expect(error.message).to.not.include(secret);
    });
  });

  describe("keys derived from a wallet signature", function () {
    it("derives the same key each time from a deterministic (RFC 6979) signer", async function () {
      const a = await walletStorageKey(wallet);
      const b = await walletStorageKey(privateKeyToAccount(PRIVATE_KEY));
      expect(await sameKey(a, b)).to.equal(true);
      const other = await walletStorageKey(privateKeyToAccount(`0x${"c4".repeat(32)}`));
      expect(await sameKey(a, other)).to.equal(false);
      expect(walletKeyMessage(wallet.address)).to.include(wallet.address.toLowerCase());
    });

    it("derives the same key from either encoding of the signature (low or high s, v 0/1 or 27/28)", async function () {
      const signature = await wallet.signMessage({ message: walletKeyMessage(wallet.address) });
      const s = BigInt(`0x${signature.slice(66, 130)}`);
      const v = Number.parseInt(signature.slice(130), 16);
      const high = `${signature.slice(0, 66)}${(ORDER - s).toString(16).padStart(64, "0")}${(v === 27 ? 28 : 27).toString(16)}`;
      const zeroOne = `${signature.slice(0, 130)}0${v - 27}`;
      const base = storageKeyFromWalletSignature(wallet.address, signature);
      for (const sig of [high, zeroOne] as Hex[])
        expect(await sameKey(base, storageKeyFromWalletSignature(wallet.address, sig))).to.equal(true);
    });

    it("refuses a signer that randomises its nonce (not deterministic)", async function () {
      const privateKey = Buffer.from(PRIVATE_KEY.slice(2), "hex");
      const randomised = {
        address: wallet.address,
        // A valid signature of the wallet, made with extra entropy (RFC 6979 section 3.6): different each time.
        signMessage: async ({ message }: { message: string }) => {
          const hash = Buffer.from(hashMessage(message).slice(2), "hex");
          const { signature, recid } = secp256k1.ecdsaSign(hash, privateKey, {
            data: Buffer.from(crypto.getRandomValues(new Uint8Array(32))),
          });
          return `0x${Buffer.from(signature).toString("hex")}${(27 + recid).toString(16)}` as Hex;
        },
      };
      await expectEdgeError(
        () => walletStorageKey(randomised as never),
        "STORAGE_WALLET_KEY_INVALID",
        /does not sign deterministically \(RFC 6979\).*use a key file instead$/,
      );
    });

    it("refuses a signature of another wallet, of another message, or malformed", async function () {
      const mallory = privateKeyToAccount(`0x${"d5".repeat(32)}`);
      const byMallory = await mallory.signMessage({ message: walletKeyMessage(wallet.address) });
      const otherMessage = await wallet.signMessage({ message: "hello" });
      for (const sig of [byMallory, otherMessage, "0x1234", `0x${"00".repeat(65)}`] as Hex[])
        await expectEdgeError(
          () => storageKeyFromWalletSignature(wallet.address, sig),
          "STORAGE_WALLET_KEY_INVALID",
          /is not 0x[0-9a-fA-F]{40}'s over the storage key message/,
        );
    });
  });
});
