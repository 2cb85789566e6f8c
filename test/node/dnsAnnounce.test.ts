/**
 * Edge DNS serving group's signed calls (issue 18 review, D61, R18-9): the stargate's DNS server announces and
 * withdraws itself at the loopback anycast router with calls signed by its device key, and the router refuses
 * unsigned, foreign, stale and replayed calls and a member's move to another address before it withdraws.
 */
import { expect } from "chai";
import type { Hex } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";

import { type Announcement, announcementMessage } from "../../node/roles/stargate/dnsGroup";
import { type DnsServer, createDns } from "../../node/roles/stargate/dns";
import { type AnycastRouter, startAnycastRouter } from "../../scripts/lib/anycast";
import { catalogue, dnsConfig, dnsContext, networkConfig, query, udp } from "./dnsFixture";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function post(router: AnycastRouter, path: string, body: unknown): Promise<{ status: number; code?: string }> {
  const response = await fetch(`${router.url}${path}`, { method: "POST", body: JSON.stringify(body) });
  const json = (await response.json()) as { error?: { code: string } };
  return { status: response.status, code: json.error?.code };
}

describe("node/dns group's signed calls (issue 18 review, D61)", function () {
  this.timeout(30_000);
  let router: AnycastRouter;
  let server: DnsServer | undefined;
  beforeEach(async () => (router = await startAnycastRouter()));
  afterEach(async () => {
    await server?.stop();
    server = undefined;
    await router.close();
  });

  it("R18-9: the DNS server's announce and withdraw are signed with its device key and taken by the router", async () => {
    const ctx = dnsContext();
    const config = dnsConfig({ dnsAnnounce: router.url });
    server = createDns(ctx, config, { config: () => networkConfig(7), catalogue: () => catalogue(), bill: () => {} }, { announceRetryMs: 100 })!; // prettier-ignore
    await server.start();
    const member = ctx.signer.account.address.toLowerCase();
    for (let i = 0; i < 60 && router.members().length === 0; i++) await sleep(50);
    expect(router.members()).to.deep.equal([{ member, address: "127.0.0.1", port: server.address()!.port }]);
    const viaRouter = await udp(router.port, query("www.example.com", "A"));
    expect(viaRouter.rcode).to.equal("NOERROR");
    await server.leave();
    expect(router.members()).to.deep.equal([]);
    await server.join();
    expect(router.members()).to.have.length(1);
  });

  it("R18-9: the router refuses unsigned, foreign-signed, stale and replayed calls, and a move to another address until a withdrawal", async () => {
    const key = privateKeyToAccount(generatePrivateKey());
    const other = privateKeyToAccount(generatePrivateKey());
    const member = key.address.toLowerCase();
    let at = Date.now();
    const signed = async (a: Omit<Announcement, "at" | "member">, by = key, when = ++at, who = member) => {
      const body: Announcement = { ...a, member: who, at: when };
      return { ...body, signature: (await by.signMessage({ message: announcementMessage(body) })) as Hex };
    };
    const announce = { action: "announce" as const, address: "127.0.0.1", port: 5300 };
    expect(await post(router, "/announce", { member, address: "127.0.0.1", port: 5300 })).to.include({ status: 400 });
    expect(await post(router, "/announce", await signed(announce, other))).to.include({ status: 401, code: "BAD_SIGNATURE" }); // prettier-ignore
    expect(await post(router, "/announce", await signed(announce, key, Date.now() - 31_000))).to.include({ status: 401, code: "STALE" }); // prettier-ignore
    const first = await signed(announce);
    expect((await post(router, "/announce", first)).status).to.equal(200);
    expect(await post(router, "/announce", first)).to.include({ status: 409, code: "REPLAYED" });
    // A withdrawal by someone else, or the member's own replayed, is refused: the member stays.
    expect(await post(router, "/withdraw", await signed({ action: "withdraw" }, other, ++at, member))).to.include({ status: 401 }); // prettier-ignore
    const moved = await signed({ ...announce, address: "127.0.0.9" });
    expect(await post(router, "/announce", moved)).to.include({ status: 409, code: "ADDRESS_BOUND" });
    expect(router.members()).to.deep.equal([{ member, address: "127.0.0.1", port: 5300 }]);
    // Its own port may change (a restart) at the same address; after a withdrawal it may announce elsewhere.
    expect((await post(router, "/announce", await signed({ ...announce, port: 5301 }))).status).to.equal(200);
    const withdraw = await signed({ action: "withdraw" });
    expect((await post(router, "/withdraw", withdraw)).status).to.equal(200);
    expect(await post(router, "/withdraw", withdraw)).to.include({ status: 409, code: "REPLAYED" });
    expect((await post(router, "/announce", await signed({ ...announce, address: "127.0.0.9" }))).status).to.equal(200);
    expect(router.members()).to.deep.equal([{ member, address: "127.0.0.9", port: 5300 }]);
  });
});
