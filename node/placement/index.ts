/** Placement (issue 20, D69): policy checks, the host index by region and country, the spill state machine, decisions. */
export * from "./policy";
export * from "./heap";
export * from "./hostIndex";
export * from "./spill";
export * from "./engine";
