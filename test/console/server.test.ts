/**
 * The Console without a browser: its error sentences and vocabulary, the server's routes (app.inject), and the
 * command line's answers to bad input.
 */
import { expect } from "chai";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encodeErrorResult, zeroAddress } from "viem";

import { main as consoleMain } from "../../console/cli";
import { consoleAssets } from "../../console/bundle";
import { CONTENT_SECURITY_POLICY, ConsoleServer, buildConsoleApp } from "../../console/server";
import { CONTRACT_ERRORS_ABI, ERROR_SENTENCES, decodeRevert, describeFailure } from "../../console/web/errors";
import { STATUS_NAMES, formatTime, formatTokens, parseTokenAmount } from "../../console/web/format";
import { paymentVaultAbi, rewardsManagerAbi, stakeManagerAbi } from "../../offchain/common/generated/abis";
import { StakeStatus } from "../shared/constants";
import { type RpcServer, startRpcServer } from "../shared/rpc";

const ONE = 10n ** 18n;
const OWNER = "0x00000000000000000000000000000000000000AA"; // checksummed, as decoded
const CALLER = "0x00000000000000000000000000000000000000bb";
const BOOK = {
  chainId: 31337,
  contracts: {
    EdgeToken: { address: "0x5FbDB2315678afecb367f032d93F642f64180aa3", blockNumber: 1 },
    StakeManager: { address: "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512", blockNumber: 1 },
  },
};

describe("Console", () => {
  describe("#errors", () => {
    it("has a sentence for every custom error of StakeManager, RewardsManager and PaymentVault", () => {
      const names = [stakeManagerAbi, rewardsManagerAbi, paymentVaultAbi].flatMap((abi) =>
        abi.filter((item) => item.type === "error").map((item) => (item as { name: string }).name),
      );
      const missing = [...new Set(names)].filter((name) => !(name in ERROR_SENTENCES));
      expect(missing).to.deep.equal([]);
    });

    it("decodes StakeStillLocked into a sentence with the unlock time", () => {
      const data = encodeErrorResult({
        abi: stakeManagerAbi,
        errorName: "StakeStillLocked",
        args: [7n, 1_795_313_693n],
      });
      expect(decodeRevert(data)).to.deep.include({
        name: "StakeStillLocked",
        sentence:
          "Stake 7 is still locked until 2026-11-22 02:14:53 UTC. Wait until then, or use express release (for a fee).",
      });
    });

    it("fills in amounts, statuses, types and addresses", () => {
      const sentence = (errorName: string, args: readonly unknown[]) =>
        decodeRevert(encodeErrorResult({ abi: CONTRACT_ERRORS_ABI, errorName, args } as never))!.sentence;
      expect(sentence("StakeBelowMinimum", [1, 100n * ONE, 25_000n * ONE])).to.equal(
        "100 EDGE is below the gateway minimum of 25,000 EDGE: stake at least the minimum.",
      );
      expect(sentence("StakeNotActive", [3n, StakeStatus.Unlocking])).to.contain("Stake 3 is unlocking:");
      expect(sentence("StakeNotOwner", [3n, CALLER, OWNER])).to.equal(
        `Only the owner of stake 3 (${OWNER}) can do this; your wallet is ${CALLER}.`,
      );
      expect(sentence("DeviceConsentInvalid", [OWNER, zeroAddress])).to.contain("a malformed signature");
      expect(sentence("NothingAccrued", [3n])).to.equal(
        "Stake 3 has no accrued yield yet: wait for the next epoch's scores.",
      );
      expect(sentence("PaymentInsufficientBalance", [OWNER, 80n * ONE, 50n * ONE])).to.equal(
        "80 EDGE is more than the prepaid balance of 50 EDGE.",
      );
      expect(sentence("ERC20InsufficientBalance", [OWNER, ONE / 2n, ONE])).to.equal(
        "Your wallet holds 0.5 EDGE, less than the 1 EDGE needed.",
      );
    });

    it("finds revert data nested in wallet and RPC errors, and names refusals", () => {
      const data = encodeErrorResult({ abi: rewardsManagerAbi, errorName: "NothingAccrued", args: [2n] });
      expect(describeFailure({ cause: { error: { code: 3, data: { message: "x", data } } } })).to.deep.equal({
        sentence: "Stake 2 has no accrued yield yet: wait for the next epoch's scores.",
        errorName: "NothingAccrued",
      });
      expect(describeFailure({ code: 4001, message: "User rejected" }).sentence).to.equal(
        "You rejected the request in your wallet.",
      );
      expect(describeFailure(new Error("fetch failed")).sentence).to.equal("The request failed: fetch failed");
      expect(describeFailure({ data: "0xdeadbeef00" }).sentence).to.contain("unknown error (0xdeadbeef)");
    });
  });

  describe("#format", () => {
    it("names statuses in the network's vocabulary, in the contract's order", () => {
      expect(STATUS_NAMES[StakeStatus.Unassigned]).to.equal("unassigned");
      expect(STATUS_NAMES[StakeStatus.Assigned]).to.equal("assigned");
      expect(STATUS_NAMES[StakeStatus.Unlocking]).to.equal("unlocking");
      expect(STATUS_NAMES[StakeStatus.Unlocked]).to.equal("unlocked");
      expect(STATUS_NAMES[StakeStatus.Released]).to.equal("released");
    });

    it("parses and prints token amounts exactly", () => {
      expect(parseTokenAmount("1,000.5")).to.equal(1000n * ONE + ONE / 2n);
      expect(parseTokenAmount("0.000000000000000001")).to.equal(1n);
      expect(() => parseTokenAmount("0")).to.throw("more than 0");
      expect(parseTokenAmount("0", { allowZero: true })).to.equal(0n);
      expect(() => parseTokenAmount("1e18")).to.throw("is not an amount");
      expect(() => parseTokenAmount("0.0000000000000000001")).to.throw("at most 18 decimals");
      expect(() => parseTokenAmount(" ")).to.throw("enter an amount");
      expect(formatTokens(1_234_567n * ONE + 1n)).to.equal("1,234,567.000000000000000001 EDGE");
      expect(formatTime(0n)).to.equal("1970-01-01 00:00:00 UTC");
    });
  });

  describe("#server", () => {
    const page = { chainId: 31337, rpcUrl: "http://127.0.0.1:8545", addresses: BOOK };

    it("serves the page, its bundled assets and config.json, with a strict CSP", async () => {
      const app = buildConsoleApp({ page, assets: await consoleAssets(), logLevel: "silent" });
      try {
        const html = await app.inject({ url: "/" });
        expect(html.statusCode).to.equal(200);
        expect(html.headers["content-type"]).to.match(/^text\/html/);
        expect(html.headers["content-security-policy"]).to.equal(CONTENT_SECURITY_POLICY);
        expect(html.body).to.contain('<script src="assets/app.js" defer></script>');
        // No CDN, no absolute URL: the page loads only its own files.
        expect(html.body).not.to.match(/(src|href)="(https?:)?\/\//);
        const js = await app.inject({ url: "/assets/app.js" });
        expect(js.statusCode).to.equal(200);
        expect(js.headers["content-type"]).to.match(/^text\/javascript/);
        expect(js.body.length).to.be.greaterThan(10_000);
        expect((await app.inject({ url: "/assets/app.css" })).headers["content-type"]).to.match(/^text\/css/);
        const config = await app.inject({ url: "/config.json" });
        expect(config.json()).to.deep.equal(page);
      } finally {
        await app.close();
      }
    });

    it("answers unknown paths with a JSON 404", async () => {
      const app = buildConsoleApp({ page, assets: await consoleAssets(), logLevel: "silent" });
      try {
        const response = await app.inject({ url: "/assets/nope.js" });
        expect(response.statusCode).to.equal(404);
        expect(response.json()).to.deep.equal({
          statusCode: 404,
          code: "CONSOLE_NOT_FOUND",
          error: "no such page: /assets/nope.js",
        });
      } finally {
        await app.close();
      }
    });

    describe("against a chain", () => {
      let rpc: RpcServer;
      before(async () => {
        rpc = await startRpcServer();
      });
      after(async () => {
        await rpc.close();
      });

      it("refuses to start when the RPC serves another chain than the address book's", async () => {
        await expect(
          ConsoleServer.create({ rpcUrl: rpc.url, book: { ...BOOK, chainId: 5 }, logLevel: "silent" }),
        ).to.be.rejectedWith(`the RPC at ${rpc.url} serves chain 31337, but the address book is for chain 5`);
      });
    });
  });

  describe("#cli", () => {
    let dir: string;
    let stderr: string[];
    const write = process.stderr.write.bind(process.stderr);
    beforeEach(() => {
      dir = mkdtempSync(join(tmpdir(), "edge-console-cli-"));
      stderr = [];
      process.stderr.write = ((chunk: string) => {
        stderr.push(String(chunk));
        return true;
      }) as typeof process.stderr.write;
    });
    afterEach(() => {
      process.stderr.write = write;
      rmSync(dir, { recursive: true, force: true });
    });

    it("exits 2 naming every missing or malformed flag", async () => {
      expect(await consoleMain([], {})).to.equal(2);
      expect(stderr.join("")).to.contain("--rpc is required").and.contain("--addresses is required");
      stderr.length = 0;
      expect(await consoleMain(["--rpc", "localhost:8545", "--addresses", "x.json", "--port", "99999"], {})).to.equal(
        2,
      );
      expect(stderr.join("")).to.contain("--rpc").and.contain("--port");
    });

    it("refuses an unreadable or malformed address book", async () => {
      const file = join(dir, "book.json");
      writeFileSync(file, JSON.stringify({ chainId: 31337, contracts: { StakeManager: { address: "0x12" } } }));
      await expect(consoleMain(["--rpc", "http://127.0.0.1:1", "--addresses", file], {})).to.be.rejectedWith(
        "StakeManager.address is not an address",
      );
      await expect(
        consoleMain(["--rpc", "http://127.0.0.1:1", "--addresses", join(dir, "missing.json")], {}),
      ).to.be.rejectedWith("no address book");
    });
  });
});
