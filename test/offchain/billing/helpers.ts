/** The billing tests' deployed protocol, services and signed usage: scripts/lib/billingFixture.ts, shared with its benchmark. */
export * from "../../../scripts/lib/billingFixture";
