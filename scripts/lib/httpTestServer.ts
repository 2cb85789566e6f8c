/**
 * HTTP servers with known behaviour for Newton's tests and benchmark, run as their own process (so their event
 * loop never shares time with the load generator's):
 *
 *   fixed   every response after --delay ms (0: at once)
 *   stall   at once, except that every --period ms the server stalls for --stall ms: requests that arrive then
 *           are answered when the stall ends
 *   status  cycles through the codes given by --codes (e.g. 200,200,404,500)
 *   reset   destroys every connection on the first request
 *   hang    never answers
 *
 * Prints {"port": N} on its first line, then serves until killed.
 */
import { createServer } from "node:http";
import { type ChildProcess, spawn } from "node:child_process";
import { parseArgs } from "node:util";

function serve(argv: string[]): void {
  const { values } = parseArgs({
    args: argv,
    options: {
      mode: { type: "string" },
      delay: { type: "string", default: "0" },
      period: { type: "string", default: "1000" },
      stall: { type: "string", default: "200" },
      codes: { type: "string", default: "200" },
    },
  });
  const delay = Number(values.delay);
  const period = Number(values.period);
  const stall = Number(values.stall);
  const codes = values.codes!.split(",").map(Number);
  const start = performance.now();
  let count = 0;
  const body = "ok";
  const server = createServer((request, response) => {
    const answer = (code = 200) => {
      response.writeHead(code, { "content-type": "text/plain", "content-length": body.length });
      response.end(body);
    };
    request.resume();
    switch (values.mode) {
      case "fixed":
        // A plain timer: Node fires it 0-2 ms late, which shows in the measured p99 (autocannon sees the same
        // server's p99 at 58 ms); polling for an exact delay would spin a core the load generator needs.
        if (delay === 0) answer();
        else setTimeout(answer, delay);
        return;
      case "stall": {
        const into = (performance.now() - start) % period;
        if (into < stall) setTimeout(answer, stall - into);
        else answer();
        return;
      }
      case "status":
        answer(codes[count++ % codes.length]);
        return;
      case "reset":
        request.socket.destroy();
        return;
      case "hang":
        return;
      default:
        throw new Error(`unknown mode ${values.mode}`);
    }
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, "127.0.0.1", () => {
    process.stdout.write(JSON.stringify({ port: (server.address() as { port: number }).port }) + "\n");
  });
}

export interface TestServer {
  url: string;
  child: ChildProcess;
  close(): Promise<void>;
}

/** Starts a test server process in `mode`; resolves with its URL. */
export function startTestServer(mode: string, options: Record<string, string | number> = {}): Promise<TestServer> {
  const args = ["--mode", mode, ...Object.entries(options).flatMap(([k, v]) => [`--${k}`, String(v)])];
  const child = spawn(process.execPath, ["-r", "ts-node/register/transpile-only", __filename, ...args], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    child.stdout!.once("data", (chunk: Buffer) => {
      const { port } = JSON.parse(chunk.toString().split("\n")[0]);
      resolve({
        url: `http://127.0.0.1:${port}`,
        child,
        close: () =>
          new Promise<void>((done) => {
            child.once("exit", () => done());
            child.kill("SIGKILL");
          }),
      });
    });
    child.once("exit", (code) => reject(new Error(`test server exited with ${code}`)));
  });
}

if (require.main === module) serve(process.argv.slice(2));
