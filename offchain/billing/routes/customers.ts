/** A signed-in customer's own bills and current usage (behind its bearer token). */
import type { TypedApp } from "../../common/http";
import { billingError } from "../errors";
import type { SignIn } from "../signIn";
import type { BillingStore } from "../store";
import { type UsageDraftDeps, billSummary, usageDraft } from "../summaries";
import { BillParams, CustomerParams, customerSchema } from "./schemas";

export interface CustomerRouteDeps {
  store: BillingStore;
  signIn: SignIn;
  usage: UsageDraftDeps;
}

export function customerRoutes(app: TypedApp, { store, signIn, usage }: CustomerRouteDeps): void {
  app.get(
    "/customers/:customer/bills",
    { schema: customerSchema("The customer's bills, newest last, with their settlement", CustomerParams) },
    async (request) => {
      const { customer } = request.params;
      signIn.authorize(request.headers.authorization, customer);
      return { bills: store.customerBills(customer.toLowerCase()).map(billSummary) };
    },
  );

  app.get(
    "/customers/:customer/bills/:period",
    {
      schema: customerSchema("One bill: the itemised bill exactly as hashed, its hash and its settlement", BillParams),
    },
    async (request) => {
      const { customer, period } = request.params;
      signIn.authorize(request.headers.authorization, customer);
      const row = store.bill(period, customer.toLowerCase());
      if (!row) throw billingError("BILLING_NOT_FOUND", `no bill for ${customer} in period ${period}`);
      return { ...billSummary(row), bill: row.bill };
    },
  );

  app.get(
    "/customers/:customer/usage",
    {
      schema: customerSchema(
        "The customer's usage in the current period so far, priced as its bill would be",
        CustomerParams,
      ),
    },
    async (request) => {
      const { customer } = request.params;
      signIn.authorize(request.headers.authorization, customer);
      return usageDraft(usage, customer);
    },
  );
}
