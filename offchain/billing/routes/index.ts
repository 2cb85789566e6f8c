/** Billing's routes, registered on the service's typed app in the order the OpenAPI docs list them. */
import type { TypedApp } from "../../common/http";
import type { IngestDeps } from "../ingest";
import { authRoutes } from "./auth";
import { type CreditRouteDeps, creditRoutes } from "./credit";
import { type CustomerRouteDeps, customerRoutes } from "./customers";
import { periodRoutes } from "./periods";
import { usageRoutes } from "./usage";

export interface BillingRouteDeps extends CustomerRouteDeps {
  ingest: IngestDeps;
  /** Gateways' credit queries (absent: no /credit route). */
  credit?: CreditRouteDeps;
}

export function billingRoutes(deps: BillingRouteDeps): (app: TypedApp) => void {
  return (app) => {
    usageRoutes(app, deps.ingest);
    if (deps.credit) creditRoutes(app, deps.credit);
    authRoutes(app, deps.signIn);
    customerRoutes(app, deps);
    periodRoutes(app, deps.store);
  };
}
