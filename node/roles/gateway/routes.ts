/**
 * The gateway's HTTP routes on its API port: thin handlers over the protocol's schemas
 * (offchain/common/protocol). Hosts connect their links with an upgrade at /hosts/connect (links.ts), which
 * fastify's routing never sees; sites' requests come to the front door's own port (cdn.ts).
 */
import type { TypedApp } from "../../../offchain/common/http";
import { ClientJobBodySchema, ClientJobHeadersSchema } from "../../../offchain/common/protocol";
import type { HostRegistry } from "./hosts";
import type { JobFrontDoor } from "./jobs";

export function registerGatewayRoutes(app: TypedApp, hosts: HostRegistry, jobs: JobFrontDoor): void {
  app.get("/hosts", async () => ({
    hosts: hosts.routable().map(([host, entry]) => ({
      host,
      url: entry.url,
      ...(entry.region ? { region: entry.region } : {}),
      since: entry.since,
      capacity: entry.link.capacity,
      inFlight: entry.link.inflight,
      jobsStarted: entry.link.started,
    })),
  }));

  app.post("/jobs", { schema: { body: ClientJobBodySchema, headers: ClientJobHeadersSchema } }, (request) =>
    jobs.serve(request.headers, request.body),
  );
}
