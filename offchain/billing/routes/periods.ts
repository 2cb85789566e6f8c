/** Public, without customer data: the closed periods and their settlement. */
import type { TypedApp } from "../../common/http";
import { billingError } from "../errors";
import type { BillingStore } from "../store";
import { periodSummary } from "../summaries";
import { PeriodParams } from "./schemas";

export function periodRoutes(app: TypedApp, store: BillingStore): void {
  app.get("/periods", { schema: { summary: "Closed periods and their settlement status" } }, async () => ({
    periods: store.periods().map((p) => periodSummary(store, p.period)),
  }));

  app.get(
    "/periods/:period",
    { schema: { summary: "A closed period: bill counts and totals (no customer data)", params: PeriodParams } },
    async (request) => {
      const { period } = request.params;
      if (!store.period(period)) throw billingError("BILLING_NOT_FOUND", `period ${period} is not closed`);
      return periodSummary(store, period);
    },
  );
}
