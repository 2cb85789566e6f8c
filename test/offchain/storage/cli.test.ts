import { expect } from "chai";
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { writeKeystoreFile } from "../../../offchain/common/keystore";
import { decodeCommand, encodeCommand, keygenCommand, storageMain } from "../../../offchain/storage/cli";
import { CHAIN_ID, expectEdgeError, objectBytes } from "./helpers";

const PRIVATE_KEY = `0x${"e7".repeat(32)}`;

describe("offchain/storage cli (edge-storage keygen, local encode and decode)", function () {
  this.timeout(30_000); // runs the CLI as a process (ts-node): seconds on a loaded machine
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let keyFile: string;
  let input: string;
  const chain = ["--chain-id", String(CHAIN_ID)];

  beforeEach(function () {
    dir = mkdtempSync(join(tmpdir(), "edge-storage-cli-"));
    const keystore = join(dir, "owner.json");
    const { address } = writeKeystoreFile(keystore, "pw", PRIVATE_KEY, 1024);
    env = { EDGE_STORAGE_KEYSTORE: keystore, EDGE_STORAGE_KEYSTORE_PASSWORD: "pw", OWNER: address };
    keyFile = join(dir, "storage.key");
    expect(JSON.parse(keygenCommand(["--out", keyFile]))).to.deep.equal({ keyFile });
    input = join(dir, "object.bin");
    writeFileSync(input, objectBytes(300_001, 3));
  });
  afterEach(function () {
    rmSync(dir, { recursive: true, force: true });
  });

  it("encodes a file into a manifest and 16 fragments, and decodes it from 10 of them", async function () {
    const out = join(dir, "object");
    const encoded = JSON.parse(
      await encodeCommand(["--in", input, "--out", out, "--key-file", keyFile, ...chain], env),
    );
    expect(encoded).to.include({ owner: env.OWNER, size: 300_001, k: 10, n: 16 });
    const manifest = JSON.parse(readFileSync(join(out, "manifest.json"), "utf8"));
    expect(manifest.objectId).to.equal(encoded.objectId);
    expect(JSON.stringify(manifest)).to.not.include(readFileSync(keyFile, "utf8").trim());
    for (const i of [0, 3, 5, 15]) unlinkSync(join(out, `fragment-${String(i).padStart(2, "0")}.bin`));
    const tampered = join(out, "fragment-07.bin");
    const bytes = readFileSync(tampered);
    bytes[0] ^= 0xff;
    writeFileSync(tampered, bytes);
    const back = join(dir, "back.bin");
    const decoded = JSON.parse(
      await decodeCommand(["--in", out, "--out", back, "--key-file", keyFile, "--owner", env.OWNER!, ...chain], env),
    );
    expect(decoded).to.deep.include({ size: 300_001, corrupt: [7], missing: [0, 3, 5, 15] });
    expect(readFileSync(back).equals(readFileSync(input))).to.equal(true);
    // Two more losses and the object cannot be rebuilt; the output file is not created.
    unlinkSync(join(out, "fragment-01.bin"));
    unlinkSync(join(out, "fragment-02.bin"));
    await expectEdgeError(
      () => decodeCommand(["--in", out, "--out", join(dir, "again.bin"), "--key-file", keyFile, ...chain], env),
      "STORAGE_NOT_ENOUGH_FRAGMENTS",
      /^9 of 16 fragments of object 0x[0-9a-f]{64} passed their sha256 check \(1 corrupt: 7, 6 missing\); 10 are needed$/,
    );
    expect(existsSync(join(dir, "again.bin"))).to.equal(false);
  });

  it("derives the key from the owner wallet with --wallet, and the key file's key does not open it", async function () {
    const out = join(dir, "object");
    await encodeCommand(["--in", input, "--out", out, "--wallet", "--k", "4", "--n", "6", ...chain], env);
    const back = join(dir, "back.bin");
    await decodeCommand(["--in", out, "--out", back, "--wallet", ...chain], env);
    expect(readFileSync(back).equals(readFileSync(input))).to.equal(true);
    await expectEdgeError(
      () => decodeCommand(["--in", out, "--out", join(dir, "x.bin"), "--key-file", keyFile, ...chain], env),
      "STORAGE_DECRYPT_FAILED",
    );
  });

  it("put without a file is a usage error (the usage names every command)", async function () {
    await expectEdgeError(() => storageMain(["put"]), "CLI_USAGE", /^usage: edge-storage keygen/);
  });

  it("refuses bad usage, an open key file, a large object, and existing outputs", async function () {
    const out = join(dir, "object");
    const run = (...args: string[]) => encodeCommand(args, env);
    await expectEdgeError(() => run("--in", input, "--out", out, ...chain), "CLI_USAGE", /exactly one of --key-file/);
    await expectEdgeError(() => run("--in", input, "--out", out, "--key-file", keyFile), "CLI_USAGE", /--chain-id/);
    await expectEdgeError(
      () => run("--in", input, "--out", dir, "--key-file", keyFile, ...chain),
      "CLI_USAGE",
      /exists/,
    );
    await expectEdgeError(
      () => run("--in", input, "--out", out, "--key-file", keyFile, "--k", "x", ...chain),
      "CLI_USAGE",
    );
    await expectEdgeError(
      () => encodeCommand(["--in", input, "--out", out, "--key-file", keyFile, ...chain], {}),
      "CLI_USAGE",
      /EDGE_STORAGE_KEYSTORE must name/,
    );
    chmodSync(keyFile, 0o644);
    await expectEdgeError(
      () => run("--in", input, "--out", out, "--key-file", keyFile, ...chain),
      "STORAGE_KEY_FILE_INVALID",
    );
    chmodSync(keyFile, 0o600);
    const big = join(dir, "big.bin");
    writeFileSync(big, Buffer.alloc(2 * 1024 * 1024 + 1));
    await expectEdgeError(
      () => run("--in", big, "--out", out, "--key-file", keyFile, ...chain),
      "STORAGE_OBJECT_TOO_LARGE",
    );
    expect(existsSync(out)).to.equal(false);
    await expectEdgeError(() => keygenCommand(["--out", keyFile]), "STORAGE_KEY_FILE_INVALID", /never overwritten/);
  });

  it("runs as a command: keygen makes a 0600 file, and a refused input exits 2 with one line", function () {
    const cli = (...args: string[]) =>
      spawnSync(process.execPath, ["-r", "ts-node/register/transpile-only", "offchain/storage/cli.ts", ...args], {
        encoding: "utf8",
        env: { ...process.env, ...env },
      });
    const file = join(dir, "new.key");
    const made = cli("keygen", "--out", file);
    expect(made.status, made.stderr).to.equal(0);
    expect(statSync(file).mode & 0o777).to.equal(0o600);
    const again = cli("keygen", "--out", file);
    expect(again.status).to.equal(2);
    expect(again.stderr).to.match(/^edge-storage: cannot create key file .*never overwritten\n$/);
  });
});
