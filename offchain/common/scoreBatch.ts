/**
 * Score batches as RewardsManager takes them: entries packed 10 bytes each (uint64 stake id, uint16 score,
 * big-endian), hashed with keccak256, and signed by the committee as EIP-712 `ScoreBatch`.
 */
import { type Hex, bytesToHex, hexToBytes, keccak256 } from "viem";

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
  const bytes = new Uint8Array(entries.length * 10);
  const view = new DataView(bytes.buffer);
  entries.forEach(({ stakeId, score }, i) => {
    if (stakeId < 0n || stakeId > MAX_UINT64) throw new RangeError(`stake id ${stakeId} does not fit 64 bits`);
    if (score < 0n || score > MAX_UINT16) throw new RangeError(`score ${score} does not fit 16 bits`);
    view.setBigUint64(i * 10, stakeId);
    view.setUint16(i * 10 + 8, Number(score));
  });
  return bytesToHex(bytes);
}

export function entriesHash(packed: Hex): Hex {
  return keccak256(packed);
}

/** The inverse of packEntries (for auditing posted batches; browser-safe: the Console uses it too). */
export function unpackEntries(packed: string): Array<{ stakeId: bigint; score: number }> {
  const bytes = hexToBytes(packed.startsWith("0x") ? (packed as Hex) : `0x${packed}`);
  if (bytes.length % 10 !== 0) throw new RangeError(`${bytes.length} bytes is not a whole number of entries`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: Array<{ stakeId: bigint; score: number }> = [];
  for (let i = 0; i < bytes.length; i += 10) {
    out.push({ stakeId: view.getBigUint64(i), score: view.getUint16(i + 8) });
  }
  return out;
}
