import Database from "better-sqlite3";
import { expect } from "chai";
import { network } from "hardhat";
import { type Hex, type PublicClient, parseEther, toHex } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";

import { TxSender } from "../../../offchain/common/txSender";
import { type RpcServer, publicClient, startRpcServer } from "../../shared/rpc";

const TARGET = "0x000000000000000000000000000000000000dEaD";

describe("offchain/common/txSender fee cap", function () {
  let rpc: RpcServer;
  let client: PublicClient;

  before(async function () {
    await network.provider.send("eth_blockNumber"); // the in-process chain starts on its first request
    rpc = await startRpcServer();
    client = publicClient(rpc.url) as PublicClient;
  });
  after(async function () {
    await network.provider.send("evm_setAutomine", [true]);
    await rpc.close();
  });

  /** A funded key, a sender on an in-memory database, its log, and a clock the test moves. */
  async function sender(maxFeePerGas: bigint) {
    const account = privateKeyToAccount(generatePrivateKey());
    await network.provider.send("hardhat_setBalance", [account.address, toHex(parseEther("10"))]);
    const errors: string[] = [];
    const clock = { now: 1_000_000 };
    const log = { info: () => {}, warn: () => {}, error: (_o: object, message: string) => errors.push(message) };
    const tx = new TxSender(new Database(":memory:"), client, account, 31337, log, {
      maxFeePerGas,
      replaceAfterMs: 60_000,
      now: () => clock.now,
    });
    return { tx, errors, clock };
  }

  it("F10: replacing a stuck transaction raises fees 25% at a time up to the cap, then holds and alerts", async function () {
    const { maxFeePerGas: estimate } = await client.estimateFeesPerGas();
    const cap = estimate * 2n;
    const { tx, errors, clock } = await sender(cap);
    await network.provider.send("evm_setAutomine", [false]);
    try {
      const record = await tx.send("f10", TARGET, "0x" as Hex);
      expect(record.maxFeePerGas).to.equal(estimate);
      const offered = [record.maxFeePerGas];
      for (let minute = 0; minute < 30; minute++) {
        clock.now += 61_000;
        await tx.reconcile();
        const [pending] = tx.pending();
        offered.push(pending.maxFeePerGas);
        expect(pending.maxFeePerGas <= cap, `minute ${minute}: ${pending.maxFeePerGas} > cap ${cap}`).to.equal(true);
        expect(pending.maxPriorityFeePerGas <= pending.maxFeePerGas).to.equal(true);
      }
      // 25% steps while a 10% replacement still fits under the cap, then the same fee: 30 minutes cost < 2x.
      const steps = [...new Set(offered.map(String))].map(BigInt);
      expect(steps[1]).to.equal((estimate * 125n) / 100n + 1n);
      expect((steps.at(-1)! * 110n) / 100n + 1n > cap, "held only once a 10% raise would pass the cap").to.equal(true);
      expect(steps.length).to.equal(4);
      expect(offered.at(-1)).to.equal(steps.at(-1));
      expect(tx.feeCapped()).to.equal(1);
      expect(errors.at(-1)).to.match(/stuck at the fee cap/);
      // Every hash it signed is the same nonce; once one is mined the alert clears.
      await network.provider.send("evm_mine", []);
      await tx.reconcile();
      expect(tx.pending()).to.deep.equal([]);
      expect(tx.feeCapped()).to.equal(0);
      expect(tx.byPurpose("f10")[0].status).to.equal("mined");
    } finally {
      await network.provider.send("evm_setAutomine", [true]);
    }
  });

  it("F10: a fee estimate above the cap is sent at the cap and reported", async function () {
    const { maxFeePerGas: estimate } = await client.estimateFeesPerGas();
    const cap = estimate - 1n;
    const { tx, errors } = await sender(cap);
    const record = await tx.send("f10-high", TARGET, "0x" as Hex);
    expect(record.maxFeePerGas).to.equal(cap);
    expect(record.maxPriorityFeePerGas <= cap).to.equal(true);
    expect(errors).to.deep.equal(["fee estimate above the configured cap: sending at the cap, it may not be mined"]);
    expect((await tx.wait(record, 10_000)).status).to.equal("success");
    expect(tx.feeCapped()).to.equal(0);
  });
});
