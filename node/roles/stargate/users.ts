/**
 * The Network API's team users (`--users`, JSON `{ "users": [{ "name", "passwordHash", "scopes" }] }`) and their
 * password login (D56):
 * - every attempt costs one scrypt whether the name exists or not (an unknown name is checked against a hash of
 *   the same cost), and both failures answer the same 401: the answer and its time do not say which names exist;
 * - rate limits by client (its IPv4 address, or its IPv6 /64: `clientKey`, R17-11) and by user name, each a
 *   refilling bucket (offchain/common/tokenBucket.ts), taken before any hashing: 429 EDGE_NODE_LOGIN_RATE_LIMITED;
 * - at most `parallel` hashes run at once (default one core fewer than the machine has, at least one, so a login
 *   flood leaves a core to the stream and the API: R17-11; scrypt runs on libuv's pool) and at most `maxQueued`
 *   wait: past that 503 EDGE_NODE_LOGIN_BUSY at once, so a flood costs memory it is bounded by.
 * Passwords are only ever in the request body, which the daemon's logger never prints (D56).
 */
import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { Type } from "@fastify/type-provider-typebox";
import { Value } from "typebox/value";

import { KeyedLimiter, clientKey } from "../../../offchain/common/tokenBucket";
import { nodeError } from "../../errors";
import { SCOPES, type Scope } from "../../tokens";
import { DEFAULT_COST, type PasswordHash, hashPassword, parsePasswordHash, passwordMatches } from "./passwords";

export const USER_NAME_PATTERN = "^[A-Za-z0-9._@-]{1,64}$";
export const MAX_PASSWORD_LENGTH = 1024;

const UsersFileSchema = Type.Object(
  {
    users: Type.Array(
      Type.Object(
        {
          name: Type.String({ pattern: USER_NAME_PATTERN }),
          passwordHash: Type.String({ maxLength: 200 }),
          scopes: Type.Array(Type.Union(SCOPES.map((s) => Type.Literal(s))), { uniqueItems: true }),
        },
        { additionalProperties: false },
      ),
      { maxItems: 10_000 },
    ),
  },
  { additionalProperties: false },
);

export interface User {
  name: string;
  password: PasswordHash;
  scopes: Scope[];
}

/** Parses a users file's JSON; throws an Error naming the first problem (the daemon refuses to start on it). */
export function parseUsers(json: unknown): Map<string, User> {
  if (!Value.Check(UsersFileSchema, json)) {
    const first = Value.Errors(UsersFileSchema, json)[0];
    throw new Error(`users file: ${first ? `${first.instancePath || "/"}: ${first.message}` : "invalid"}`);
  }
  const users = new Map<string, User>();
  for (const u of (json as { users: { name: string; passwordHash: string; scopes: Scope[] }[] }).users) {
    if (users.has(u.name)) throw new Error(`users file: the name ${u.name} appears twice`);
    const password = parsePasswordHash(u.passwordHash);
    if (typeof password === "string") throw new Error(`users file: ${u.name}'s passwordHash: ${password}`);
    users.set(u.name, { name: u.name, password, scopes: u.scopes });
  }
  return users;
}

export const loadUsers = (path: string): Map<string, User> => parseUsers(JSON.parse(readFileSync(path, "utf8")));

export interface PasswordLoginOptions {
  users: Map<string, User>;
  now: () => number;
  /** Logins one client may try a minute, also its burst (default 30). */
  perClientPerMinute?: number;
  /** Logins one user name may be tried a minute, from anywhere (default 10). */
  perNamePerMinute?: number;
  /** Hashes at once (default: the cores less one, at least one). */
  parallel?: number;
  /** Logins waiting for a hash slot before 503 (default 256). */
  maxQueued?: number;
}

export class PasswordLogin {
  private readonly byClient: KeyedLimiter;
  private readonly byName: KeyedLimiter;
  private readonly parallel: number;
  private readonly maxQueued: number;
  private readonly waiting: (() => void)[] = [];
  private running = 0;
  /** What an unknown name is checked against: a hash of the users' cost, so it takes as long. */
  private decoy: Promise<PasswordHash>;

  constructor(private readonly options: PasswordLoginOptions) {
    this.byClient = new KeyedLimiter(options.perClientPerMinute ?? 30);
    this.byName = new KeyedLimiter(options.perNamePerMinute ?? 10);
    this.parallel = options.parallel ?? Math.max(1, availableParallelism() - 1);
    this.maxQueued = options.maxQueued ?? 256;
    const cost = options.users.values().next().value?.password.cost ?? DEFAULT_COST;
    this.decoy = hashPassword("decoy", cost).then((text) => parsePasswordHash(text) as PasswordHash);
  }

  /** Hashes running and waiting now. */
  get load(): { running: number; waiting: number } {
    return { running: this.running, waiting: this.waiting.length };
  }

  /** The user `name` if `password` is theirs; else 401, the same for an unknown name and a wrong password. */
  async login(name: string, password: string, client: string): Promise<User> {
    this.limit(name, client);
    const user = this.options.users.get(name);
    const stored = user?.password ?? (await this.decoy);
    const matches = await this.slot(() => passwordMatches(password, stored));
    if (!user || !matches) throw nodeError("EDGE_NODE_LOGIN_FAILED", "wrong user name or password");
    return user;
  }

  /** Takes one attempt of `client`'s (its /64 for IPv6) and of `name`'s budget; 429 when either is spent. */
  limit(name: string, client: string): void {
    const now = this.options.now();
    const key = clientKey(client);
    const clientWait = this.byClient.take(key, now);
    if (clientWait !== undefined)
      throw nodeError("EDGE_NODE_LOGIN_RATE_LIMITED", `too many logins from ${key}: retry in ${secs(clientWait)} s`);
    const nameWait = this.byName.take(name, now);
    if (nameWait !== undefined)
      throw nodeError("EDGE_NODE_LOGIN_RATE_LIMITED", `too many logins for this name: retry in ${secs(nameWait)} s`);
  }

  /** Runs `work` when fewer than `parallel` run; 503 when `maxQueued` already wait. */
  private async slot<T>(work: () => Promise<T>): Promise<T> {
    if (this.running >= this.parallel) {
      if (this.waiting.length >= this.maxQueued)
        throw nodeError("EDGE_NODE_LOGIN_BUSY", `${this.waiting.length} logins are waiting already: retry shortly`);
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else this.running += 1;
    try {
      return await work();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.running -= 1;
    }
  }
}

const secs = (ms: number) => Math.max(1, Math.ceil(ms / 1000));
