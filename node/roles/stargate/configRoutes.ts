/**
 * The stargate's configuration routes (D53):
 * - GET /config/view: the version it holds and who runs which version ({ version, hash, seq, subscribers });
 * - GET /config/current: the configuration in force (the latest anchored version with its deltas applied);
 * - POST /config/versions: a version anchored on-chain, uploaded as its canonical document bytes (what
 *   `config:publish` sends after anchoring). Any stargate takes it, from anyone: it is accepted only if the chain
 *   anchors keccak256 of exactly these bytes for the document's version and that version is newer than the
 *   held one. Before the body is read (R17-3): one upload at a time (503 EDGE_NODE_CONFIG_BUSY), the version
 *   (`?version=N`, else the chain's latest) must be newer than the held one (409) and anchored (409), so only
 *   bytes whose hash the chain anchors are parsed. The body is read raw (any content type) up to
 *   MAX_DOCUMENT_BYTES.
 */
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { Hex } from "viem";

import { messageOf } from "../../../offchain/common/errors";
import type { TypedApp } from "../../../offchain/common/http";
import { MAX_DOCUMENT_BYTES, documentHash, parseDocument } from "../../../offchain/common/protocol";
import type { AnchorReader } from "../../configWire";
import { nodeError } from "../../errors";
import type { ConfigAuthority } from "./authority";
import type { ConfigServer } from "./configServer";
import type { ConfigStore, StoredVersion } from "./configStore";

export interface ConfigRoutesSource {
  store: ConfigStore;
  server: ConfigServer;
  /** Undefined when the deployment has no ConfigRegistry: uploads are refused. */
  anchor: AnchorReader | undefined;
  authority: ConfigAuthority | undefined;
}

export function registerConfigRoutes(app: TypedApp, source: ConfigRoutesSource): void {
  const { store, server } = source;
  app.get("/config/view", async () => {
    const latest = store.latest();
    return {
      version: latest?.version ?? 0,
      hash: latest?.hash ?? null,
      seq: store.seq(),
      subscribers: server.subscribers(),
    };
  });
  app.get("/config/current", async () => {
    const current = store.effectiveConfig();
    if (!current) throw nodeError("EDGE_NODE_CONFIG_NONE", "this stargate holds no anchored configuration yet");
    return current;
  });
  void app.register(async (scope: FastifyInstance) => {
    const uploads = new Uploads(source);
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser("*", { parseAs: "buffer", bodyLimit: MAX_DOCUMENT_BYTES }, (_request, body, done) =>
      done(null, body),
    );
    // Before the body is read (R17-3): one upload at a time, and only for a version the chain anchors.
    scope.addHook("preParsing", async (request) => {
      if (request.routeOptions.url === "/config/versions") await uploads.admit(request);
    });
    scope.addHook("onResponse", async (request) => uploads.release(request));
    scope.addHook("onRequestAbort", async (request) => uploads.release(request));
    scope.post("/config/versions", { bodyLimit: MAX_DOCUMENT_BYTES }, async (request) => {
      const bytes = request.body;
      if (!Buffer.isBuffer(bytes)) throw nodeError("EDGE_NODE_CONFIG_INVALID", "the body must be the document's bytes");
      return upload(source, bytes, uploads.expected(request));
    });
  });
}

/** An upload older than this no longer holds the one slot (a client sending 16 MiB slowly). */
const UPLOAD_SLOT_MS = 60_000;

/** The one upload in progress and the (version, hash) the chain anchors for each admitted request. */
class Uploads {
  private current: { request: FastifyRequest; since: number } | undefined;
  private readonly anchored = new WeakMap<FastifyRequest, { version: number; hash: Hex }>();

  constructor(private readonly source: ConfigRoutesSource) {}

  /** Refuses an upload cheaply (busy, stale, not anchored) before its body is read. */
  async admit(request: FastifyRequest): Promise<void> {
    const { store, anchor } = this.source;
    if (this.current && Date.now() - this.current.since < UPLOAD_SLOT_MS)
      throw nodeError("EDGE_NODE_CONFIG_BUSY", "another upload is in progress: retry in a moment");
    if (!anchor) throw nodeError("EDGE_NODE_CONFIG_UNAVAILABLE", "the deployment has no ConfigRegistry");
    this.current = { request, since: Date.now() };
    const given = (request.query as { version?: unknown } | undefined)?.version;
    if (given !== undefined && (typeof given !== "string" || !/^[1-9]\d{0,14}$/.test(given)))
      throw nodeError("EDGE_NODE_CONFIG_INVALID", "?version must be a version number (1 or more)");
    const chain = await (given === undefined ? anchor.latest() : undefined)?.catch(unreadable);
    const version = given === undefined ? chain!.version : Number(given);
    const held = store.latest()?.version ?? 0;
    if (version <= held)
      throw nodeError("EDGE_NODE_CONFIG_STALE", `version ${version} is not newer than the held ${held}`);
    const hash = chain?.hash ?? (await anchor.hashOf(version).catch(unreadable));
    if (hash === undefined)
      throw nodeError("EDGE_NODE_CONFIG_NOT_ANCHORED", `ConfigRegistry anchors no version ${version}`);
    this.anchored.set(request, { version, hash });
  }

  expected(request: FastifyRequest): { version: number; hash: Hex } {
    const expected = this.anchored.get(request);
    if (!expected) throw nodeError("EDGE_NODE_CONFIG_UNAVAILABLE", "the upload was not admitted");
    return expected;
  }

  release(request: FastifyRequest): void {
    if (this.current?.request === request) this.current = undefined;
  }
}

const unreadable = (error: unknown): never => {
  throw nodeError("EDGE_NODE_CONFIG_UNAVAILABLE", `ConfigRegistry could not be read: ${messageOf(error)}`);
};

/** Takes bytes whose keccak256 the chain anchors for `expected.version`; only those are parsed. */
async function upload(
  source: ConfigRoutesSource,
  bytes: Buffer,
  expected: { version: number; hash: Hex },
): Promise<{ version: number; hash: string }> {
  const { store, authority } = source;
  const hash = documentHash(bytes);
  if (hash !== expected.hash)
    throw nodeError(
      "EDGE_NODE_CONFIG_NOT_ANCHORED",
      `ConfigRegistry anchors ${expected.hash} for version ${expected.version}, not this document's ${hash}`,
    );
  const document = parseDocument(bytes);
  if (typeof document === "string") throw nodeError("EDGE_NODE_CONFIG_INVALID", document);
  if (document.version !== expected.version)
    throw nodeError(
      "EDGE_NODE_CONFIG_INVALID",
      `the document is version ${document.version}, anchored as version ${expected.version}`,
    );
  const version: StoredVersion = { version: document.version, hash, bytes, document };
  // Checked again: another version may have come in (a fold, the relay) while the body was read.
  if (document.version <= (store.latest()?.version ?? 0))
    throw nodeError("EDGE_NODE_CONFIG_STALE", `version ${document.version} is not newer than the held one`);
  if (authority) await authority.adopt(version);
  else store.putVersion(version);
  return { version: document.version, hash };
}
