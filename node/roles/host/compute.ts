/**
 * The job a host runs: a real, checkable computation, `rounds` iterations of SHA-256: the first over the
 * payload's UTF-8 bytes, each next over the previous digest. Anyone can check a result with {runJob}.
 */
import { createHash } from "node:crypto";
import type { Hex } from "viem";

const sha256 = (data: string | Buffer): Buffer => createHash("sha256").update(data).digest();

/** From the digest after round `from`, the digest after round `to`. */
function rounds(digest: Buffer, from: number, to: number): Buffer {
  for (let i = from; i < to; i++) digest = sha256(digest);
  return digest;
}

export function runJob(payload: string, count: number): Hex {
  return `0x${rounds(sha256(payload), 1, count).toString("hex")}`;
}

/**
 * {runJob} that yields to the event loop every `chunk` rounds, so a large job never stalls /health, /status
 * or the chain view of the process running it.
 */
export async function runJobAsync(payload: string, count: number, chunk = 2_000): Promise<Hex> {
  let digest = sha256(payload);
  for (let done = 1; done < count;) {
    const next = Math.min(count, done + chunk);
    digest = rounds(digest, done, next);
    done = next;
    if (done < count) await new Promise<void>((resolve) => setImmediate(resolve));
  }
  return `0x${digest.toString("hex")}`;
}
