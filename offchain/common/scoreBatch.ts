/**
 * Score batches as RewardsManager takes them: entries packed 10 bytes each (uint64 stake id, uint16 score,
 * big-endian), hashed with keccak256, and signed by the committee as EIP-712 `ScoreBatch`.
 */
import { type Hex, keccak256 } from "viem";

export interface ScoreEntry {
  stakeId: bigint;
  score: bigint;
}

export const SCORE_BATCH_TYPES = {
  ScoreBatch: [
    { name: "epoch", type: "uint256" },
    { name: "batchIndex", type: "uint256" },
    { name: "entriesHash", type: "bytes32" },
    { name: "committeeVersion", type: "uint256" },
  ],
};

const MAX_UINT64 = (1n << 64n) - 1n;
const MAX_UINT16 = (1n << 16n) - 1n;

/** Packs entries as the contract reads them. Scores above 20000 still pack (the contract skips them). */
export function packEntries(entries: readonly ScoreEntry[]): Hex {
  const bytes = Buffer.alloc(entries.length * 10);
  entries.forEach(({ stakeId, score }, i) => {
    if (stakeId < 0n || stakeId > MAX_UINT64) throw new RangeError(`stake id ${stakeId} does not fit 64 bits`);
    if (score < 0n || score > MAX_UINT16) throw new RangeError(`score ${score} does not fit 16 bits`);
    bytes.writeBigUInt64BE(stakeId, i * 10);
    bytes.writeUInt16BE(Number(score), i * 10 + 8);
  });
  return `0x${bytes.toString("hex")}`;
}

export function entriesHash(packed: Hex): Hex {
  return keccak256(packed);
}

/** The inverse of packEntries (for auditing posted batches). */
export function unpackEntries(packed: string): Array<{ stakeId: bigint; score: number }> {
  const bytes = Buffer.from(packed.replace(/^0x/, ""), "hex");
  if (bytes.length % 10 !== 0) throw new RangeError(`${bytes.length} bytes is not a whole number of entries`);
  const out: Array<{ stakeId: bigint; score: number }> = [];
  for (let i = 0; i < bytes.length; i += 10) {
    out.push({ stakeId: bytes.readBigUInt64BE(i), score: bytes.readUInt16BE(i + 8) });
  }
  return out;
}
