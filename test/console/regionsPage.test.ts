/**
 * The map of regions in a real browser (Debian's Chromium via playwright-core, as console.test.ts): the Console
 * started with a stargate URL shows the Regions section with no wallet connected, with the figures of a real chain
 * (admissions, posted scores) and the stargate's catalogue (regions, loads), best place for a new host first; it
 * keeps the last map and says why when a refresh fails. Screenshots go to test-output/console/.
 */
import { expect } from "chai";
import { join } from "node:path";
import { type Browser, type Page, chromium } from "playwright-core";

import { startConsole } from "../../console/server";
import { CHROMIUM, SHOTS, requireChromium } from "./browser";
import { type RegionsChain, type StandInStargate, json, regionsChain, standInStargate } from "./regionsFixture";

describe("Console (browser): the map of regions", function () {
  this.timeout(60_000);
  let chain: RegionsChain | undefined;
  let stargate: StandInStargate | undefined;
  let consoleServer: { url: string; close: () => Promise<void> } | undefined;
  let browser: Browser | undefined;
  let page: Page;
  const requests: string[] = [];

  const cells = (key: string) => page.locator(`#region-${key.replace(/[^A-Za-z0-9-]/g, "-")} > *`).allInnerTexts();

  before(async function () {
    requireChromium(this);
    chain = await regionsChain();
    stargate = await standInStargate(json(chain.catalogue));
    consoleServer = await startConsole({
      rpcUrl: chain.rpc.url,
      addressesFile: chain.bookFile,
      stargateUrl: stargate.url,
      port: 0,
      logLevel: "silent",
      regions: { ttlMs: 0, failureTtlMs: 0 },
    });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-sync"],
    });
    page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    page.on("request", (request) => requests.push(request.url()));
    await page.goto(consoleServer.url);
  });

  after(async () => {
    await browser?.close();
    await consoleServer?.close();
    await stargate?.close();
    await chain?.rpc.close();
  });

  it("shows the regions without a wallet, best place for a new host first, with real figures", async () => {
    await page.locator("#region-table").waitFor();
    expect(await page.locator("#account").count()).to.equal(0); // no wallet connected
    expect(await page.locator("#regions-best").innerText()).to.equal(
      "A new host would earn most in DE/eu-central: 10.50% APR at its hosts' average score (105.00% of the peer average).",
    );
    expect(await page.locator("#regions-basis").innerText()).to.contain(`Scores: epoch ${chain!.epoch}, in %`);
    const keys = await page.locator("#region-table tbody th").allInnerTexts();
    expect(keys).to.deep.equal(["DE/eu-central", "US/us-east", "undeclared"]);
    expect(await cells("DE/eu-central")).to.deep.equal([
      "DE/eu-central",
      "2 (1 healthy)",
      "105.00%",
      "10.50%",
      "25.00% (4 of 16 in flight)",
      "1 (1 healthy)",
      "100.00%",
      "15.00%",
      "unknown",
    ]);
    expect(await cells("US/us-east")).to.deep.equal([
      "US/us-east",
      "1 (1 healthy)",
      "80.00%",
      "8.00%",
      "unknown",
      "1 (1 healthy)",
      "140.00%",
      "21.00%",
      "unknown",
    ]);
    expect(await cells("undeclared")).to.deep.equal([
      "undeclared",
      "1 (1 healthy)",
      "100.00%",
      "10.00%",
      "unknown",
      "0",
      "—",
      "—",
      "—",
    ]);
    await page.locator("#regions").screenshot({ path: join(SHOTS, "12-regions.png") });
  });

  it("follows the catalogue on refresh, and keeps the last map saying why when the stargate fails", async () => {
    // host-de-2 now reports a full queue: DE's hosts use 11 of 16.
    const endpoints = chain!.catalogue.endpoints.map((e) =>
      (e as { url: string }).url.endsWith(".11:7001")
        ? { ...e, load: { inFlight: 8, capacity: 8, queueDepth: 5, p99Ms: 900 } }
        : e,
    );
    stargate!.answer = json({ ...chain!.catalogue, endpoints });
    await page.click("#regions-refresh");
    await page.locator("#region-DE-eu-central .host-load", { hasText: "68.75% (11 of 16 in flight)" }).waitFor();

    stargate!.answer = json({ error: "down for maintenance" }, 503);
    await page.click("#regions-refresh");
    await page.locator("#regions-error").waitFor();
    expect(await page.locator("#regions-error").innerText()).to.match(
      /^Not refreshed: cannot read the stargate's catalogue \(http:\/\/127\.0\.0\.1:\d+\/…\): answered 503$/,
    );
    expect(await page.locator("#region-table tbody tr").count()).to.equal(3); // the last map stays
    await page.locator("#regions").screenshot({ path: join(SHOTS, "13-regions-stargate-down.png") });
  });

  it("is readable at 360px (the table scrolls in its card) and fetched nothing but its own server", async () => {
    await page.setViewportSize({ width: 360, height: 800 });
    const overflow = await page.evaluate(() => {
      const window = globalThis as any;
      return window.document.documentElement.scrollWidth - window.innerWidth;
    });
    expect(overflow).to.be.at.most(0);
    await page.locator("#regions").screenshot({ path: join(SHOTS, "14-regions-360.png") });
    expect(requests.filter((url) => !url.startsWith(consoleServer!.url))).to.deep.equal([]);
    expect(requests.some((url) => url.endsWith("/api/regions"))).to.equal(true);
  });
});
