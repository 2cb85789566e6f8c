/**
 * The Network API's routes (D56, docs/control-plane.md "Network API"); the decisions are in api.ts and the token
 * checks in node/tokens.ts. Every route but the logins needs a bearer token, checked with the client's address
 * (failed checks are limited per client, R17-11); writes and password logins answer what the authority (or the peer
 * they were forwarded to) answered.
 */
import { Type } from "@fastify/type-provider-typebox";

import type { TypedApp } from "../../../offchain/common/http";
import { AddressSchema, SignatureSchema } from "../../../offchain/common/protocol";
import { IpRangeSchema, PathRuleSchema } from "../../../offchain/common/protocol/netConfig";
import type { DeltaOp, TokenClaims } from "../../../offchain/common/protocol";
import { clientKey } from "../../../offchain/common/tokenBucket";
import type { NetworkApi, SiteInput, WriteOp } from "./api";
import { registerNodeApiRoutes } from "./apiNodes";
import { registerRegionApiRoutes } from "./apiRegions";
import { registerZoneApiRoutes } from "./apiZones";
import { MAX_PASSWORD_LENGTH, USER_NAME_PATTERN } from "./users";

const LoginBody = Type.Object(
  {
    name: Type.String({ pattern: USER_NAME_PATTERN }),
    password: Type.String({ minLength: 1, maxLength: MAX_PASSWORD_LENGTH }),
  },
  { additionalProperties: false },
);
const WalletLoginBody = Type.Object(
  { message: Type.String({ minLength: 1, maxLength: 4096 }), signature: SignatureSchema },
  { additionalProperties: false },
);
const NonceQuery = Type.Object({ address: AddressSchema }, { additionalProperties: false });
const RevokeBody = Type.Object(
  { id: Type.String({ pattern: "^0x[0-9a-fA-F]{64}$" }) },
  { additionalProperties: false },
);
const BlocklistBody = Type.Union([
  Type.Object({ ipRange: IpRangeSchema }, { additionalProperties: false }),
  Type.Object({ path: PathRuleSchema }, { additionalProperties: false }),
]);
const SiteParams = Type.Object({ id: Type.String({ pattern: "^[a-z0-9][a-z0-9-]{0,62}$" }) });
const SiteBody = Type.Object(
  {
    hostname: Type.String({ minLength: 1, maxLength: 253 }),
    origin: Type.String({ minLength: 1, maxLength: 2048 }),
    owner: Type.Optional(AddressSchema),
    cache: Type.Optional(
      Type.Object(
        {
          defaultTtlSeconds: Type.Optional(Type.Integer({ minimum: 0 })),
          maxObjectBytes: Type.Optional(Type.Integer({ minimum: 1 })),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

export function registerApiRoutes(app: TypedApp, api: NetworkApi): void {
  const verify = api.verifier;

  // Signed by the configuration key, or forwarded to a peer that has it (R17-1).
  app.post("/api/login", { schema: { body: LoginBody } }, async (request, reply) => {
    const answer = await api.passwordLogin(request, request.body.name, request.body.password);
    reply.code(answer.status);
    return answer.body;
  });
  // Rate-limited per client (its IPv4 address or IPv6 /64: clientKey), as billing's sign-in.
  app.get("/api/nonce", { schema: { querystring: NonceQuery } }, async (request) =>
    api.wallet.issueNonce(request.query.address, clientKey(request.ip)),
  );
  app.post("/api/login/wallet", { schema: { body: WalletLoginBody } }, async (request) =>
    api.walletLogin(request.body.message, request.body.signature as `0x${string}`),
  );
  app.get("/api/whoami", async (request) => {
    const claims = await verify.authenticate(request.headers.authorization, request.ip);
    return { ...claims, expiresAt: new Date(claims.expiresAt * 1000).toISOString() };
  });
  app.get("/api/sites", async (request) => {
    const claims = await verify.authenticate(request.headers.authorization, request.ip);
    return { sites: api.sitesOf(claims) };
  });

  /** Answers the write of `op` (through the authority or a peer). */
  const write = async (
    request: Parameters<typeof api.write>[0],
    reply: { code(n: number): unknown },
    claims: TokenClaims,
    op: WriteOp,
  ) => {
    const answer = await api.write(request, claims, op);
    reply.code(answer.status);
    return answer.body;
  };

  app.post("/api/tokens/revoke", { schema: { body: RevokeBody } }, async (request, reply) => {
    const claims = await verify.authenticate(request.headers.authorization, request.ip);
    return write(request, reply, claims, api.revocation(claims, request.body.id.toLowerCase()));
  });
  app.post("/api/blocklist", { schema: { body: BlocklistBody } }, async (request, reply) => {
    const claims = await verify.verify(request.headers.authorization, "blocklist:write", request.ip);
    return write(request, reply, claims, { kind: "blocklist.add", ...request.body } as DeltaOp);
  });
  app.delete("/api/blocklist", { schema: { body: BlocklistBody } }, async (request, reply) => {
    const claims = await verify.verify(request.headers.authorization, "blocklist:write", request.ip);
    return write(request, reply, claims, { kind: "blocklist.remove", ...request.body } as DeltaOp);
  });
  app.put("/api/sites/:id", { schema: { params: SiteParams, body: SiteBody } }, async (request, reply) => {
    const claims = await verify.authenticate(request.headers.authorization, request.ip);
    return write(request, reply, claims, api.sitePut(claims, request.params.id, request.body as SiteInput));
  });
  app.delete("/api/sites/:id", { schema: { params: SiteParams } }, async (request, reply) => {
    const claims = await verify.authenticate(request.headers.authorization, request.ip);
    return write(request, reply, claims, api.siteRemove(claims, request.params.id));
  });
  registerNodeApiRoutes(app, api, write);
  registerZoneApiRoutes(app, api, write);
  registerRegionApiRoutes(app, api);
}
