/** The checks a job passes first, at the gateway's front door and again at the host. */
import { nodeError } from "../errors";

/** Refuses new work while the node does not serve (not admitted, draining or closing). */
export function assertServing(serving: boolean, role: "gateway" | "host"): void {
  if (!serving) throw nodeError("EDGE_NODE_NOT_SERVING", `this ${role} is not serving (not admitted or draining)`);
}

/** Refuses a job above the node's --max-job-rounds. */
export function assertJobSize(rounds: number, maxRounds: number): void {
  if (rounds > maxRounds) throw nodeError("EDGE_NODE_JOB_TOO_LARGE", `rounds ${rounds} exceeds ${maxRounds}`);
}
