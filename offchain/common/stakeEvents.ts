/**
 * Fast decoding of the StakeManager events the device map needs, straight from raw JSON-RPC logs.
 *
 * viem's generic decoder walks the ABI for every log; a cold sync of 10,000 stakes reads 20,000+ logs, so
 * these nine fixed layouts are decoded by hand (indexed fields from topics, the rest from fixed data words).
 * A test decodes every event both ways and compares.
 */
import { type Hex, toEventSelector } from "viem";

import type { StakeEvent } from "./stakeMap";

/** A log as eth_getLogs returns it (hex strings). */
export interface RawLog {
  address: Hex;
  topics: Hex[];
  data: Hex;
  blockNumber: Hex;
  blockHash: Hex;
  transactionHash: Hex;
  logIndex: Hex;
  removed?: boolean;
}

const SIGNATURES = {
  StakeCreated: "StakeCreated(uint256,address,uint8,uint256)",
  StakeIncreased: "StakeIncreased(uint256,uint256,uint256)",
  StakeSlashed: "StakeSlashed(uint256,address,uint256,uint256,string)",
  DeviceAssigned: "DeviceAssigned(uint256,address)",
  DeviceUnassigned: "DeviceUnassigned(uint256,address)",
  UnstakeRequested: "UnstakeRequested(uint256,uint256)",
  UnstakeCancelled: "UnstakeCancelled(uint256)",
  StakeReleased: "StakeReleased(uint256,address,uint256,uint256)",
  MinimumStakeSet: "MinimumStakeSet(uint8,uint256)",
} as const;

type EventName = keyof typeof SIGNATURES;

const BY_TOPIC = new Map<string, EventName>(
  (Object.keys(SIGNATURES) as EventName[]).map((name) => [toEventSelector(SIGNATURES[name]), name]),
);

/** topic0 of every event the map needs: the eth_getLogs topic filter. */
export const STAKE_EVENT_TOPICS: Hex[] = [...BY_TOPIC.keys()] as Hex[];

const word = (data: Hex, i: number): bigint => BigInt(`0x${data.slice(2 + 64 * i, 66 + 64 * i)}`);
const uint = (topic: Hex): bigint => BigInt(topic);
const address = (topic: Hex): string => `0x${topic.slice(26)}`;

/** Decodes a StakeManager log, or returns undefined for an event the map does not need. */
export function decodeStakeLog(log: RawLog): StakeEvent | undefined {
  const name = BY_TOPIC.get(log.topics[0]);
  const t = log.topics;
  switch (name) {
    case "StakeCreated":
      return {
        name,
        args: { stakeId: uint(t[1]), owner: address(t[2]), stakeType: word(log.data, 0), amount: word(log.data, 1) },
      };
    case "StakeIncreased":
      return { name, args: { stakeId: uint(t[1]), amount: word(log.data, 0), newAmount: word(log.data, 1) } };
    case "StakeSlashed":
      return { name, args: { stakeId: uint(t[1]), amount: word(log.data, 0), newAmount: word(log.data, 1) } };
    case "DeviceAssigned":
    case "DeviceUnassigned":
      return { name, args: { stakeId: uint(t[1]), device: address(t[2]) } };
    case "UnstakeRequested":
      return { name, args: { stakeId: uint(t[1]), unlockAt: word(log.data, 0) } };
    case "UnstakeCancelled":
      return { name, args: { stakeId: uint(t[1]) } };
    case "StakeReleased":
      return { name, args: { stakeId: uint(t[1]) } };
    case "MinimumStakeSet":
      return { name, args: { stakeType: uint(t[1]), minimumStake: word(log.data, 0) } };
    default:
      return undefined;
  }
}
