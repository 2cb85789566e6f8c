/**
 * The stargate's configuration routes (D53):
 * - GET /config/view: the version it holds and who runs which version ({ version, hash, seq, subscribers });
 * - GET /config/current: the configuration in force (the latest anchored version with its deltas applied);
 * - POST /config/versions: a version anchored on-chain, uploaded as its canonical document bytes (what
 *   `config:publish` sends after anchoring). Any stargate takes it, from anyone: it is accepted only if the chain
 *   anchors keccak256 of exactly these bytes for the document's version and that version is newer than the
 *   held one. The body is read raw (any content type) up to MAX_DOCUMENT_BYTES.
 */
import type { FastifyInstance } from "fastify";

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
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser("*", { parseAs: "buffer", bodyLimit: MAX_DOCUMENT_BYTES }, (_request, body, done) =>
      done(null, body),
    );
    scope.post("/config/versions", { bodyLimit: MAX_DOCUMENT_BYTES }, async (request) => {
      const bytes = request.body;
      if (!Buffer.isBuffer(bytes)) throw nodeError("EDGE_NODE_CONFIG_INVALID", "the body must be the document's bytes");
      return upload(source, bytes);
    });
  });
}

async function upload(source: ConfigRoutesSource, bytes: Buffer): Promise<{ version: number; hash: string }> {
  const { store, anchor, authority } = source;
  const document = parseDocument(bytes);
  if (typeof document === "string") throw nodeError("EDGE_NODE_CONFIG_INVALID", document);
  const held = store.latest()?.version ?? 0;
  if (document.version <= held)
    throw nodeError("EDGE_NODE_CONFIG_STALE", `version ${document.version} is not newer than the held ${held}`);
  if (!anchor) throw nodeError("EDGE_NODE_CONFIG_UNAVAILABLE", "the deployment has no ConfigRegistry");
  const anchored = await anchor.hashOf(document.version).catch((error: unknown) => {
    throw nodeError("EDGE_NODE_CONFIG_UNAVAILABLE", `ConfigRegistry could not be read: ${messageOf(error)}`);
  });
  const hash = documentHash(bytes);
  if (anchored !== hash)
    throw nodeError(
      "EDGE_NODE_CONFIG_NOT_ANCHORED",
      anchored === undefined
        ? `ConfigRegistry anchors no version ${document.version}`
        : `ConfigRegistry anchors ${anchored} for version ${document.version}, not this document's ${hash}`,
    );
  const version: StoredVersion = { version: document.version, hash, bytes, document };
  // Checked again: another upload may have landed while the chain was read.
  if (document.version <= (store.latest()?.version ?? 0))
    throw nodeError("EDGE_NODE_CONFIG_STALE", `version ${document.version} is not newer than the held one`);
  if (authority) await authority.adopt(version);
  else store.putVersion(version);
  return { version: document.version, hash };
}
