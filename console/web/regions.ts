/**
 * The map of regions (issue 20): per region, the hosts and gateways the chain admits, their average posted score,
 * the APR a new stake earns there and the capacity they use, best place for a new host first. Read from the
 * Console server's GET /api/regions (its own origin, as the CSP allows), so no wallet is needed to see it; read at
 * start, every REFRESH_MS while the page is open, and on "Refresh map".
 */
import type { LoadFigures, RegionFigures, RegionMap, RoleFigures } from "../regionsView";
import { button } from "./controls";
import { h } from "./dom";
import { formatBps } from "./format";
import { render, state } from "./state";

export const REFRESH_MS = 15_000;

/** Reads the map from the server into `state.regions` and redraws. */
export async function loadRegions(): Promise<void> {
  const regions = state.regions;
  if (regions.loading) return;
  regions.loading = true;
  render();
  try {
    const response = await fetch("api/regions", { cache: "no-store" });
    const body = (await response.json().catch(() => ({}))) as RegionMap & { code?: string; error?: string };
    if (response.ok) Object.assign(regions, { map: body, error: undefined, off: false });
    else if (body.code === "CONSOLE_REGIONS_NOT_CONFIGURED") Object.assign(regions, { map: undefined, off: true });
    else regions.error = body.error ?? `HTTP ${response.status}`;
  } catch (error) {
    regions.error = (error as Error).message;
  } finally {
    regions.loading = false;
    render();
  }
}

const rowId = (key: string) => `region-${key.replace(/[^A-Za-z0-9-]/g, "-")}`;
const scoreText = (f: RoleFigures) =>
  f.admitted === 0 ? "—" : f.averageScore === null ? "no scores yet" : formatBps(f.averageScore);
const aprText = (f: RoleFigures) => (f.aprBps === null ? "—" : formatBps(f.aprBps));

function loadText(load: LoadFigures, admitted: number): string {
  if (load.reporting === 0 || load.usedBps === null) return admitted === 0 ? "—" : "unknown";
  const partial = load.reporting < admitted ? `; ${load.reporting} of ${admitted} reporting` : "";
  return `${formatBps(load.usedBps)} (${load.inFlight} of ${load.capacity} in flight${partial})`;
}

function countText(f: RoleFigures): string {
  return f.admitted === 0 ? "0" : `${f.admitted} (${f.healthy} healthy)`;
}

function regionRow(r: RegionFigures): HTMLElement {
  const cell = (cls: string, text: string) => h("td", { class: cls }, text);
  return h(
    "tr",
    { id: rowId(r.key) },
    h("th", { scope: "row", class: "region-key" }, r.key),
    cell("host-count", countText(r.host)),
    cell("host-score", scoreText(r.host)),
    cell("host-apr", aprText(r.host)),
    cell("host-load", loadText(r.host.load, r.host.admitted)),
    cell("gateway-count", countText(r.gateway)),
    cell("gateway-score", scoreText(r.gateway)),
    cell("gateway-apr", aprText(r.gateway)),
    cell("gateway-load", loadText(r.gateway.load, r.gateway.admitted)),
  );
}

/** The sentence that answers "where would a new host earn most?". */
function bestSentence(map: RegionMap): string {
  const best = map.regions.find((r) => r.key !== "undeclared" && r.host.aprBps !== null);
  if (!best)
    return map.regions.length === 0
      ? "No admitted host or gateway is in the stargate's catalogue yet."
      : "No region's hosts have a posted score yet.";
  return `A new host would earn most in ${best.key}: ${formatBps(best.host.aprBps!)} APR at its hosts' average score (${formatBps(best.host.averageScore!)} of the peer average).`;
}

function mapTable(map: RegionMap): HTMLElement {
  const head = (text: string) => h("th", { scope: "col" }, text);
  return h(
    "div",
    { class: "table-scroll", tabindex: 0, role: "region", "aria-labelledby": "h-regions" },
    h(
      "table",
      { id: "region-table" },
      h("caption", {}, "Best place for a new host first"),
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ...[
            "Region",
            "Hosts",
            "Host score",
            "Host APR",
            "Host capacity used",
            "Gateways",
            "Gateway score",
            "Gateway APR",
            "Gateway capacity used",
          ].map(head),
        ),
      ),
      h("tbody", {}, ...map.regions.map(regionRow)),
    ),
  );
}

export function renderRegions(): HTMLElement {
  const regions = state.regions;
  const map = regions.map;
  let body: Array<HTMLElement | null>;
  if (regions.off)
    body = [
      h("p", { id: "regions-off" }, "This Console has no map of regions (it was started without a stargate URL)."),
    ];
  else if (!map)
    body = [
      regions.error
        ? h(
            "p",
            { class: "notice notice-error", role: "alert", id: "regions-error" },
            `The map is unavailable: ${regions.error}`,
          )
        : h("p", { role: "status" }, "Reading the map of regions…"),
    ];
  else
    body = [
      regions.error
        ? h(
            "p",
            { class: "notice notice-error", role: "alert", id: "regions-error" },
            `Not refreshed: ${regions.error}`,
          )
        : null,
      h("p", { id: "regions-best" }, bestSentence(map)),
      h(
        "p",
        { class: "hint", id: "regions-basis" },
        `Scores: epoch ${map.epoch ?? "— (none posted yet)"}, in % of the peer average. APR: what a new stake earns at the region's average score, before its tenure bonus. Capacity used: jobs in flight of the capacity reported by the stargates' health probe.`,
      ),
      map.regions.length ? mapTable(map) : null,
      map.truncated ? h("p", {}, `Showing ${map.regions.length} of ${map.regionCount} regions.`) : null,
    ];
  return h(
    "section",
    { "aria-labelledby": "h-regions", class: "card", id: "regions" },
    h("h2", { id: "h-regions" }, "Regions"),
    h(
      "p",
      { class: "hint" },
      "Where the network's admitted hosts and gateways run, what they score and earn, and how busy they are.",
    ),
    ...body,
    regions.off
      ? null
      : h(
          "div",
          { class: "actions" },
          button(regions.loading ? "Reading…" : "Refresh map", loadRegions, {
            id: "regions-refresh",
            disabled: regions.loading,
          }),
        ),
  );
}
