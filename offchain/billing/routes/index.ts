/** Billing's routes, registered on the service's typed app in the order the OpenAPI docs list them. */
import type { TypedApp } from "../../common/http";
import type { IngestDeps } from "../ingest";
import { authRoutes } from "./auth";
import { type CustomerRouteDeps, customerRoutes } from "./customers";
import { periodRoutes } from "./periods";
import { usageRoutes } from "./usage";

export interface BillingRouteDeps extends CustomerRouteDeps {
  ingest: IngestDeps;
}

export function billingRoutes(deps: BillingRouteDeps): (app: TypedApp) => void {
  return (app) => {
    usageRoutes(app, deps.ingest);
    authRoutes(app, deps.signIn);
    customerRoutes(app, deps);
    periodRoutes(app, deps.store);
  };
}
