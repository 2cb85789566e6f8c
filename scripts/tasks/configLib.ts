/**
 * The config:* tasks' plain parts (scripts/tasks/config.ts), importable without a Hardhat runtime (the devnet
 * publishes its first configuration with them): reading a document file, the --stargates list, and the upload
 * of a version's canonical bytes to one stargate.
 */
import { readFileSync, statSync } from "node:fs";

import { messageOf } from "../../offchain/common/errors";
import { fail } from "./lib";
import {
  MAX_DOCUMENT_BYTES,
  type NetworkConfig,
  canonicalBytes,
  documentHash,
  parseDocument,
} from "../../offchain/common/protocol/netConfig";

/** How long one stargate may take to answer an upload or a view. */
export const STARGATE_TIMEOUT_MS = 15_000;
/** A stargate's answer when it already holds this version or a newer one: nothing left to do there. */
const HELD_CODE = "EDGE_NODE_CONFIG_STALE";

export interface ConfigFile {
  document: NetworkConfig;
  bytes: Buffer;
  hash: `0x${string}`;
}

/** Reads, canonicalizes and validates a NetworkConfig document; any problem is a task failure naming the file. */
export function readConfigFile(path: string): ConfigFile {
  let text: string;
  try {
    if (statSync(path).size > MAX_DOCUMENT_BYTES) fail(`${path} is larger than ${MAX_DOCUMENT_BYTES} bytes`);
    text = readFileSync(path, "utf8");
  } catch (error) {
    if ((error as { pluginName?: string }).pluginName) throw error;
    fail(`cannot read ${path}: ${messageOf(error)}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    fail(`${path} is not JSON: ${messageOf(error)}`);
  }
  const bytes = canonicalBytes(value);
  const document = parseDocument(bytes);
  if (typeof document === "string") fail(`${path} is not a NetworkConfig document: ${document}`);
  return { document, bytes, hash: documentHash(bytes) };
}

/** "http://a:1,https://b" -> base URLs without a trailing slash; anything else than http(s) URLs fails. */
export function parseStargates(value: string | undefined): string[] {
  if (value === undefined || value.trim() === "") return [];
  return value.split(",").map((raw) => {
    const entry = raw.trim();
    let url: URL;
    try {
      url = new URL(entry);
    } catch {
      return fail(`--stargates: "${entry}" is not a URL (like http://stargate-1:8080)`);
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") fail(`--stargates: "${entry}" is not an http(s) URL`);
    return url.href.replace(/\/+$/, "");
  });
}

export interface UploadResult {
  stargate: string;
  /** accepted: the stargate took the version; held: it already holds it or a newer one; failed: anything else. */
  outcome: "accepted" | "held" | "failed";
  detail: string;
}

/**
 * POSTs the canonical bytes to one stargate; never throws (the outcome says what happened). The version (given, or
 * read from the document) goes in `?version=`, so the stargate checks the chain before reading the body (R17-3).
 */
export async function uploadTo(stargate: string, bytes: Buffer, version = versionOf(bytes)): Promise<UploadResult> {
  try {
    const query = version === undefined ? "" : `?version=${version}`;
    const response = await fetch(`${stargate}/config/versions${query}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: bytes,
      signal: AbortSignal.timeout(STARGATE_TIMEOUT_MS),
    });
    const text = await response.text();
    let body: { code?: string; message?: string; error?: string; version?: number } = {};
    try {
      body = JSON.parse(text);
    } catch {
      // Not JSON (a proxy's page): the status and the start of the text say enough.
    }
    if (response.ok) return { stargate, outcome: "accepted", detail: `accepted version ${body.version ?? "?"}` };
    const why = body.message ?? body.error ?? text.slice(0, 200);
    if (body.code === HELD_CODE) return { stargate, outcome: "held", detail: `already held: ${why}` };
    return {
      stargate,
      outcome: "failed",
      detail: `HTTP ${response.status}${body.code ? ` ${body.code}` : ""}: ${why}`,
    };
  } catch (error) {
    return { stargate, outcome: "failed", detail: `unreachable: ${describeFetchError(error)}` };
  }
}

/** The document's version, if the bytes are JSON carrying one. */
function versionOf(bytes: Buffer): number | undefined {
  try {
    const version = (JSON.parse(bytes.toString("utf8")) as { version?: unknown }).version;
    return Number.isSafeInteger(version) && (version as number) > 0 ? (version as number) : undefined;
  } catch {
    return undefined;
  }
}

export function describeFetchError(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  if ((error as { name?: string }).name === "TimeoutError") return `no answer within ${STARGATE_TIMEOUT_MS} ms`;
  return cause?.code ?? cause?.message ?? messageOf(error);
}
