/**
 * The devnet's control plane (issue 17): the stargate holds the configuration key (ConfigRegistry grants it the
 * publisher and delta-signer roles at deployment) and a Network API users file with one team member; the devnet
 * publishes configuration version 1 (the demo site) the way `config:publish` does (anchor, then upload), gateways
 * and hosts take it over the stargate's gRPC stream, and a blocklist rule added through the Network API is shown
 * enforced at every gateway's front door, then lifted.
 */
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { request } from "undici";
import type { Address } from "viem";

import { anchorVersion } from "../../offchain/common/configAnchor";
import { type Zone, documentHash, emptyConfig, encodeDocument } from "../../offchain/common/protocol";
import { hashPassword } from "../../node/roles/stargate/passwords";
import { uploadTo } from "../tasks/configLib";
import type { Chain } from "./chain";
import { type Accounts, DevnetError, type StepLog, waitFor } from "./common";
import { getJson } from "./observe";
import { DEVNET_CLIENT_REGIONS } from "./spill";

export const TEAM_USER = "ops";
const TEAM_SCOPES = ["config:publish", "blocklist:write", "sites:write", "tokens:revoke", "node:drain"];

/** Writes the stargate's users file: one team member with every scope and a password made for this run. */
export async function writeUsers(dir: string): Promise<{ file: string; password: string }> {
  const password = randomBytes(12).toString("base64url");
  const file = join(dir, "users.json");
  const users = [{ name: TEAM_USER, passwordHash: await hashPassword(password), scopes: TEAM_SCOPES }];
  writeFileSync(file, JSON.stringify({ users }, null, 2));
  return { file, password };
}

/**
 * Publishes version 1: the sites file's sites, `zones` and the client regions table in an otherwise empty document, anchored with the configuration
 * key and uploaded to the stargate. Returns the document's hash.
 */
export async function publishInitialConfig(
  chain: Chain,
  accounts: Accounts,
  stargateUrl: string,
  sitesFile: string,
  zones: Zone[] = [],
): Promise<string> {
  const doc = emptyConfig(1);
  doc.sites = (JSON.parse(readFileSync(sitesFile, "utf8")) as { sites: unknown[] }).sites;
  doc.zones = zones;
  doc.regions = DEVNET_CLIENT_REGIONS; // clients placed by address for Edge DNS (spill.ts, D69, D71)
  const bytes = encodeDocument(doc);
  const hash = documentHash(bytes);
  await anchorVersion(chain.wallet(accounts.config), chain.client, chain.address("ConfigRegistry"), 1, hash);
  const upload = await waitFor(
    "the stargate's configuration routes",
    async () => {
      const result = await uploadTo(stargateUrl, bytes);
      return result.outcome === "failed" && result.detail.startsWith("unreachable") ? undefined : result;
    },
    // Every daemon starts at once (ts-node compiles each): a loaded 2-core machine has taken over a minute.
    120_000,
  );
  if (upload.outcome === "failed") throw new DevnetError(`uploading version 1 to the stargate: ${upload.detail}`);
  return hash;
}

export interface ConfigView {
  version: number;
  subscribers: { device: string; role: string; version: number; connected: boolean }[];
}

/** Waits until every one of `devices` is connected to the stargate and acknowledged `version`. */
export async function waitForVersion(stargateUrl: string, devices: Address[], version: number): Promise<ConfigView> {
  return waitFor(
    `every gateway and host on configuration version ${version}`,
    async () => {
      const view = (await getJson(`${stargateUrl}/config/view`)) as ConfigView;
      const on = (d: Address) =>
        view.subscribers.some((s) => s.device.toLowerCase() === d.toLowerCase() && s.connected && s.version >= version);
      return devices.every(on) ? view : undefined;
    },
    60_000,
  );
}

/** Logs the team member in at the stargate's Network API: the headers of its bearer token. */
export async function teamHeaders(stargateUrl: string, password: string): Promise<Record<string, string>> {
  const login = await request(`${stargateUrl}/api/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ name: TEAM_USER, password }),
  });
  const { token } = (await login.body.json()) as { token: string };
  if (login.statusCode !== 200 || !token) throw new DevnetError(`the team member's login failed: ${login.statusCode}`);
  return { authorization: `Bearer ${token}`, "content-type": "application/json" };
}

/**
 * Logs the team member in, blocks a path of the demo site through the Network API, and measures how long until
 * every front door refuses it (403 EDGE_NODE_BLOCKED); then lifts the rule and waits until every front door serves
 * the path again. Returns the milliseconds to enforcement at each front door.
 */
export async function showBlocklist(
  stargateUrl: string,
  password: string,
  site: string,
  frontDoors: Record<string, string>,
  log: StepLog,
): Promise<Record<string, number>> {
  const auth = await teamHeaders(stargateUrl, password);
  const rule = JSON.stringify({ path: { hostname: site, prefix: "/blocked/" } });
  const started = Date.now();
  const added = await request(`${stargateUrl}/api/blocklist`, { method: "POST", headers: auth, body: rule });
  await added.body.dump();
  if (added.statusCode >= 300) throw new DevnetError(`POST /api/blocklist answered ${added.statusCode}`);
  const enforced: Record<string, number> = {};
  await Promise.all(
    Object.entries(frontDoors).map(async ([name, url]) => {
      await waitFor(`${name} refusing /blocked/`, async () => (await statusOf(url, site)) === 403, 10_000);
      enforced[name] = Date.now() - started;
    }),
  );
  const removed = await request(`${stargateUrl}/api/blocklist`, { method: "DELETE", headers: auth, body: rule });
  await removed.body.dump();
  for (const [name, url] of Object.entries(frontDoors))
    await waitFor(`${name} serving /blocked/ again`, async () => (await statusOf(url, site)) !== 403, 10_000);
  log.step(
    `blocklist: /blocked/ on ${site} added through the Network API, refused at ` +
      Object.entries(enforced)
        .map(([name, ms]) => `${name} after ${ms} ms`)
        .join(", ") +
      "; then lifted",
  );
  return enforced;
}

async function statusOf(frontDoor: string, site: string): Promise<number> {
  const response = await request(`${frontDoor}/blocked/probe`, { headers: { host: site } });
  await response.body.dump();
  return response.statusCode;
}

/**
 * Prints every node as the stargate sees it at the end: the configuration version it acknowledged, whether its
 * stream is connected, and its health in the stargates' catalogue. Returns the names of gateways and hosts that
 * are admitted but not on `version`.
 */
export async function printControlPlane(
  stargateUrl: string,
  nodes: { name: string; role: string; address: Address }[],
  version: number,
): Promise<string[]> {
  const view = (await getJson(`${stargateUrl}/config/view`)) as ConfigView;
  const catalogue = (await getJson(`${stargateUrl}/health/catalogue`)) as {
    endpoints: { device: string; healthy: boolean }[];
  };
  const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();
  console.log(`\ncontrol plane: the stargate holds configuration version ${view.version}`);
  const behind: string[] = [];
  const rows = nodes
    .filter((n) => n.role !== "stargate")
    .map((n) => {
      const sub = view.subscribers.find((s) => same(s.device, n.address));
      const endpoint = catalogue.endpoints.find((e) => same(e.device, n.address));
      if (sub?.connected && sub.version < version) behind.push(n.name);
      return {
        node: n.name,
        role: n.role,
        version: sub ? sub.version : "-",
        stream: sub?.connected ? "connected" : "closed",
        health: endpoint === undefined ? "-" : endpoint.healthy ? "healthy" : "unhealthy",
      };
    });
  console.table(rows);
  return behind;
}
