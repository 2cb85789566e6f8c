import { expect } from "chai";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { spawnSync } from "node:child_process";

import { ConfigError, helpText, loadConfig } from "../../node/config";
import { writeKeystoreFile } from "../../offchain/common/keystore";

const KEY = "0x" + "ab".repeat(32);
const base = ["--role", "gateway", "--rpc", "http://127.0.0.1:8545", "--addresses", "book.json"];

function problems(argv: string[], env: Record<string, string> = {}): string[] {
  try {
    loadConfig(argv, env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

describe("edge-node config", function () {
  it("applies defaults and derives the public URL", function () {
    const config = loadConfig(base, { EDGE_NODE_DEVICE_KEY: KEY });
    expect(config).to.include({
      role: "gateway",
      port: 7000,
      confirmations: 2,
      pollIntervalMs: 1000,
      listenHost: "127.0.0.1",
    });
    expect(config.publicUrl).to.equal("http://127.0.0.1:7000");
    expect(config.allowCustomers).to.deep.equal([]);
  });

  it("takes flags over the environment over the file", function () {
    const dir = mkdtempSync(join(tmpdir(), "edge-config-"));
    try {
      const file = join(dir, "node.json");
      writeFileSync(
        file,
        JSON.stringify({
          port: 1,
          confirmations: 5,
          pollIntervalMs: 300,
          deviceKey: KEY,
          allowCustomers: ["0x" + "11".repeat(20)],
        }),
      );
      const config = loadConfig([...base, "--config", file, "--port", "3"], {
        EDGE_NODE_PORT: "2",
        EDGE_NODE_CONFIRMATIONS: "4",
      });
      expect(config).to.include({ port: 3, confirmations: 4, pollIntervalMs: 300, deviceKey: KEY });
      expect(config.allowCustomers).to.have.length(1);
      expect(
        loadConfig(base, {
          EDGE_NODE_DEVICE_KEY: KEY,
          EDGE_NODE_ALLOW_CUSTOMERS: `0x${"22".repeat(20)}, 0x${"33".repeat(20)}`,
        }).allowCustomers,
      ).to.have.length(2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("takes a list flag repeated as well as comma-separated: every value counts, not just the last", function () {
    const config = loadConfig(
      [...base, "--stargates", "127.0.0.1:7443,127.0.0.1:7444", "--stargates", "127.0.0.1:7445"],
      { EDGE_NODE_DEVICE_KEY: KEY },
    );
    expect(config.stargates).to.deep.equal(["127.0.0.1:7443", "127.0.0.1:7444", "127.0.0.1:7445"]);
  });

  it("lists every problem with the name the user gave", function () {
    expect(problems([], {})).to.include.members([
      "--role is required",
      "--rpc is required",
      "--addresses is required",
      "EDGE_NODE_DEVICE_KEY is required",
    ]);
    expect(
      problems(["--role", "miner", "--rpc", "ws://x", "--addresses", "a", "--port", "70000", "--confirmations", "x"], {
        EDGE_NODE_DEVICE_KEY: "0x12",
      }),
    ).to.include.members([
      "--role must be one of host, gateway, stargate",
      "--rpc must be an http(s) URL",
      "--port: must be <= 65535",
      "--confirmations: must be integer",
      "EDGE_NODE_DEVICE_KEY must be a private key (0x and 64 hex digits)",
    ]);
    expect(
      problems(["--role", "host", "--rpc", "http://x", "--addresses", "a"], { EDGE_NODE_DEVICE_KEY: KEY }),
    ).to.deep.equal(["--gateway: a host needs the URL of its gateway"]);
    expect(problems([...base, "--device-key", KEY])[0]).to.match(
      /--device-key.*EDGE_NODE_DEVICE_KEY or the config file/,
    );
    expect(problems([...base, "--config", "/no/such.json"])[0]).to.match(/--config \/no\/such.json/);
    expect(problems([...base, "--admin-token", "x"])[0]).to.match(/EDGE_NODE_ADMIN_TOKEN/);
    expect(problems(base, { EDGE_NODE_DEVICE_KEY: KEY, EDGE_NODE_ADMIN_TOKEN: "short" })).to.deep.equal([
      "EDGE_NODE_ADMIN_TOKEN: must not have fewer than 16 characters",
    ]);
  });

  it("reads the device key from an encrypted keystore, with the password from a variable or a file", function () {
    const dir = mkdtempSync(join(tmpdir(), "edge-keystore-"));
    try {
      const file = join(dir, "device.json");
      writeKeystoreFile(file, "correct horse", KEY, 1024); // a low scrypt cost keeps the test fast
      const passwordFile = join(dir, "password");
      writeFileSync(passwordFile, "correct horse\n");
      const viaVariable = loadConfig(base, {
        EDGE_NODE_DEVICE_KEY_KEYSTORE: file,
        EDGE_NODE_DEVICE_KEY_KEYSTORE_PASSWORD: "correct horse",
      });
      expect(viaVariable.deviceKey).to.equal(KEY);
      const viaFile = loadConfig(base, {
        EDGE_NODE_DEVICE_KEY_KEYSTORE: file,
        EDGE_NODE_DEVICE_KEY_KEYSTORE_PASSWORD_FILE: passwordFile,
      });
      expect(viaFile.deviceKey).to.equal(KEY);
      expect(
        problems(base, { EDGE_NODE_DEVICE_KEY_KEYSTORE: file, EDGE_NODE_DEVICE_KEY_KEYSTORE_PASSWORD: "wrong" }),
      ).to.deep.equal([`keystore ${file}: wrong password`]);
      expect(problems(base, { EDGE_NODE_DEVICE_KEY_KEYSTORE: file })).to.deep.equal([
        "EDGE_NODE_DEVICE_KEY_KEYSTORE is set: give its password in EDGE_NODE_DEVICE_KEY_KEYSTORE_PASSWORD or EDGE_NODE_DEVICE_KEY_KEYSTORE_PASSWORD_FILE",
      ]);
      expect(
        problems(base, {
          EDGE_NODE_DEVICE_KEY: KEY,
          EDGE_NODE_DEVICE_KEY_KEYSTORE: file,
          EDGE_NODE_DEVICE_KEY_KEYSTORE_PASSWORD: "correct horse",
        }),
      ).to.deep.equal(["set EDGE_NODE_DEVICE_KEY or EDGE_NODE_DEVICE_KEY_KEYSTORE, not both"]);
      expect(
        problems(base, {
          EDGE_NODE_DEVICE_KEY_KEYSTORE: `${file},${file}`,
          EDGE_NODE_DEVICE_KEY_KEYSTORE_PASSWORD: "correct horse",
        }),
      ).to.deep.equal(["EDGE_NODE_DEVICE_KEY_KEYSTORE names 2 files; one key is expected"]);
      writeFileSync(join(dir, "junk.json"), "{}");
      expect(
        problems(base, {
          EDGE_NODE_DEVICE_KEY_KEYSTORE: join(dir, "junk.json"),
          EDGE_NODE_DEVICE_KEY_KEYSTORE_PASSWORD: "x",
        })[0],
      ).to.match(/junk.json is not a JSON keystore/);
      expect(() => writeKeystoreFile(file, "other", KEY, 1024)).to.throw(/exists; not overwriting/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("documents every option", function () {
    const help = helpText();
    for (const flag of [
      "--role",
      "--rpc",
      "--addresses",
      "EDGE_NODE_DEVICE_KEY",
      "--gateway",
      "--oracle",
      "--billing",
      "--confirmations",
      "EDGE_NODE_ADMIN_TOKEN",
      "--config",
      "--region",
    ]) {
      expect(help).to.include(flag);
    }
  });

  describe("--region (D68)", function () {
    const env = { EDGE_NODE_DEVICE_KEY: KEY };

    it("parses COUNTRY/name from the flag, the environment or the file; without it the node is undeclared", function () {
      expect(loadConfig([...base, "--region", "DE/eu-central"], env).region).to.deep.equal({
        country: "DE",
        region: "eu-central",
      });
      expect(loadConfig(base, { ...env, EDGE_NODE_REGION: "US/us-east" }).region).to.deep.equal({
        country: "US",
        region: "us-east",
      });
      expect(loadConfig(base, env)).not.to.have.property("region");
    });

    it("refuses a region that is not an assigned country and a region name, saying why", function () {
      expect(problems([...base, "--region", "EU/eu-central"], env)).to.deep.equal([
        '--region: "EU" is not an ISO 3166-1 alpha-2 country code (upper case, for example DE)',
      ]);
      expect(problems([...base, "--region", "ZZ/x"], env)[0]).to.match(/^--region: "ZZ" is not an ISO 3166-1/);
      expect(problems([...base, "--region", "de/eu-central"], env)[0]).to.match(/^--region: "de" is not an ISO/);
      expect(problems([...base, "--region", "DE"], env)[0]).to.match(/^--region: "DE" is not COUNTRY\/region/);
      expect(problems([...base, "--region", "DE/EU Central"], env)[0]).to.match(/is not a region name/);
    });

    it("edge-node exits 2 with the message for a bad --region", function () {
      this.timeout(60_000);
      const run = spawnSync(
        process.execPath,
        ["-r", "ts-node/register/transpile-only", "node/cli.ts", ...base, "--region", "UK/london"],
        { env: { ...process.env, ...env }, encoding: "utf8", timeout: 50_000 },
      );
      expect(run.status).to.equal(2);
      expect(run.stderr).to.include('--region: "UK" is not an ISO 3166-1 alpha-2 country code');
    });
  });
});
