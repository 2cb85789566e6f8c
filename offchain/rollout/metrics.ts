/**
 * The rollout's Prometheus metrics (docs/rollout.md): edge_rollout_nodes{state} (pending, running, done, failed)
 * and edge_rollout_step_seconds{step} (a histogram of each step's duration), served on --metrics-port at /metrics.
 */
import { createServer, type Server } from "node:http";
import { Gauge, Histogram, Registry } from "prom-client";

export const NODE_STATES = ["pending", "running", "done", "failed"] as const;
export type NodeState = (typeof NODE_STATES)[number];

export class RolloutMetrics {
  readonly registry = new Registry();
  private readonly nodes = new Gauge({
    name: "edge_rollout_nodes",
    help: "Nodes of the rollout by state (pending, running, done, failed)",
    labelNames: ["state"],
    registers: [this.registry],
  });
  private readonly steps = new Histogram({
    name: "edge_rollout_step_seconds",
    help: "How long each rollout step took, by step",
    labelNames: ["step"],
    buckets: [0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600],
    registers: [this.registry],
  });

  /** Sets the count of nodes in each state. */
  setNodes(counts: Record<NodeState, number>): void {
    for (const state of NODE_STATES) this.nodes.set({ state }, counts[state]);
  }

  step(step: string, seconds: number): void {
    this.steps.observe({ step }, seconds);
  }

  /** Serves /metrics on 127.0.0.1:port (0: any); resolves with the port. */
  async serve(port: number, host = "127.0.0.1"): Promise<{ port: number; close(): Promise<void> }> {
    const server: Server = createServer((request, response) => {
      if (request.url !== "/metrics") return void response.writeHead(404).end("not found\n");
      this.registry.metrics().then(
        (text) => response.writeHead(200, { "content-type": this.registry.contentType }).end(text),
        (error: Error) => response.writeHead(500).end(error.message),
      );
    });
    await new Promise<void>((resolve, reject) => server.once("error", reject).listen(port, host, resolve));
    const bound = (server.address() as { port: number }).port;
    return { port: bound, close: () => new Promise((resolve) => server.close(() => resolve())) };
  }
}
