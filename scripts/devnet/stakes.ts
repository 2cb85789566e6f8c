/**
 * The stakes: 1 stargate, 2 gateways and `--hosts` hosts, each staked by the deployer and assigned its device in one
 * transaction with the device key's EIP-712 consent. Stake ids follow the order of the devices, from 1. Every host
 * stakes the same 200 tokens, so hosts' yields differ by their scores alone (the fast host's spread, cdn.ts).
 */
import type { Address, Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";

import { edgeTokenAbi, stakeManagerAbi } from "../../offchain/common/generated/abis";
import { DEVICE_CONSENT_TYPES } from "../../offchain/common/consent";
import type { Chain } from "./chain";
import { CHAIN_ID, type DevAccount, type StepLog, TOKEN, deviceKey } from "./common";

export interface Device {
  name: string;
  role: string;
  type: number;
  amount: bigint;
  /** The device's own key (the node daemon signs with it). */
  key: Hex;
  address: Address;
  stakeId: bigint;
}

function devnetDevices(hosts: number): Device[] {
  return [
    { name: "stargate", role: "stargate", type: 2, amount: 250_000n * TOKEN },
    { name: "gateway-1", role: "gateway", type: 1, amount: 25_000n * TOKEN },
    { name: "gateway-2", role: "gateway", type: 1, amount: 25_000n * TOKEN },
    ...Array.from({ length: hosts }, (_, i) => ({
      name: `host-${i + 1}`,
      role: "host",
      type: 0,
      amount: 200n * TOKEN,
    })),
  ].map((d, i) => ({
    ...d,
    key: deviceKey(d.name),
    address: privateKeyToAccount(deviceKey(d.name)).address,
    stakeId: BigInt(i + 1),
  }));
}

export async function stakeDevices(chain: Chain, owner: DevAccount, hosts: number, log: StepLog): Promise<Device[]> {
  const wallet = chain.wallet(owner);
  await chain.send(
    wallet.writeContract({
      address: chain.address("EdgeToken"),
      abi: edgeTokenAbi,
      functionName: "approve",
      args: [chain.address("StakeManager"), 2n ** 255n],
    }),
  );
  const devices = devnetDevices(hosts);
  const deadline = BigInt(chain.setupTime + 3600);
  for (const device of devices) {
    const signature = await privateKeyToAccount(device.key).signTypedData({
      domain: {
        name: "Edge StakeManager",
        version: "1",
        chainId: CHAIN_ID,
        verifyingContract: chain.address("StakeManager"),
      },
      types: DEVICE_CONSENT_TYPES,
      primaryType: "DeviceConsent",
      message: { device: device.address, owner: owner.address, nonce: 0n, deadline },
    });
    await chain.send(
      wallet.writeContract({
        address: chain.address("StakeManager"),
        abi: stakeManagerAbi,
        functionName: "stakeAndAssign",
        args: [device.type, device.amount, { device: device.address, deadline, signature }],
      }),
    );
  }
  log.step(`${devices.length} stakes: 1 stargate, 2 gateways, ${hosts} hosts`);
  return devices;
}
