/**
 * The chain's anchor of the network configuration (ConfigRegistry, docs/control-plane.md "Anchoring"), as nodes
 * and stargates read it, and the one function that publishes a version.
 *
 * Caching (what makes reading it on every snapshot and delta cheap, and what bounds staleness):
 * - `hashOf`: an anchored version's hash never changes (the contract has no way to overwrite one), so a non-zero
 *   answer is cached for the process's life; "not anchored" is never cached (it may be anchored a block later).
 * - `isDeltaSigner`: cached for at most `signerTtlMs` (2 s, the most it may be) from the moment the chain was
 *   asked, so a role the admin withdraws stops validating deltas within 2 s plus one block. The cache holds at
 *   most `maxSigners` addresses (expired ones are dropped first, then the oldest): a flood of deltas signed by
 *   random keys cannot grow it.
 * - `latest`: never cached (the stargate's anchoring loop and `config:status` want the chain's answer).
 * - Concurrent reads of the same key share one call (1,000 subscribers checking one snapshot make one request).
 * RPC failures propagate to the caller and are not cached.
 */
import { type Address, type Hex, type PublicClient, type WalletClient, getAddress, isAddress } from "viem";

import { errorFactory } from "./errors";
import { configRegistryAbi } from "./generated/abis";

export interface ConfigAnchorReader {
  /** The hash anchored for `version`; undefined when it is not anchored. Non-zero results are cached forever. */
  hashOf(version: number): Promise<Hex | undefined>;
  /** The latest anchored version and its hash: version 0 and the zero hash when nothing is published. */
  latest(): Promise<{ version: number; hash: Hex }>;
  /** Whether `address` holds DELTA_SIGNER_ROLE; cached at most 2 s, so a withdrawn role stops within 2 s. */
  isDeltaSigner(address: string): Promise<boolean>;
}

export const ZERO_HASH: Hex = `0x${"0".repeat(64)}`;
/** The longest a delta signer's answer may be reused (design17: a withdrawn role stops within 2 s). */
export const MAX_SIGNER_TTL_MS = 2_000;

export const raiseAnchor = errorFactory({
  CONFIG_ANCHOR_VERSION_INVALID: 400,
  CONFIG_ANCHOR_VERSION_NOT_NEXT: 409,
  CONFIG_ANCHOR_HASH_INVALID: 400,
  CONFIG_ANCHOR_NOT_PUBLISHER: 403,
  CONFIG_ANCHOR_TX_FAILED: 502,
});

export interface ConfigAnchorOptions {
  client: Pick<PublicClient, "readContract">;
  address: Address;
  /** How long a delta signer's answer is reused: 0 .. 2,000 ms (default 2,000). */
  signerTtlMs?: number;
  /** Most addresses the delta signer cache holds (default 1,024). */
  maxSigners?: number;
  now?: () => number;
}

export class ConfigAnchor implements ConfigAnchorReader {
  private readonly client: Pick<PublicClient, "readContract">;
  private readonly address: Address;
  private readonly signerTtlMs: number;
  private readonly maxSigners: number;
  private readonly now: () => number;
  private readonly hashes = new Map<number, Hex>();
  private readonly signers = new Map<string, { value: boolean; expiresAt: number }>();
  private readonly inFlight = new Map<string, Promise<unknown>>();

  constructor(opts: ConfigAnchorOptions) {
    this.client = opts.client;
    this.address = opts.address;
    this.signerTtlMs = Math.min(Math.max(opts.signerTtlMs ?? MAX_SIGNER_TTL_MS, 0), MAX_SIGNER_TTL_MS);
    this.maxSigners = Math.max(1, opts.maxSigners ?? 1_024);
    this.now = opts.now ?? Date.now;
  }

  async hashOf(version: number): Promise<Hex | undefined> {
    checkVersion(version);
    const cached = this.hashes.get(version);
    if (cached) return cached;
    if (version === 0) return undefined; // versions start at 1: 0 is never anchored
    const hash = await this.shared(`hash:${version}`, () =>
      this.client.readContract({
        address: this.address,
        abi: configRegistryAbi,
        functionName: "hashOf",
        args: [BigInt(version)],
      }),
    );
    if (hash === ZERO_HASH) return undefined;
    this.hashes.set(version, hash);
    return hash;
  }

  async latest(): Promise<{ version: number; hash: Hex }> {
    const [version, hash] = await this.shared("latest", () =>
      this.client.readContract({ address: this.address, abi: configRegistryAbi, functionName: "latest" }),
    );
    const result = { version: Number(version), hash };
    if (hash !== ZERO_HASH) this.hashes.set(result.version, hash);
    return result;
  }

  async isDeltaSigner(address: string): Promise<boolean> {
    if (!isAddress(address, { strict: false })) return false;
    const key = address.toLowerCase();
    const cached = this.signers.get(key);
    if (cached && cached.expiresAt > this.now()) return cached.value;
    // The answer is as old as the moment the chain was asked (by whichever caller started the shared read), not
    // the moment it arrived.
    const { value, askedAt } = await this.shared(`signer:${key}`, async () => {
      const askedAt = this.now();
      const value = await this.client.readContract({
        address: this.address,
        abi: configRegistryAbi,
        functionName: "isDeltaSigner",
        args: [getAddress(address)],
      });
      return { value, askedAt };
    });
    this.remember(key, value, askedAt + this.signerTtlMs);
    return value;
  }

  private remember(key: string, value: boolean, expiresAt: number): void {
    this.signers.delete(key);
    if (this.signers.size >= this.maxSigners) {
      const now = this.now();
      for (const [k, entry] of this.signers) if (entry.expiresAt <= now) this.signers.delete(k);
      // Still full: drop the oldest answers (a Map iterates in insertion order).
      for (const k of this.signers.keys()) {
        if (this.signers.size < this.maxSigners) break;
        this.signers.delete(k);
      }
    }
    this.signers.set(key, { value, expiresAt });
  }

  private shared<T>(key: string, read: () => Promise<T>): Promise<T> {
    const pending = this.inFlight.get(key) as Promise<T> | undefined;
    if (pending) return pending;
    const promise = read().finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, promise);
    return promise;
  }
}

function checkVersion(version: number): void {
  if (!Number.isSafeInteger(version) || version < 0) {
    throw raiseAnchor("CONFIG_ANCHOR_VERSION_INVALID", `configuration version ${version} is not a whole number >= 0`, {
      details: { version },
    });
  }
}

/**
 * Anchors `version` with `hash` (keccak-256 of the document's canonical bytes) from `wallet`'s account, which must
 * hold PUBLISHER_ROLE, and waits for the receipt. The call is simulated first, so a version that is not the latest
 * + 1, a zero hash or a missing role is refused with its reason before anything is sent. Returns the transaction
 * hash.
 */
export async function anchorVersion(
  wallet: WalletClient,
  client: PublicClient,
  registry: Address,
  version: number,
  hash: Hex,
): Promise<Hex> {
  checkVersion(version);
  if (version === 0) throw raiseAnchor("CONFIG_ANCHOR_VERSION_INVALID", "configuration versions start at 1");
  if (!/^0x[0-9a-fA-F]{64}$/.test(hash) || hash === ZERO_HASH) {
    throw raiseAnchor("CONFIG_ANCHOR_HASH_INVALID", `${hash} is not a non-zero 32-byte hash`, { details: { hash } });
  }
  const account = wallet.account;
  if (!account) throw raiseAnchor("CONFIG_ANCHOR_NOT_PUBLISHER", "the wallet has no account to publish from");
  const call = {
    address: registry,
    abi: configRegistryAbi,
    functionName: "publish",
    args: [BigInt(version), hash],
    account,
    chain: wallet.chain,
  } as const;
  try {
    await client.simulateContract(call);
  } catch (error) {
    throw explainRevert(error, version, account.address);
  }
  const tx = await wallet.writeContract(call);
  const receipt = await client.waitForTransactionReceipt({ hash: tx });
  if (receipt.status !== "success") {
    throw raiseAnchor("CONFIG_ANCHOR_TX_FAILED", `publishing version ${version} reverted in transaction ${tx}`, {
      details: { version, tx },
    });
  }
  return tx;
}

/** Turns the registry's revert reasons into EdgeErrors with their values; anything else is rethrown as is. */
function explainRevert(error: unknown, version: number, account: Address): unknown {
  const revert = findRevert(error);
  if (revert?.errorName === "ConfigVersionNotNext") {
    const expected = Number((revert.args as readonly bigint[])[1]);
    return raiseAnchor(
      "CONFIG_ANCHOR_VERSION_NOT_NEXT",
      `version ${version} is not the next configuration version: the chain's latest is ${expected - 1}, so the ` +
        `next is ${expected}`,
      { details: { version, expected }, cause: error },
    );
  }
  if (revert?.errorName === "AccessControlUnauthorizedAccount") {
    return raiseAnchor("CONFIG_ANCHOR_NOT_PUBLISHER", `${account} does not hold PUBLISHER_ROLE on ConfigRegistry`, {
      details: { account },
      cause: error,
    });
  }
  return error;
}

function findRevert(error: unknown): { errorName?: string; args?: readonly unknown[] } | undefined {
  let current = error as { data?: { errorName?: string; args?: readonly unknown[] }; cause?: unknown } | undefined;
  for (let depth = 0; current && depth < 8; depth++) {
    if (current.data?.errorName) return current.data;
    current = current.cause as typeof current;
  }
  return undefined;
}
