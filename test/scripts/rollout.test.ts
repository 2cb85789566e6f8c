/**
 * The rollout under load (issue 18 Deliver 4, D60) on real daemons (scripts/lib/rolloutNet.ts): 2 stargates
 * answering DNS behind the anycast router, 2 gateways on 127.0.0.11/.12, 2 hosts, an origin; Newton loads the site
 * through DNS-resolved gateways while the rollout restarts every gateway and stargate in turn.
 */
import { expect } from "chai";
import { request } from "undici";

import { askA, rollUnderLoad } from "../../scripts/lib/rolloutLoad";
import { type RolloutNet, startRolloutNet, waitUntil } from "../../scripts/lib/rolloutNet";

describe("rollout under load (scripts/lib/rolloutNet.ts)", function () {
  this.timeout(600_000);
  let net: RolloutNet;

  before(async function () {
    net = await startRolloutNet();
  });

  after(async function () {
    await net?.close();
  });

  it("answers the site through the anycast router with both gateways, and each gateway's front door serves it", async function () {
    const both = ["127.0.0.11", "127.0.0.12"];
    await waitUntil("DNS naming both gateways", async () => {
      const answer = await askA(net.router.host, net.router.port, net.site);
      return answer?.rcode === "NOERROR" && answer.addresses.join() === both.join();
    });
    for (const ip of both) {
      await waitUntil(`the site at ${ip}`, async () => {
        const response = await request(`http://${ip}:${net.cdnPort}/probe`, { headers: { host: net.site } });
        await response.body.dump();
        return response.statusCode === 200;
      });
    }
    const members = net.router.members().map((m) => m.member);
    const stargates = net.nodes.filter((n) => n.role === "stargate").map((n) => n.address.toLowerCase());
    expect(members).to.have.members(stargates);
  });

  it("rolls every gateway and stargate (update = restart) under a constant load through DNS: no failed request, no drained gateway in DNS answers", async function () {
    const order = ["gateway-1", "gateway-2", "stargate-2", "stargate-1"];
    const result = await rollUnderLoad(net, { order, rate: 20, log: (line) => console.log(line) });
    console.log(
      `rollout ${result.rollout.seconds} s, per node ${JSON.stringify(result.nodeSeconds)}, ${result.requests} requests, ` +
        `${result.failedRequests} failed, latency before ${JSON.stringify(result.latency.before)} during ` +
        `${JSON.stringify(result.latency.during)}, ${result.dnsSamples} DNS samples; failed by step ` +
        JSON.stringify(result.failuresByStep) +
        `; DNS problems ${JSON.stringify(result.dnsProblems)}`,
    );
    expect(result.rollout.failure, JSON.stringify(result.rollout.failure)).to.equal(undefined);
    expect(result.rollout.ok).to.equal(true);
    expect(result.failuresByStep, "failed requests by step").to.deep.equal({});
    expect(result.requests).to.be.greaterThan(20 * 20);
    for (const name of order) expect(net.nodes.find((n) => n.name === name)!.starts, name).to.equal(2);
    expect(result.drainedAnswers, "DNS answers naming a drained gateway").to.deep.equal([]);
    // Both stargates answered the watcher's queries through the router, before and after their own restart.
    for (const s of net.nodes.filter((n) => n.role === "stargate"))
      expect(net.router.counts()[s.address.toLowerCase()].answers, s.name).to.be.greaterThan(0);
  });
});
