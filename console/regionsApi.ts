/**
 * GET /api/regions: the map of regions (regionsView.ts) as JSON, for the page and for other tools. Public like the
 * rest of the Console (it shows only what the stargates' public catalogue and the chain already show), bounded
 * (at most MAX_REGIONS regions; the catalogue it is built from is capped in bytes and endpoints), and cheap under a
 * flood (regionSource.ts: one build at a time, cached).
 *
 * Answers: 200 with the map; 502 CONSOLE_STARGATE_UNAVAILABLE or CONSOLE_CHAIN_UNAVAILABLE with the reason; 503
 * CONSOLE_REGIONS_NOT_CONFIGURED when the Console was started without a stargate URL.
 */
import { type TSchema, Type } from "@fastify/type-provider-typebox";

import { errorClass } from "../offchain/common/errors";
import type { TypedApp } from "../offchain/common/http";
import type { RegionSource } from "./regionSource";

export const ConsoleRegionsOffError = errorClass("ConsoleRegionsOffError", "CONSOLE_REGIONS_NOT_CONFIGURED", 503);

const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

const LoadFiguresSchema = Type.Object({
  reporting: Type.Integer({ description: "Endpoints whose load is known (0: unknown)" }),
  inFlight: Type.Number(),
  capacity: Type.Number(),
  queueDepth: Type.Number(),
  usedBps: Nullable(Type.Integer({ description: "inFlight / capacity in basis points" })),
  maxP99Ms: Nullable(Type.Number()),
});

const RoleFiguresSchema = Type.Object({
  admitted: Type.Integer({ description: "Endpoints of this role the chain admits now" }),
  healthy: Type.Integer(),
  scored: Type.Integer({ description: "Admitted ones with a posted score in `epoch`" }),
  averageScore: Nullable(Type.Integer({ description: "Basis points of the peer average (10000 = average)" })),
  aprBps: Nullable(Type.Integer({ description: "APR of a new stake of this role at averageScore, no tenure" })),
  load: LoadFiguresSchema,
});

const RegionFiguresSchema = Type.Object({
  key: Type.String({ description: "COUNTRY/name, or undeclared" }),
  country: Type.Optional(Type.String()),
  region: Type.Optional(Type.String()),
  host: RoleFiguresSchema,
  gateway: RoleFiguresSchema,
});

export const RegionMapSchema = Type.Object({
  atMs: Type.Integer(),
  catalogueAtMs: Type.Integer(),
  epoch: Type.Union([Type.String({ description: "The latest scored epoch" }), Type.Null()]),
  regions: Type.Array(RegionFiguresSchema, { description: "Best first for a new host; undeclared last" }),
  regionCount: Type.Integer(),
  truncated: Type.Boolean(),
  totals: Type.Object({ host: RoleFiguresSchema, gateway: RoleFiguresSchema }),
});

const ErrorSchema = Type.Object({ statusCode: Type.Integer(), code: Type.String(), error: Type.String() });

export function registerRegionRoutes(app: TypedApp, source: RegionSource | undefined): void {
  app.get(
    "/api/regions",
    {
      schema: {
        description:
          "Per region: the hosts and gateways the chain admits, their average posted score, the APR a new stake earns there, and the capacity used.",
        response: { 200: RegionMapSchema, 502: ErrorSchema, 503: ErrorSchema },
      },
    },
    async (_request, reply) => {
      if (!source)
        throw new ConsoleRegionsOffError(
          "this Console was started without --stargate-url, so it has no map of regions",
        );
      const map = await source.map();
      reply.header("cache-control", "no-cache");
      return map;
    },
  );
}
