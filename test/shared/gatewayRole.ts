/** A whole gateway role for tests: scripts/lib/gatewayRole.ts (the blocklist benchmark uses it too). */
export { type GatewayRole, startGatewayRole } from "../../scripts/lib/gatewayRole";
