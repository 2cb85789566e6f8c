/**
 * Billing's HTTP app: the services' shared app (offchain/common/http: strict schemas, one error shape, /health,
 * /metrics, /docs/json) with billing's routes, its OpenAPI title and bearer scheme, and refused usage batches
 * counted by code. The service creates it through ChainService; tests create it with createServiceApp and use
 * `app.inject`.
 */
import type { FastifyBaseLogger } from "fastify";

import type { ServiceAppOptions } from "../common/http";
import type { BillingMetrics } from "./metrics";
import { type BillingRouteDeps, billingRoutes } from "./routes";

export interface BillingAppParts {
  routes: BillingRouteDeps;
  metrics: Pick<BillingMetrics, "batches">;
}

/**
 * The options of createServiceApp (less the log level and registry, which the caller owns). `parts` is called
 * when the app is readied and when a request is refused, so it may name what is built after the app.
 */
export function billingAppOptions(
  parts: () => BillingAppParts,
  logger?: FastifyBaseLogger,
): Omit<ServiceAppOptions, "logLevel" | "registry"> {
  return {
    name: "billing",
    codePrefix: "BILLING",
    logger,
    openapi: {
      title: "Edge Network billing",
      description: "Signed usage in; itemised bills, settled on-chain, out to the customers they belong to.",
      bearer: true,
    },
    onRejected: (route, code) => {
      if (route === "/usage") parts().metrics.batches.inc({ outcome: `rejected_${code.toLowerCase()}` });
    },
    routes: (app) => billingRoutes(parts().routes)(app),
  };
}
