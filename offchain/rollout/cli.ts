/**
 * edge-rollout: rolls a plan's nodes one at a time (docs/rollout.md).
 *
 *   npm run -s rollout -- --plan plan.json [--metrics-port N] [--json]
 *
 * Credentials from the environment: EDGE_ROLLOUT_TOKEN (a Network API token with node:drain), or
 * EDGE_ROLLOUT_USER and EDGE_ROLLOUT_PASSWORD (a password login at the plan's api); EDGE_NODE_ADMIN_TOKEN for the
 * stargates' /admin/leave and /admin/join when there is no token. Each node's update is its plan's shell command
 * (with EDGE_ROLLOUT_NODE, EDGE_ROLLOUT_ROLE and EDGE_ROLLOUT_URL set, the credentials removed), which must exit 0;
 * it runs in its own process group, killed as a whole when its step times out.
 *
 * Progress goes to stderr, one line per step with its time; the summary (JSON) to stdout. Exit codes: 0 every
 * node updated, 1 a step failed (the rest untouched), 2 bad input (the plan, flags, credentials).
 */
import { spawn } from "node:child_process";

import { UsageError, parseFlags, readJson, runMain } from "../common/cli";
import { RolloutMetrics } from "./metrics";
import { type Plan, type PlanNode, parsePlan } from "./plan";
import { type ProgressEvent, type RolloutResult, login, rollout } from "./queue";

const USAGE = "usage: edge-rollout --plan plan.json [--metrics-port N] [--json]";
const HELP = `  --plan FILE         the plan (JSON): api, stargates, dns, site, nodes [{name, role, url, update}], quietMs, timeouts
  --metrics-port N    serve edge_rollout_nodes and edge_rollout_step_seconds on 127.0.0.1:N/metrics (0: any port)
  --json              the summary on one line
Credentials: EDGE_ROLLOUT_TOKEN, or EDGE_ROLLOUT_USER and EDGE_ROLLOUT_PASSWORD; EDGE_NODE_ADMIN_TOKEN for
stargates without a token. See docs/rollout.md.
`;

/** How long a killed update's process group has after SIGTERM before SIGKILL. */
export const KILL_GRACE_MS = 2_000;

/** Update commands' process groups still running (killed when edge-rollout itself is interrupted). */
const running = new Set<number>();

/**
 * The update command's environment (R18-7): this process's, less the rollout's credentials (every EDGE_ROLLOUT_*
 * variable, EDGE_NODE_ADMIN_TOKEN), plus the node's name, role and URL.
 */
export function updateEnv(node: PlanNode, env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const kept = Object.entries(env).filter(
    ([name]) => !/^EDGE_ROLLOUT_/i.test(name) && name !== "EDGE_NODE_ADMIN_TOKEN",
  );
  return {
    ...Object.fromEntries(kept),
    EDGE_ROLLOUT_NODE: node.name,
    EDGE_ROLLOUT_ROLE: node.role,
    EDGE_ROLLOUT_URL: node.url,
  };
}

/** SIGTERM to a process group, SIGKILL after KILL_GRACE_MS if any of it is left (R18-13). */
function killGroup(pgid: number): void {
  const signal = (sig: NodeJS.Signals) => {
    try {
      process.kill(-pgid, sig);
      return true;
    } catch {
      return false; // ESRCH: the group is gone
    }
  };
  if (!signal("SIGTERM")) return void running.delete(pgid);
  setTimeout(() => (signal("SIGKILL"), running.delete(pgid)), KILL_GRACE_MS);
}

/**
 * Runs the node's update command through the shell, detached in its own process group (R18-13): when the step times
 * out or is aborted the whole group is killed (the shell and whatever it started), not just /bin/sh. Rejects on a
 * non-zero exit or when aborted.
 */
export function shellUpdate(node: PlanNode, signal: AbortSignal, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  if (!node.update) return Promise.reject(new Error(`${node.name} has no update command in the plan`));
  if (signal.aborted) return Promise.reject(new Error("the update was aborted before it started"));
  return new Promise((resolve, reject) => {
    const child = spawn(node.update!, {
      shell: true,
      detached: true,
      stdio: ["ignore", "inherit", "inherit"],
      env: updateEnv(node, env),
    });
    const pgid = child.pid;
    if (pgid !== undefined) running.add(pgid);
    const abort = () => {
      if (pgid !== undefined) killGroup(pgid);
      reject(new Error("the update was aborted: its process group was killed"));
    };
    signal.addEventListener("abort", abort, { once: true });
    child.once("error", (error) => (signal.removeEventListener("abort", abort), reject(error)));
    child.once("exit", (code, sig) => {
      signal.removeEventListener("abort", abort);
      // A command that exits on its own may leave a daemon it started in the group: that one is not killed.
      if (pgid !== undefined && !signal.aborted) running.delete(pgid);
      if (code === 0) resolve();
      else reject(new Error(`the update command exited with ${code ?? sig}`));
    });
  });
}

/** Kills every running update's group, then exits (edge-rollout interrupted: the groups do not get the signal). */
function interrupted(sig: NodeJS.Signals): void {
  for (const pgid of running)
    try {
      process.kill(-pgid, "SIGKILL");
    } catch {
      // already gone
    }
  process.stderr.write(`edge-rollout: ${sig}: stopped; the node being updated is left as it is\n`);
  process.exit(sig === "SIGINT" ? 130 : 143);
}

/** One progress line: "[12:00:01] gw-1 (gateway) drain done in 120 ms". */
export function progressLine(e: ProgressEvent): string {
  const at = new Date().toISOString().slice(11, 19);
  const took = e.ms === undefined ? "" : ` in ${e.ms} ms`;
  return `[${at}] ${e.node} (${e.role}) ${e.step} ${e.phase}${took}${e.message ? `: ${e.message}` : ""}`;
}

async function credentials(plan: Plan, env: NodeJS.ProcessEnv): Promise<{ token?: string; adminToken?: string }> {
  const adminToken = env.EDGE_NODE_ADMIN_TOKEN || undefined;
  if (env.EDGE_ROLLOUT_TOKEN) return { token: env.EDGE_ROLLOUT_TOKEN, adminToken };
  if (env.EDGE_ROLLOUT_USER && env.EDGE_ROLLOUT_PASSWORD)
    return { token: await login(plan.api, env.EDGE_ROLLOUT_USER, env.EDGE_ROLLOUT_PASSWORD), adminToken };
  if (plan.nodes.some((n) => n.role === "gateway"))
    throw new UsageError("draining gateways needs EDGE_ROLLOUT_TOKEN, or EDGE_ROLLOUT_USER and EDGE_ROLLOUT_PASSWORD");
  if (!adminToken)
    throw new UsageError(
      "stargates need EDGE_ROLLOUT_TOKEN, EDGE_ROLLOUT_USER/EDGE_ROLLOUT_PASSWORD or EDGE_NODE_ADMIN_TOKEN",
    );
  return { adminToken };
}

export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  if (argv.includes("--help")) {
    process.stdout.write(`${USAGE}\n${HELP}`);
    return 0;
  }
  const flags = parseFlags(
    argv,
    { plan: { type: "string" }, "metrics-port": { type: "string" }, json: { type: "boolean", default: false } },
    USAGE,
  );
  if (!flags.plan) throw new UsageError(`--plan is required\n${USAGE}`);
  const port = flags["metrics-port"] === undefined ? undefined : Number(flags["metrics-port"]);
  if (port !== undefined && !(Number.isInteger(port) && port >= 0 && port < 65536))
    throw new UsageError(`--metrics-port must be a port number, not "${flags["metrics-port"]}"`);
  const plan = parsePlan(readJson(flags.plan, "the plan"));
  const missing = plan.nodes.filter((n) => !n.update).map((n) => n.name);
  if (missing.length > 0) throw new UsageError(`the plan's nodes need an "update" command: ${missing.join(", ")}`);
  const metrics = new RolloutMetrics();
  const server = port === undefined ? undefined : await metrics.serve(port);
  if (server) process.stderr.write(`metrics on http://127.0.0.1:${server.port}/metrics\n`);
  process.once("SIGINT", interrupted).once("SIGTERM", interrupted);
  try {
    const result: RolloutResult = await rollout(plan, {
      ...(await credentials(plan, env)),
      update: shellUpdate,
      metrics,
      progress: (e) => process.stderr.write(progressLine(e) + "\n"),
    });
    process.stdout.write(JSON.stringify(result, null, flags.json ? undefined : 2) + "\n");
    if (result.failure) {
      const untouched = result.nodes.filter((n) => n.state === "pending").map((n) => n.name);
      process.stderr.write(
        `edge-rollout: stopped: ${result.failure.node} failed at ${result.failure.step}: ${result.failure.message}\n` +
          `  untouched: ${untouched.length > 0 ? untouched.join(", ") : "none"}\n`,
      );
      return 1;
    }
    process.stderr.write(`edge-rollout: ${result.nodes.length} nodes updated in ${result.seconds.toFixed(1)} s\n`);
    return 0;
  } finally {
    process.off("SIGINT", interrupted).off("SIGTERM", interrupted);
    await server?.close();
  }
}

if (require.main === module) runMain("edge-rollout", (argv) => main(argv));
