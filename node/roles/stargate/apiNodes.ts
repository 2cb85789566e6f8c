/**
 * The Network API's node routes (D59): POST /api/nodes/:device/drain takes a gateway or stargate out of DNS answers
 * (a `node.drain` delta: the device joins the configuration's `draining` list, which the DNS server leaves out of
 * site answers) and DELETE puts it back (`node.undrain`). Scope node:drain; through the authority or forwarded to a
 * peer like every write. A drain needs the device admitted as a gateway or a stargate now (else 404
 * EDGE_NODE_UNKNOWN_DEVICE): a typo would otherwise sit in the configuration draining nothing. An undrain is taken for
 * any device in the draining list, admitted or not (R18-14: a device evicted while drained can still be taken out).
 * A drain that would leave no serving gateway (admitted, healthy in this stargate's catalogue, not draining) is 409
 * EDGE_NODE_LAST_GATEWAY unless `?force=true`: every site would answer SERVFAIL (R18-14).
 */
import { Type } from "@fastify/type-provider-typebox";
import type { FastifyRequest } from "fastify";
import type { Address } from "viem";

import type { TypedApp } from "../../../offchain/common/http";
import { AddressSchema, type NetworkConfig, type TokenClaims } from "../../../offchain/common/protocol";
import { StakeType } from "../../../offchain/common/stakeMap";
import type { Catalogue } from "../../context";
import { nodeError } from "../../errors";
import type { NetworkApi, WriteOp } from "./api";

const NodeParams = Type.Object({ device: AddressSchema }, { additionalProperties: false });
const DrainQuery = Type.Object(
  { force: Type.Optional(Type.Union([Type.Literal("true"), Type.Literal("false")])) },
  { additionalProperties: false },
);

export interface DrainSeams {
  chainAdmits: (device: Address, type: StakeType) => boolean;
  /** The stargate's catalogue of endpoints (only admitted devices); undefined before its first health round. */
  catalogue: () => Catalogue | undefined;
}

/** The delta that drains (or undrains) `device`, checked against the configuration in force under the lock. */
export function drainOp(seams: DrainSeams, device: Address, drain: boolean, force = false): WriteOp {
  const lower = device.toLowerCase() as Address;
  const admitted = seams.chainAdmits(device, StakeType.Gateway) || seams.chainAdmits(device, StakeType.Stargate);
  if (drain && !admitted)
    throw nodeError("EDGE_NODE_UNKNOWN_DEVICE", `${device} is not admitted as a gateway or a stargate`);
  return (current) => {
    const draining = (current.draining ?? []).map((d) => d.toLowerCase());
    if (!drain) {
      if (!admitted && !draining.includes(lower))
        throw nodeError("EDGE_NODE_UNKNOWN_DEVICE", `${device} is neither draining nor admitted`);
      return { kind: "node.undrain", device: lower };
    }
    if (!force) checkServing(seams.catalogue(), current, draining, lower);
    return { kind: "node.drain", device: lower };
  };
}

/** 409 when `device` is the last serving gateway (admitted, healthy, not draining) of `catalogue`. */
function checkServing(
  catalogue: Catalogue | undefined,
  current: NetworkConfig,
  draining: readonly string[],
  device: string,
): void {
  const serving = (catalogue?.endpoints ?? []).filter(
    (e) => e.role === "gateway" && e.healthy && !draining.includes(e.device.toLowerCase()),
  );
  if (serving.length === 1 && serving[0].device.toLowerCase() === device)
    throw nodeError(
      "EDGE_NODE_LAST_GATEWAY",
      `${device} is the last serving gateway: draining it makes every site answer SERVFAIL (version ${current.version}); add ?force=true to drain it anyway`,
    );
}

export function registerNodeApiRoutes(
  app: TypedApp,
  api: NetworkApi,
  write: (
    request: FastifyRequest,
    reply: { code(n: number): unknown },
    claims: TokenClaims,
    op: WriteOp,
  ) => Promise<unknown>,
): void {
  for (const [method, drain] of [
    ["POST", true],
    ["DELETE", false],
  ] as const)
    app.route({
      method,
      url: "/api/nodes/:device/drain",
      schema: { params: NodeParams, querystring: DrainQuery },
      handler: async (request, reply) => {
        const claims = await api.verifier.verify(request.headers.authorization, "node:drain", request.ip);
        const { device } = request.params as { device: Address };
        const force = (request.query as { force?: string }).force === "true";
        return write(request, reply, claims, drainOp(api, device, drain, force));
      },
    });
}
