import { expect } from "chai";
import { ethers, network } from "hardhat";
import { loadFixture, mine } from "@nomicfoundation/hardhat-network-helpers";
import { type Address, type Hex, decodeEventLog } from "viem";

import { ChainView, type SyncProgress, isTooLargeError } from "../../../offchain/common/chainView";
import { stakeManagerAbi } from "../../../offchain/common/generated/abis";
import { type RawLog, STAKE_EVENT_TOPICS, decodeStakeLog } from "../../../offchain/common/stakeEvents";
import { deployStakingFixture, newDevice, signConsent } from "../../shared/fixtures";
import { MINIMUM, StakeType } from "../../shared/constants";
import { type RpcServer, publicClient, startRpcProxy, startRpcServer } from "../../shared/rpc";

const ONE = ethers.parseEther("1");

/** Six stakes with devices, one unstaked, one slashed below the minimum, one unassigned; bob's gateway stake. */
async function chainFixture() {
  const f = await deployStakingFixture();
  const stakingAddress = await f.staking.getAddress();
  await f.token.connect(f.alice).approve(stakingAddress, ethers.MaxUint256);
  await f.token.connect(f.bob).approve(stakingAddress, ethers.MaxUint256);
  const devices = Array.from({ length: 6 }, () => newDevice());
  for (const device of devices) {
    const consent = await signConsent(f.staking, device, f.alice.address);
    await f.staking.connect(f.alice).stakeAndAssign(StakeType.Host, 500n * ONE, consent);
  }
  await f.staking.connect(f.alice).requestUnstake(2n);
  await f.staking.connect(f.slasher).slash(3n, 450n * ONE, "test");
  await f.staking.connect(f.alice).unassignDevice(4n);
  await f.staking.connect(f.alice).increase(5n, 10n * ONE);
  await f.staking.connect(f.bob).stake(StakeType.Gateway, MINIMUM[StakeType.Gateway]);
  const fromBlock = BigInt((await f.staking.deploymentTransaction()!.wait())!.blockNumber);
  return { ...f, stakingAddress: stakingAddress as Address, devices, fromBlock };
}

type Fixture = Awaited<ReturnType<typeof chainFixture>>;

async function expectViewMatchesChain(view: ChainView, f: Fixture) {
  for (const device of f.devices) {
    expect(view.map.isAdmitted(device.address), device.address).to.equal(await f.staking.isAdmitted(device.address));
    expect(view.map.stakeOfDevice(device.address)?.stakeId ?? 0n).to.equal(
      await f.staking.stakeOfDevice(device.address),
    );
  }
  const count = await f.staking.stakeCount();
  expect(view.map.stakeCount).to.equal(Number(count));
  for (let id = 1n; id <= count; id++) {
    expect(view.map.getStake(id)!.amount).to.equal((await f.staking.getStake(id)).amount, `stake ${id}`);
  }
}

describe("ChainView", function () {
  let rpc: RpcServer;

  before(async function () {
    rpc = await startRpcServer();
  });

  after(async function () {
    await rpc.close();
  });

  function viewOf(f: Fixture, options: Partial<ConstructorParameters<typeof ChainView>[0]> = {}) {
    return new ChainView({
      client: publicClient(rpc.url),
      stakeManager: f.stakingAddress,
      fromBlock: f.fromBlock,
      ...options,
    });
  }

  it("decodes every map event exactly as viem's ABI decoder does", async function () {
    const f = await loadFixture(chainFixture);
    await f.staking.connect(f.alice).cancelUnstake(2n);
    await f.staking.connect(f.alice).requestUnstake(6n);
    await f.staking.connect(f.alice).expressRelease(6n);
    await f.staking.connect(f.parameterAdmin).setMinimumStake(StakeType.Host, 200n * ONE);
    const logs = (await network.provider.send("eth_getLogs", [
      { address: f.stakingAddress, topics: [STAKE_EVENT_TOPICS], fromBlock: "0x0", toBlock: "latest" },
    ])) as RawLog[];
    const names = new Set<string>();
    for (const log of logs) {
      const ours = decodeStakeLog(log)!;
      const viem = decodeEventLog({ abi: stakeManagerAbi, topics: log.topics as [Hex, ...Hex[]], data: log.data });
      names.add(ours.name);
      expect(ours.name).to.equal(viem.eventName);
      for (const [key, value] of Object.entries(ours.args)) {
        const expected = (viem.args as Record<string, unknown>)[key];
        if (typeof value === "string") expect(value.toLowerCase()).to.equal(String(expected).toLowerCase(), key);
        else expect(BigInt(value as bigint)).to.equal(BigInt(expected as bigint), key);
      }
    }
    expect([...names].sort()).to.deep.equal(
      [
        "DeviceAssigned",
        "DeviceUnassigned",
        "MinimumStakeSet",
        "StakeCreated",
        "StakeIncreased",
        "StakeReleased",
        "StakeSlashed",
        "UnstakeCancelled",
        "UnstakeRequested",
      ].sort(),
    );
    expect(decodeStakeLog({ ...logs[0], topics: [ethers.ZeroHash as Hex] })).to.equal(undefined);
  });

  it("rebuilds the map from logs and reports progress, head and lag", async function () {
    const f = await loadFixture(chainFixture);
    const progress: SyncProgress[] = [];
    const view = viewOf(f, { initialPageSize: 3, onProgress: (p) => progress.push(p) });
    expect(view.status()).to.include({ synced: false, stalenessMs: null });
    await view.syncOnce();
    await expectViewMatchesChain(view, f);
    expect(progress.length).to.be.greaterThan(1);
    expect(progress[0].pageSize).to.equal(3);
    expect(progress[1].pageSize).to.be.greaterThan(3); // sparse pages grow
    const head = BigInt(await ethers.provider.getBlockNumber());
    const status = view.status();
    expect(status.head).to.equal(head);
    expect(status.cursor!.number).to.equal(head);
    expect(status.lag).to.equal(0n);
    expect(status.synced).to.equal(true);
  });

  it("follows new blocks: eviction, a raised minimum, a new device", async function () {
    const f = await loadFixture(chainFixture);
    const view = viewOf(f);
    await view.syncOnce();
    let changes = 0;
    view.onChange(() => changes++);
    await f.staking.connect(f.alice).requestUnstake(1n);
    await f.staking.connect(f.parameterAdmin).setMinimumStake(StakeType.Host, 501n * ONE);
    const device = newDevice();
    await f.staking.connect(f.bob).assignDevice(7n, await signConsent(f.staking, device, f.bob.address));
    await view.syncOnce();
    expect(changes).to.equal(1);
    expect(view.map.isAdmitted(f.devices[0].address)).to.equal(false);
    expect(view.map.isAdmitted(f.devices[4].address)).to.equal(true); // 510 >= 501
    expect(view.map.isAdmitted(f.devices[5].address)).to.equal(false); // 500 < 501
    expect(view.map.isAdmitted(device.address)).to.equal(true);
    await view.syncOnce();
    expect(changes).to.equal(1); // nothing new, no change event
  });

  it("stays `confirmations` blocks behind the head", async function () {
    const f = await loadFixture(chainFixture);
    const view = viewOf(f, { confirmations: 2 });
    await view.syncOnce();
    await f.staking.connect(f.alice).requestUnstake(1n);
    await view.syncOnce();
    expect(view.map.isAdmitted(f.devices[0].address)).to.equal(true);
    expect(view.status().lag).to.equal(2n);
    await mine(2);
    await view.syncOnce();
    expect(view.map.isAdmitted(f.devices[0].address)).to.equal(false);
  });

  it("repairs itself after a reorg", async function () {
    const f = await loadFixture(chainFixture);
    const view = viewOf(f, { initialPageSize: 1 });
    await view.syncOnce();
    const snapshot = await network.provider.send("evm_snapshot");
    // The abandoned branch: device 1 is evicted, device 6 released.
    await f.staking.connect(f.alice).requestUnstake(1n);
    await mine(3);
    await view.syncOnce();
    expect(view.map.isAdmitted(f.devices[0].address)).to.equal(false);
    // The chain reorganises onto a longer branch where something else happened.
    await network.provider.send("evm_revert", [snapshot]);
    await f.staking.connect(f.alice).requestUnstake(5n);
    await mine(6);
    await view.syncOnce();
    expect(view.status().reorgs).to.equal(1);
    await expectViewMatchesChain(view, f);
    expect(view.map.isAdmitted(f.devices[0].address)).to.equal(true);
    expect(view.map.isAdmitted(f.devices[4].address)).to.equal(false);
  });

  it("repairs a reorg onto a shorter chain and one deeper than its window", async function () {
    const f = await loadFixture(chainFixture);
    const view = viewOf(f, { initialPageSize: 1, maxPageSize: 1, keepCheckpoints: 2 });
    await view.syncOnce();
    const snapshot = await network.provider.send("evm_snapshot");
    await f.staking.connect(f.alice).requestUnstake(1n);
    await f.staking.connect(f.alice).requestUnstake(3n);
    await f.staking.connect(f.alice).requestUnstake(5n);
    await view.syncOnce();
    await network.provider.send("evm_revert", [snapshot]); // shorter than what the view applied
    await view.syncOnce();
    await expectViewMatchesChain(view, f);
    expect(view.map.isAdmitted(f.devices[0].address)).to.equal(true);
  });

  it("F12: never applies a log from a block no longer on the chain (a load-balanced RPC's stale backend)", async function () {
    const f = await loadFixture(chainFixture);
    const real = publicClient(rpc.url);
    // One backend behind the balancer is on a replaced fork: in it, stake 1's owner asked to unstake in the
    // block where stake 2's owner did on the chain everyone else follows.
    let stale = true;
    let forgedPages = 0;
    const client = {
      request: async (args: { method: string; params?: unknown }) => {
        const result = await real.request(args as never);
        if (args.method !== "eth_getLogs" || !stale) return result;
        const logs = result as unknown as RawLog[];
        const unstake = logs.find((l) => decodeStakeLog(l)?.name === "UnstakeRequested");
        if (!unstake) return result;
        forgedPages += 1;
        const forked = { ...unstake, blockHash: `0x${"ab".repeat(32)}` as Hex };
        forked.topics = [unstake.topics[0], `0x${"1".padStart(64, "0")}` as Hex];
        return [...logs.filter((l) => l !== unstake), forked] as never;
      },
    } as unknown as typeof real;
    await mine(2); // the forged block is not the page's last one: only the new check can see it
    const view = new ChainView({ client, stakeManager: f.stakingAddress, fromBlock: f.fromBlock });
    let refused: Error | undefined;
    await view.syncOnce().catch((error: Error) => (refused = error));
    expect(forgedPages).to.equal(1);
    expect(refused?.message).to.match(/no longer on the chain/);
    expect(view.map.getStake(1n)?.unlockAt ?? 0n).to.equal(0n); // the forged page was not applied
    stale = false; // the balancer moves on to a healthy backend
    await view.syncOnce();
    await expectViewMatchesChain(view, f);
    expect(view.map.isAdmitted(f.devices[0].address)).to.equal(true);
  });

  it("keeps its map through an RPC outage, reports staleness, and recovers", async function () {
    const f = await loadFixture(chainFixture);
    const proxy = await startRpcProxy(rpc.port);
    let clock = 1_000_000;
    const view = new ChainView({
      client: publicClient(proxy.url),
      stakeManager: f.stakingAddress,
      fromBlock: f.fromBlock,
      now: () => clock,
    });
    try {
      await view.syncOnce();
      proxy.down();
      clock += 30_000;
      await expect(view.syncOnce()).to.be.rejected;
      const status = view.status();
      expect(status.stalenessMs).to.equal(30_000);
      await expectViewMatchesChain(view, f);
      proxy.up();
      await f.staking.connect(f.alice).requestUnstake(1n);
      await view.syncOnce();
      expect(view.status().stalenessMs).to.equal(0);
      expect(view.map.isAdmitted(f.devices[0].address)).to.equal(false);
    } finally {
      await proxy.close();
    }
  });

  it("polls with backoff when the RPC fails and counts the errors", async function () {
    const f = await loadFixture(chainFixture);
    const proxy = await startRpcProxy(rpc.port);
    const warnings: object[] = [];
    const view = new ChainView({
      client: publicClient(proxy.url),
      stakeManager: f.stakingAddress,
      fromBlock: f.fromBlock,
      pollIntervalMs: 10,
      backoffInitialMs: 5,
      backoffMaxMs: 20,
      logger: { info: () => undefined, debug: () => undefined, warn: (o) => warnings.push(o) },
    });
    proxy.down();
    const stop = view.start();
    try {
      await new Promise((r) => setTimeout(r, 200));
      expect(view.status().consecutiveErrors).to.be.greaterThan(2);
      expect(view.status().lastError).to.be.a("string");
      proxy.up();
      for (let i = 0; i < 100 && view.status().consecutiveErrors > 0; i++) await new Promise((r) => setTimeout(r, 50));
      expect(view.status().consecutiveErrors).to.equal(0);
      expect(view.status().synced).to.equal(true);
      await expectViewMatchesChain(view, f);
      expect(warnings.length).to.be.greaterThan(0);
    } finally {
      await stop();
      await proxy.close();
    }
  });

  it("shrinks its page when the provider refuses a response as too large", async function () {
    const f = await loadFixture(chainFixture);
    const client = publicClient(rpc.url);
    let refused = 0;
    const limited = {
      request: (async (args: { method: string; params?: Array<{ fromBlock: Hex; toBlock: Hex }> }) => {
        if (args.method === "eth_getLogs") {
          const { fromBlock, toBlock } = args.params![0];
          if (BigInt(toBlock) - BigInt(fromBlock) >= 4n) {
            refused++;
            throw new Error("HTTP response body exceeded the size limit");
          }
        }
        return client.request(args as never);
      }) as typeof client.request,
    };
    const view = new ChainView({
      client: limited,
      stakeManager: f.stakingAddress,
      fromBlock: f.fromBlock,
      initialPageSize: 64,
    });
    await view.syncOnce();
    expect(refused).to.be.greaterThan(0);
    await expectViewMatchesChain(view, f);
    expect(isTooLargeError(new Error("query returned more than 10000 results"))).to.equal(true);
    expect(isTooLargeError(new Error("connect ECONNREFUSED"))).to.equal(false);
  });
});
