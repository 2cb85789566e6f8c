/**
 * The Network API's node routes (D59): POST /api/nodes/:device/drain takes a gateway or stargate out of DNS answers
 * (a `node.drain` delta: the device joins the configuration's `draining` list, which the DNS server leaves out of
 * site answers) and DELETE puts it back (`node.undrain`). Scope node:drain; through the authority or forwarded to a
 * peer like every write. The device must be admitted as a gateway or a stargate now (else 404
 * EDGE_NODE_UNKNOWN_DEVICE): a typo would otherwise sit in the configuration draining nothing.
 */
import { Type } from "@fastify/type-provider-typebox";
import type { FastifyRequest } from "fastify";
import type { Address } from "viem";

import type { TypedApp } from "../../../offchain/common/http";
import { AddressSchema, type DeltaOp, type TokenClaims } from "../../../offchain/common/protocol";
import { StakeType } from "../../../offchain/common/stakeMap";
import { nodeError } from "../../errors";
import type { NetworkApi, WriteOp } from "./api";

const NodeParams = Type.Object({ device: AddressSchema }, { additionalProperties: false });

/** The delta that drains (or undrains) `device`, refused unless it is an admitted gateway or stargate. */
export function drainOp(
  chainAdmits: (device: Address, type: StakeType) => boolean,
  device: Address,
  drain: boolean,
): DeltaOp {
  if (!chainAdmits(device, StakeType.Gateway) && !chainAdmits(device, StakeType.Stargate))
    throw nodeError("EDGE_NODE_UNKNOWN_DEVICE", `${device} is not admitted as a gateway or a stargate`);
  return { kind: drain ? "node.drain" : "node.undrain", device: device.toLowerCase() as Address };
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
      schema: { params: NodeParams },
      handler: async (request, reply) => {
        const claims = await api.verifier.verify(request.headers.authorization, "node:drain", request.ip);
        const { device } = request.params as { device: Address };
        return write(request, reply, claims, drainOp(api.chainAdmits, device, drain));
      },
    });
}
