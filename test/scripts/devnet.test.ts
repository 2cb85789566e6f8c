import { expect } from "chai";
import { spawn } from "node:child_process";
import { join } from "node:path";

import { pebbleInstalled } from "../../scripts/lib/pebble";

const ROOT = join(__dirname, "..", "..");

/**
 * The devnet end to end, shortened (6 hosts, the fewest it takes: 2 epochs of 8 s): `npm start` itself checks the
 * promises and exits non-zero on any broken one (scores posted for every epoch, the unstaked host evicted and
 * sent no job after, yield accrued and claimed exactly, every bill settled with the hash and charge the billing
 * service serves to its customer, the referral credit, the customer who ran out refused with 402 (D43), tokens
 * conserved over every holder; and content delivery, issue 16: Newton's requests for the demo site through both
 * gateways' front doors all answered 200, the host with twice the capacity scoring above its peer on its gateway
 * in every epoch, the site owner's bill carrying cdn lines equal to what the gateways served; and HTTPS, issue 19:
 * every gateway serving the site over HTTPS with one certificate Pebble issued through the certificate service;
 * and dynamic placement, issue 20: a DE client of the dynamic site sent to the US gateway while the DE one is
 * loaded, and back after the hold; and Edge Storage, issue 21: customer A's object, k = 1 of n = 2 at the devnet's
 * scale, put through the gateway with 3 hosts, got back equal and listed; a host holding a fragment stopped and
 * the fragment rebuilt on the gateway's third host, the list healthy again and the object got back again; billing's
 * open period carrying exactly the step's storage requests and byte-hours within what the object accrued).
 * Here: it exits 0, says so, and leaves no process behind.
 */
describe("devnet (npm start, end to end)", function () {
  this.timeout(600_000);

  it("runs the whole network, checks its promises and exits 0", async function () {
    const child = spawn(
      process.execPath,
      [
        "-r",
        "ts-node/register/transpile-only",
        "scripts/devnet/run.ts",
        "--hosts",
        "6",
        "--epochs",
        "2",
        "--epoch-seconds",
        "8",
      ],
      { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"], detached: true },
    );
    let output = "";
    child.stdout!.on("data", (chunk) => (output += chunk));
    child.stderr!.on("data", (chunk) => (output += chunk));
    const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
    // Whatever happened, nothing it started may outlive it.
    try {
      process.kill(-child.pid!, "SIGKILL");
    } catch {
      // the group is gone: good
    }
    expect(code, output.slice(-3000)).to.equal(0);
    // A broken promise below shows the devnet's own account of the run (CI keeps nothing else of it).
    try {
      checkOutput(output);
    } catch (error) {
      (error as Error).message += `\n--- the devnet's output (last 8,000 characters) ---\n${output.slice(-8000)}`;
      throw error;
    }
  });
});

/** The promises the devnet's output must show. */
function checkOutput(output: string): void {
  expect(output).to.match(/host-1 evicted itself \d+ ms after its unstake and ran no job after/);
  expect(output).to.match(/billing period 0: 3 bills settled/);
  expect(output).to.match(/referral credit of customer A's referrer: [1-9]/);
  // D43: the gateways refuse C (402) once its 3-token deposit and the free buffer are used up.
  expect(output).to.match(
    /customer C refused \(402\) once its 3-token deposit was used up: \d+ jobs served, [1-9]\d* refused/,
  );
  expect(output).to.match(/tokens conserved: \d+ holders hold exactly the supply; billing's bills match the chain/);
  expect(output).to.match(/yield claimed for host-2's stake: 0\.\d*[1-9]/);
  expect(output).to.include(
    "every stake's accrued yield equals the formula applied to its published scores, to the base unit",
  );
  // The live view showed scores and accrued yield per node, and usage and bills per customer.
  expect(output).to.match(/devnet live view: epoch \d+ running; last posted epoch \d+/);
  expect(output).to.match(/accrued yield/);
  expect(output).to.match(/usage p\d+/);
  expect(output).to.match(/devnet: console http:\/\/127\.0\.0\.1:\d+/);
  // Dynamic placement between the two simulated regions (issue 20, D71): spill under load, and return after it.
  expect(output).to.match(
    /dynamic placement: fast\.edge\.test answered DE's clients with gateway-1 \(127\.0\.0\.11\) and US's with gateway-2 \(127\.0\.0\.12\); 48 requests in flight at gateway-1 spilled DE's clients to gateway-2 after \d+ ms \(gateway-1's queue \d+; US's clients not moved\), and they returned \d+ ms after the load stopped/,
  );
  // Edge Storage (issue 21, D75): put, get, list, a host stopped and its fragment rebuilt, get, the storage lines.
  expect(output).to.match(
    /Edge Storage: customer A put a 1000000-byte object through gateway-\d \(3 linked hosts\) as k = 1 of n = 2 .* stored as 2000032 bytes, fragment 0 on host-\d, fragment 1 on host-\d/,
  );
  expect(output).to.match(/Edge Storage: got it back from gateway-\d in \d+ ms: 1000000 bytes, equal to those put/);
  expect(output).to.match(
    /Edge Storage: gateway-\d lists customer A's 0x[0-9a-f]{8}…: 1000000 bytes, 2000032 stored, 2 of 2 fragments healthy/,
  );
  expect(output).to.match(
    /Edge Storage repair: host-\d \(holding fragment 0\) stopped; gateway-\d unlinked it after \d+ ms and its list showed 1 of 2 fragments healthy/,
  );
  expect(output).to.match(
    /Edge Storage repair: gateway-\d rebuilt fragment 0 on host-\d \(now holding 1000016 bytes\) \d+ ms after the stop .*: its list shows 2 of 2 fragments healthy again/,
  );
  expect(output).to.match(
    /Edge Storage: got it back after the repair from gateway-\d in \d+ ms: 1000000 bytes, equal to those put/,
  );
  const storage =
    /Edge Storage billing: customer A's storage lines in billing periods? [\d, ]+ .*: requests (\d+), exactly the step's successful requests \(1 put, 2 gets, (\d+) lists\); byteHours (\d+) \(2000032 bytes stored: at least (\d+),/.exec(
      output,
    );
  expect(storage, "the storage lines in billing").to.not.equal(null);
  expect(Number(storage![1])).to.equal(3 + Number(storage![2]));
  expect(Number(storage![3])).to.be.at.least(Math.max(1, Number(storage![4])));
  // Content delivery (issue 16): Newton through both front doors, per gateway and path, with its figures.
  expect(output).to.match(/newton: demo\.edge\.test through both front doors for \d+ s/);
  expect(output).to.match(/content delivery: demo\.edge\.test through 2 gateways and 6 hosts/);
  for (const gateway of ["gateway-1", "gateway-2"])
    for (const paths of ["/static/ \\(cached\\)", "/live/ \\(no-store\\)"])
      expect(output).to.match(
        new RegExp(`'${gateway}'.*'${paths}'.*'200: \\d+'.* 0 .*'[\\d.]+ / [\\d.]+'.*'[\\d.]+ / [\\d.]+'`),
      );
  // Scores measure speed: host-2 (capacity 8) above host-4 (capacity 4), its peer on gateway-1, every epoch.
  expect(output).to.match(
    /epoch 0: host-2 \(capacity 8\): score \d+ = \d+\.\d\dx its peers' mean on gateway-1 \(host-4/,
  );
  expect(output).to.match(/epoch 1: host-2 \(capacity 8\): score \d+ = \d+\.\d\dx its peers' mean/);
  expect(output).to.match(/host-2's accrued yield [\d.]+ = \d+\.\d\dx its peers' mean .*: the faster host earns more/);
  expect(output).to.match(
    /customer A's bill for period 0: cdn requests [1-9]\d* \([\d.]+ tokens\), cdn egressBytes [1-9]\d* .*together exactly what the gateways served/,
  );
  // Traces (D47): two requests' paths from the spans the gateway and the host exported, one to the origin.
  expect(output).to.match(
    /gateway-1 "gateway site request" [\d.]+ ms: site demo, job \S+, queue wait [\d.]+ ms, host host-\d \(attempt 1\), status 200, cache miss, 2048 bytes/,
  );
  expect(output).to.match(/host-\d "host site job" [\d.]+ ms: cache miss, status 200/);
  expect(output).to.match(/origin: GET \/live\/traced-\d+ with traceparent 00-[0-9a-f]{32}-[0-9a-f]{16}-01/);
  expect(output).to.match(/host-\d "host site job" [\d.]+ ms: cache hit, status 200/);
  // Edge DNS (issue 18): dig at the stargate names only the serving gateways, a drained one drops out and returns.
  expect(output).to.match(
    /Edge DNS: dig @127\.0\.0\.1 -p \d+ demo\.edge\.test -> 127\.0\.0\.11, 127\.0\.0\.12; gateway-2 drained through the Network API -> 127\.0\.0\.11 after \d+ ms; undrained -> 127\.0\.0\.11, 127\.0\.0\.12/,
  );
  expect(output).to.match(/customer A's zone customer-a\.test: www\.customer-a\.test A NOERROR 192\.0\.2\.10;/);
  expect(output).to.match(/missing\.customer-a\.test A NXDOMAIN; example\.org A REFUSED/);
  expect(output).to.match(/customer A's dns queries billed: 4 \(the stargate's answers to its zone/);
  // HTTPS (issue 19, D67): each gateway serves the site over HTTPS, verified by curl against Pebble's root only;
  // the certificate service exports the certificate's days to expiry. Without pebble the devnet says HTTPS is off.
  if (!pebbleInstalled()) {
    expect(output).to.match(/devnet: HTTPS off: pebble is not installed/);
    return;
  }
  for (const [gateway, ip] of [
    ["gateway-1", "127.0.0.11"],
    ["gateway-2", "127.0.0.12"],
  ])
    expect(output).to.match(
      new RegExp(
        `HTTPS: curl --cacert \\S+pebble-root\\.pem --resolve demo\\.edge\\.test:(\\d+):${ip.replace(/\./g, "\\.")} ` +
          `https://demo\\.edge\\.test:\\1/static/1k -> 200 \\(${gateway}, after`,
      ),
    );
  const issued =
    /HTTPS: one certificate for demo\.edge\.test at every gateway .*edge_cert_days_to_expiry\{domain="demo\.edge\.test"\} \d+\.\d\d, orders issued (\d+)/.exec(
      output,
    );
  expect(issued, "the certificate service's orders issued").to.not.equal(null);
  // Both gateways order each site's certificate (demo.edge.test, and fast.edge.test of the spill step); the
  // service's lease lets one order of each win: at most one issued order per site, placed by either gateway.
  expect(Number(issued![1])).to.be.within(1, 2);
  const answered =
    /ordered by gateway-\d(?:, gateway-\d)?, challenge answered by gateway-1 (\d+), gateway-2 (\d+)/.exec(output);
  expect(answered, "the ordering gateways and the challenge requests each gateway answered").to.not.equal(null);
  expect(Number(answered![1]) + Number(answered![2])).to.be.greaterThan(0);
  expect(output).to.match(/HTTPS at every gateway/);
  expect(output).to.match(
    /gateway-1 https:\/\/demo\.edge\.test:\d+\/ at 127\.0\.0\.11: 200 verified against Pebble's root/,
  );
  expect(output).to.match(
    /gateway-2 https:\/\/demo\.edge\.test:\d+\/ at 127\.0\.0\.12: 200 verified against Pebble's root/,
  );
}
