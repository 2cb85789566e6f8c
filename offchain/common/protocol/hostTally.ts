/**
 * A host's own signed count of the jobs it returned at one gateway in an epoch (PROTOCOL.md Revision 2): the host
 * hands it to its gateway with each job's result, the gateway carries the latest one per host in its job reports,
 * and the oracle scores j(h,g) = min(the gateway's count, the host's). Cumulative: a later tally (higher
 * `sequence`) never counts fewer jobs.
 *
 * Verifying at ingestion rates (20,000 tallies in one report) goes through `hostTallyDigest`, the EIP-712 digest
 * computed with one native keccak per part instead of viem's generic encoder (test/offchain/common/hostTally.test.ts
 * checks it against viem's hashTypedData).
 */
import { type Static, Type } from "@fastify/type-provider-typebox";
import { type Address, type Hex, type LocalAccount, domainSeparator, toHex } from "viem";

import { keccak256, recoverLowerAddress } from "../crypto";
import { isSignedBy, messageDomain, signMessage } from "./eip712";
import { AddressSchema, SignatureSchema, SmallDecimalSchema, Uint256DecimalSchema } from "./primitives";

export const HostTallySchema = Type.Object(
  {
    host: AddressSchema,
    gateway: AddressSchema,
    epoch: SmallDecimalSchema,
    jobs: Uint256DecimalSchema,
    sequence: SmallDecimalSchema,
    signature: SignatureSchema,
  },
  { additionalProperties: false },
);
/** Decimal strings, as everywhere on the wire. */
export type HostTallyBody = Static<typeof HostTallySchema>;

export interface HostTally {
  host: Address;
  gateway: Address;
  epoch: bigint;
  jobs: bigint;
  sequence: bigint;
}

export async function signHostTally(
  account: Pick<LocalAccount, "address" | "signTypedData">,
  chainId: number,
  tally: Omit<HostTally, "host">,
): Promise<HostTallyBody> {
  const message = { host: account.address, ...tally };
  const signature = await signMessage(account, chainId, "HostTally", message);
  return {
    host: account.address,
    gateway: tally.gateway,
    epoch: tally.epoch.toString(),
    jobs: tally.jobs.toString(),
    sequence: tally.sequence.toString(),
    signature,
  };
}

/** Whether the tally is signed by the host it names (any letter case); false for anything malformed. */
export function verifyHostTally(chainId: number, body: HostTallyBody): Promise<boolean> {
  let message: HostTally;
  try {
    message = {
      host: body.host as Address,
      gateway: body.gateway as Address,
      epoch: BigInt(body.epoch),
      jobs: BigInt(body.jobs),
      sequence: BigInt(body.sequence),
    };
  } catch {
    return Promise.resolve(false);
  }
  return isSignedBy(chainId, "HostTally", message, body.signature as Hex, body.host);
}

const TYPE_HASH = Buffer.from(
  keccak256(toHex("HostTally(address host,address gateway,uint256 epoch,uint256 jobs,uint256 sequence)")).slice(2),
  "hex",
);
const separators = new Map<number, Buffer>();
const ADDRESS = /^0x[0-9a-fA-F]{40}$/;
const DECIMAL = /^\d{1,78}$/;

function separator(chainId: number): Buffer {
  let value = separators.get(chainId);
  if (!value) {
    value = Buffer.from(domainSeparator({ domain: messageDomain(chainId) }).slice(2), "hex");
    separators.set(chainId, value);
  }
  return value;
}

function word(out: Buffer, at: number, value: string | bigint): void {
  const hex = (typeof value === "bigint" ? value : BigInt(value)).toString(16);
  if (hex.length > 64) throw new RangeError(`${value} does not fit 256 bits`);
  out.write(hex.padStart(64, "0"), at, 32, "hex");
}

/**
 * The EIP-712 digest of a tally (what its signature signs), from decimal strings or bigints. Throws a TypeError
 * for an address that is not 20 bytes of hex, a RangeError for a number above 2^256 - 1.
 */
export function hostTallyDigest(
  chainId: number,
  tally: { host: string; gateway: string; epoch: string | bigint; jobs: string | bigint; sequence: string | bigint },
): Hex {
  for (const key of ["host", "gateway"] as const)
    if (!ADDRESS.test(tally[key])) throw new TypeError(`${key} ${tally[key]} is not an address`);
  for (const key of ["epoch", "jobs", "sequence"] as const) {
    const value = tally[key];
    if (typeof value === "string" ? !DECIMAL.test(value) : value < 0n)
      throw new TypeError(`${key} ${value} is not a non-negative integer`);
  }
  const struct = Buffer.alloc(6 * 32);
  TYPE_HASH.copy(struct, 0);
  struct.write(tally.host.slice(2).padStart(64, "0"), 32, 32, "hex");
  struct.write(tally.gateway.slice(2).padStart(64, "0"), 64, 32, "hex");
  word(struct, 96, tally.epoch);
  word(struct, 128, tally.jobs);
  word(struct, 160, tally.sequence);
  const outer = Buffer.alloc(66);
  outer[0] = 0x19;
  outer[1] = 0x01;
  separator(chainId).copy(outer, 2);
  Buffer.from(keccak256(struct).slice(2), "hex").copy(outer, 34);
  return keccak256(outer);
}

/** Who signed the tally, in lowercase, from its digest (native recovery): undefined for a malformed signature. */
export function hostTallySigner(
  chainId: number,
  tally: Parameters<typeof hostTallyDigest>[1],
  signature: string,
): Hex | undefined {
  return recoverLowerAddress(hostTallyDigest(chainId, tally), signature as Hex);
}
