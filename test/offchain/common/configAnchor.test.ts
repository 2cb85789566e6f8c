import { expect } from "chai";
import { ethers, network } from "hardhat";
import { type Address, type Hex, type PublicClient, createWalletClient, defineChain, http } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";

import { ConfigAnchor, ZERO_HASH, anchorVersion } from "../../../offchain/common/configAnchor";
import { isEdgeError } from "../../../offchain/common/errors";
import type { ConfigRegistry } from "../../../typechain";
import { type RpcServer, publicClient, startRpcServer } from "../../shared/rpc";

// Not viem/chains: its types pull in ox's TypeScript sources, which do not compile under this project's settings.
const hardhat = defineChain({
  id: 31337,
  name: "Hardhat",
  nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
  rpcUrls: { default: { http: ["http://127.0.0.1:8545"] } },
});

const HASH_1 = ethers.keccak256(ethers.toUtf8Bytes("one")) as Hex;
const HASH_2 = ethers.keccak256(ethers.toUtf8Bytes("two")) as Hex;

/** A public client that counts the reads it makes. */
function counting(client: PublicClient) {
  const calls: string[] = [];
  return {
    calls,
    client: {
      readContract: ((args: { functionName: string }) => {
        calls.push(args.functionName);
        return client.readContract(args as never);
      }) as PublicClient["readContract"],
    },
  };
}

async function expectEdgeError(promise: Promise<unknown>, code: string): Promise<Record<string, unknown>> {
  try {
    await promise;
  } catch (error) {
    expect(isEdgeError(error), String(error)).to.equal(true);
    expect((error as { code: string }).code).to.equal(code);
    return (error as { details?: Record<string, unknown> }).details ?? {};
  }
  throw new Error(`expected ${code}`);
}

describe("offchain/common/configAnchor", function () {
  let rpc: RpcServer;
  let client: PublicClient;
  let registry: ConfigRegistry;
  let address: Address;
  const publisherKey = generatePrivateKey();
  const publisher = privateKeyToAccount(publisherKey);
  const wallet = () => createWalletClient({ account: publisher, chain: hardhat, transport: http(rpc.url) });

  before(async function () {
    rpc = await startRpcServer();
    client = publicClient(rpc.url) as PublicClient;
  });

  after(async function () {
    await rpc.close();
  });

  beforeEach(async function () {
    const [admin] = await ethers.getSigners();
    registry = await ethers.deployContract("ConfigRegistry", [admin.address, 0n, publisher.address]);
    address = (await registry.getAddress()) as Address;
    await network.provider.send("hardhat_setBalance", [publisher.address, "0xde0b6b3a7640000"]);
  });

  describe("anchorVersion", function () {
    it("anchors consecutive versions and returns the mined transaction", async function () {
      const tx = await anchorVersion(wallet(), client, address, 1, HASH_1);
      const receipt = await client.getTransactionReceipt({ hash: tx });
      expect(receipt.status).to.equal("success");
      expect(await registry.latest()).to.deep.equal([1n, HASH_1]);
      await anchorVersion(wallet(), client, address, 2, HASH_2);
      expect(await registry.hashOf(2n)).to.equal(HASH_2);
    });

    it("refuses a version that is not latest + 1 with the expected one, before sending anything", async function () {
      await anchorVersion(wallet(), client, address, 1, HASH_1);
      const nonce = await client.getTransactionCount({ address: publisher.address });
      for (const version of [1, 3]) {
        const details = await expectEdgeError(
          anchorVersion(wallet(), client, address, version, HASH_2),
          "CONFIG_ANCHOR_VERSION_NOT_NEXT",
        );
        expect(details).to.deep.equal({ version, expected: 2 });
      }
      expect(await client.getTransactionCount({ address: publisher.address })).to.equal(nonce);
    });

    it("refuses an account without PUBLISHER_ROLE, a zero or malformed hash and version 0 or -1", async function () {
      const stranger = createWalletClient({
        account: privateKeyToAccount(generatePrivateKey()),
        chain: hardhat,
        transport: http(rpc.url),
      });
      await expectEdgeError(anchorVersion(stranger, client, address, 1, HASH_1), "CONFIG_ANCHOR_NOT_PUBLISHER");
      await expectEdgeError(anchorVersion(wallet(), client, address, 1, ZERO_HASH), "CONFIG_ANCHOR_HASH_INVALID");
      await expectEdgeError(anchorVersion(wallet(), client, address, 1, "0x1234"), "CONFIG_ANCHOR_HASH_INVALID");
      await expectEdgeError(anchorVersion(wallet(), client, address, 0, HASH_1), "CONFIG_ANCHOR_VERSION_INVALID");
      await expectEdgeError(anchorVersion(wallet(), client, address, -1, HASH_1), "CONFIG_ANCHOR_VERSION_INVALID");
      const noAccount = createWalletClient({ chain: hardhat, transport: http(rpc.url) });
      await expectEdgeError(anchorVersion(noAccount, client, address, 1, HASH_1), "CONFIG_ANCHOR_NOT_PUBLISHER");
    });
  });

  describe("ConfigAnchor", function () {
    it("answers version 0 and the zero hash, and undefined for any version, before anything is published", async function () {
      const anchor = new ConfigAnchor({ client, address });
      expect(await anchor.latest()).to.deep.equal({ version: 0, hash: ZERO_HASH });
      expect(await anchor.hashOf(0)).to.equal(undefined);
      expect(await anchor.hashOf(1)).to.equal(undefined);
    });

    it("never caches 'not anchored' and caches an anchored hash forever", async function () {
      const { calls, client: counted } = counting(client);
      const anchor = new ConfigAnchor({ client: counted, address });
      expect(await anchor.hashOf(1)).to.equal(undefined);
      await anchorVersion(wallet(), client, address, 1, HASH_1);
      expect(await anchor.hashOf(1)).to.equal(HASH_1);
      expect(calls).to.deep.equal(["hashOf", "hashOf"]);
      for (let i = 0; i < 5; i++) expect(await anchor.hashOf(1)).to.equal(HASH_1);
      expect(calls).to.have.length(2);
      // Version 0 is never anchored: answered without a read.
      expect(await anchor.hashOf(0)).to.equal(undefined);
      expect(calls).to.have.length(2);
    });

    it("reads latest every time and remembers the hash it names", async function () {
      const { calls, client: counted } = counting(client);
      const anchor = new ConfigAnchor({ client: counted, address });
      await anchorVersion(wallet(), client, address, 1, HASH_1);
      expect(await anchor.latest()).to.deep.equal({ version: 1, hash: HASH_1 });
      await anchorVersion(wallet(), client, address, 2, HASH_2);
      expect(await anchor.latest()).to.deep.equal({ version: 2, hash: HASH_2 });
      expect(await anchor.hashOf(1)).to.equal(HASH_1);
      expect(await anchor.hashOf(2)).to.equal(HASH_2);
      expect(calls).to.deep.equal(["latest", "latest"]);
    });

    it("shares one read among concurrent callers of the same version", async function () {
      await anchorVersion(wallet(), client, address, 1, HASH_1);
      const { calls, client: counted } = counting(client);
      const anchor = new ConfigAnchor({ client: counted, address });
      const answers = await Promise.all(Array.from({ length: 50 }, () => anchor.hashOf(1)));
      expect(new Set(answers)).to.deep.equal(new Set([HASH_1]));
      expect(calls).to.have.length(1);
    });

    it("refuses a version that is not a whole number >= 0", async function () {
      const anchor = new ConfigAnchor({ client, address });
      for (const version of [-1, 1.5, Number.NaN, 2 ** 53]) {
        await expectEdgeError(anchor.hashOf(version), "CONFIG_ANCHOR_VERSION_INVALID");
      }
    });

    it("follows a withdrawn delta signer within the 2 s cache bound", async function () {
      const [admin, signer] = await ethers.getSigners();
      let now = 1_000_000;
      const { calls, client: counted } = counting(client);
      const anchor = new ConfigAnchor({ client: counted, address, now: () => now });
      expect(await anchor.isDeltaSigner(publisher.address)).to.equal(true);
      expect(await anchor.isDeltaSigner(publisher.address.toLowerCase())).to.equal(true);
      expect(calls).to.have.length(1);
      await registry.connect(admin).getFunction("revokeRole")(
        await registry.getFunction("DELTA_SIGNER_ROLE")(),
        publisher.address,
      );
      now += 1_999;
      expect(await anchor.isDeltaSigner(publisher.address)).to.equal(true); // still within the bound
      now += 1;
      expect(await anchor.isDeltaSigner(publisher.address)).to.equal(false);
      expect(calls).to.have.length(2);
      expect(await anchor.isDeltaSigner(signer.address)).to.equal(false);
      expect(await anchor.isDeltaSigner("not an address")).to.equal(false);
      expect(calls).to.have.length(3);
    });

    it("never reuses a signer answer for longer than 2 s, whatever it is told", async function () {
      let now = 0;
      const { calls, client: counted } = counting(client);
      const anchor = new ConfigAnchor({ client: counted, address, now: () => now, signerTtlMs: 60_000 });
      await anchor.isDeltaSigner(publisher.address);
      now = 2_000;
      await anchor.isDeltaSigner(publisher.address);
      expect(calls).to.have.length(2);
    });

    it("keeps at most maxSigners answers, dropping expired then oldest ones", async function () {
      let now = 0;
      const { calls, client: counted } = counting(client);
      const anchor = new ConfigAnchor({ client: counted, address, now: () => now, maxSigners: 2 });
      const [a, b, c] = (await ethers.getSigners()).map((s) => s.address);
      await anchor.isDeltaSigner(a);
      now = 500;
      await anchor.isDeltaSigner(b);
      now = 2_100; // a expired, b still fresh
      await anchor.isDeltaSigner(c); // evicts a (expired)
      await anchor.isDeltaSigner(b); // cached
      expect(calls).to.have.length(3);
      await anchor.isDeltaSigner(publisher.address); // full of fresh answers: evicts b (oldest)
      await anchor.isDeltaSigner(c); // cached
      expect(calls).to.have.length(4);
      await anchor.isDeltaSigner(b);
      expect(calls).to.have.length(5);
    });

    it("does not cache a failed read", async function () {
      let fail = true;
      const anchor = new ConfigAnchor({
        client: {
          readContract: ((args: never) => {
            if (fail) return Promise.reject(new Error("rpc down"));
            return client.readContract(args);
          }) as PublicClient["readContract"],
        },
        address,
      });
      await anchorVersion(wallet(), client, address, 1, HASH_1);
      let failed = false;
      await anchor.hashOf(1).catch(() => (failed = true));
      expect(failed).to.equal(true);
      fail = false;
      expect(await anchor.hashOf(1)).to.equal(HASH_1);
    });
  });
});
