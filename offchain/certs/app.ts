/**
 * The certificate service's HTTP app: the services' shared app (offchain/common/http: strict schemas, one error
 * shape, /health, /metrics, /docs/json) with the certificate routes, every 4xx counted by code
 * (edge_cert_requests_refused_total). The service creates it through ChainService; tests may create it with
 * createServiceApp and use `app.inject`.
 */
import type { FastifyBaseLogger } from "fastify";

import type { ServiceAppOptions } from "../common/http";
import type { CertsMetrics } from "./metrics";
import { type CertsRouteDeps, certsRoutes } from "./routes";

export interface CertsAppParts {
  routes: CertsRouteDeps;
  metrics: Pick<CertsMetrics, "refused">;
}

/** The options of createServiceApp (less the log level and registry); `parts` is read when the app is readied. */
export function certsAppOptions(
  parts: () => CertsAppParts,
  logger?: FastifyBaseLogger,
): Omit<ServiceAppOptions, "logLevel" | "registry"> {
  const onRejected = (_route: string, code: string) => parts().metrics.refused.inc({ code });
  return {
    name: "certs",
    codePrefix: "CERTS",
    logger,
    openapi: {
      title: "Edge Network certificate service",
      description:
        "ACME HTTP-01 challenge responses for every gateway, one order lease per domain, and issued certificates whose keys are sealed to admitted gateways.",
    },
    onRejected,
    routes: (app) => certsRoutes(parts().routes, { codePrefix: "CERTS", onRejected })(app),
  };
}
