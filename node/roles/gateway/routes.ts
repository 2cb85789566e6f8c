/** The gateway's HTTP routes: thin handlers over the protocol's schemas (offchain/common/protocol). */
import type { TypedApp } from "../../../offchain/common/http";
import {
  ClientJobBodySchema,
  ClientJobHeadersSchema,
  HostRegistrationBodySchema,
} from "../../../offchain/common/protocol";
import type { HostRegistry } from "./hosts";
import type { JobFrontDoor } from "./jobs";

export function registerGatewayRoutes(app: TypedApp, hosts: HostRegistry, jobs: JobFrontDoor): void {
  app.post("/hosts/register", { schema: { body: HostRegistrationBodySchema } }, (request) =>
    hosts.register(request.body),
  );

  app.get("/hosts", async () => ({
    hosts: hosts.routable().map(([host, entry]) => ({ host, url: entry.url, lastSeen: entry.lastSeen })),
  }));

  app.post("/jobs", { schema: { body: ClientJobBodySchema, headers: ClientJobHeadersSchema } }, (request) =>
    jobs.serve(request.headers, request.body),
  );
}
