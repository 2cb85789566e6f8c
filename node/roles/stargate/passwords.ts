/**
 * Password hashes of the Network API's users (D56): Node's built-in scrypt, stored self-describing as
 * `scrypt$<log2 N>$<r>$<p>$<salt base64url>$<hash base64url>` so each hash carries its own cost and a stronger
 * cost applies to new hashes without breaking old ones. Comparison in constant time (timingSafeEqual).
 *
 * Default cost N=2^14, r=8, p=1 (16 MiB, ~50 ms on one core of the project's machine): OWASP's N=2^17 costs 8
 * times more, ~0.4 to 0.8 s a login here, so 100 logins at once would wait 20 to 40 s on 2 cores (the bound is
 * CPU, not the queue). The figure behind the choice is `login.p99.ms` (docs/control-plane.md "Network API").
 */
import { randomBytes, scrypt, timingSafeEqual } from "node:crypto";

export interface ScryptCost {
  /** log2 of N, the CPU and memory cost. */
  logN: number;
  r: number;
  p: number;
}

export const DEFAULT_COST: ScryptCost = { logN: 14, r: 8, p: 1 };
const KEY_BYTES = 32;
const SALT_BYTES = 16;
const FORMAT = /^scrypt\$(\d{1,2})\$(\d{1,2})\$(\d{1,2})\$([A-Za-z0-9_-]{16,64})\$([A-Za-z0-9_-]{43})$/;

export interface PasswordHash {
  cost: ScryptCost;
  salt: Buffer;
  hash: Buffer;
}

export const describeCost = (c: ScryptCost) => `scrypt N=2^${c.logN},r=${c.r},p=${c.p}`;

/** Why `cost` is refused (too weak to be a password hash, or too heavy for a server), or undefined. */
export function costProblem(cost: ScryptCost): string | undefined {
  if (cost.logN < 12 || cost.logN > 20) return `log2 N must be 12 to 20, not ${cost.logN}`;
  if (cost.r < 1 || cost.r > 32 || cost.p < 1 || cost.p > 16) return "r must be 1 to 32 and p 1 to 16";
  return undefined;
}

function derive(password: string, salt: Buffer, cost: ScryptCost): Promise<Buffer> {
  const N = 2 ** cost.logN;
  return new Promise((resolve, reject) =>
    scrypt(
      password.normalize("NFC"),
      salt,
      KEY_BYTES,
      { N, r: cost.r, p: cost.p, maxmem: 256 * N * cost.r },
      (e, key) => (e ? reject(e) : resolve(key)),
    ),
  );
}

/** A new hash of `password` with a fresh salt, in the stored format. */
export async function hashPassword(password: string, cost: ScryptCost = DEFAULT_COST): Promise<string> {
  const problem = costProblem(cost);
  if (problem) throw new Error(`scrypt cost refused: ${problem}`);
  const salt = randomBytes(SALT_BYTES);
  const hash = await derive(password, salt, cost);
  return ["scrypt", cost.logN, cost.r, cost.p, salt.toString("base64url"), hash.toString("base64url")].join("$");
}

/** The parts of a stored hash, or why it is not one. */
export function parsePasswordHash(text: string): PasswordHash | string {
  const m = FORMAT.exec(text);
  if (!m) return "not scrypt$<log2 N>$<r>$<p>$<salt>$<hash> (edge-node hash-password makes one)";
  const cost = { logN: Number(m[1]), r: Number(m[2]), p: Number(m[3]) };
  const problem = costProblem(cost);
  if (problem) return problem;
  return { cost, salt: Buffer.from(m[4], "base64url"), hash: Buffer.from(m[5], "base64url") };
}

/** Whether `password` is the one `stored` hashes; the work is the same whether it is or not. */
export async function passwordMatches(password: string, stored: PasswordHash): Promise<boolean> {
  const key = await derive(password, stored.salt, stored.cost);
  return timingSafeEqual(key, stored.hash);
}
