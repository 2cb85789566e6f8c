/**
 * config:* tasks: the network configuration's anchoring on ConfigRegistry and its upload to stargates (issue 17,
 * docs/control-plane.md "Anchoring", D52).
 *
 *   npx hardhat config:publish --file network.json [--stargates http://sg-1:8080,http://sg-2:8080]
 *   npx hardhat config:status [--stargates http://sg-1:8080,…] [--json]
 *
 * config:publish reads a NetworkConfig document, canonicalizes it (RFC 8785) and validates it, anchors keccak-256
 * of the canonical bytes for its version from the sender (which must hold PUBLISHER_ROLE), then uploads the
 * canonical bytes to each stargate's POST /config/versions. The version in the file must be the chain's latest + 1.
 * A failed upload is reported per stargate and leaves the anchoring as it is; running the same command again
 * skips the anchoring (the chain already names this document for this version) and retries the uploads.
 */
import { task } from "hardhat/config";
import type { HardhatRuntimeEnvironment } from "hardhat/types";

import type { ConfigRegistry } from "../../typechain";
import { STARGATE_TIMEOUT_MS, describeFetchError, parseStargates, readConfigFile, uploadTo } from "./configLib";
import { contractAt, fail, loadBook, send, sender } from "./lib";

async function registryOf(hre: HardhatRuntimeEnvironment, addresses?: string) {
  const book = await loadBook(hre, addresses);
  const signer = await sender(hre);
  const registry = await contractAt<ConfigRegistry>(hre, book, "ConfigRegistry", signer);
  return { signer, registry };
}

task("config:publish", "Anchors a NetworkConfig document's hash on ConfigRegistry and uploads it to stargates")
  .addParam("file", "the document (JSON; its version must be the chain's latest + 1)")
  .addOptionalParam("stargates", "stargate base URLs to upload to, comma-separated (http://host:port)")
  .addOptionalParam("addresses", "address book file")
  .setAction(async (args: { file: string; stargates?: string; addresses?: string }, hre) => {
    const stargates = parseStargates(args.stargates);
    const { document, bytes, hash } = readConfigFile(args.file);
    const { signer, registry } = await registryOf(hre, args.addresses);
    const [latestVersion, latestHash] = await registry.latest();
    const version = BigInt(document.version);
    if (version === latestVersion && hash === latestHash) {
      console.log(`version ${version} is already anchored with this document (${hash}): uploading only`);
    } else if (version === latestVersion) {
      fail(`version ${version} is already anchored with another document (${latestHash}, this one is ${hash})`);
    } else if (version !== latestVersion + 1n) {
      fail(
        `the document's version is ${version}, but the chain's latest is ${latestVersion}: ` +
          `the next version must be ${latestVersion + 1n}`,
      );
    } else {
      const from = await signer.getAddress();
      if (!(await registry.hasRole(await registry.PUBLISHER_ROLE(), from))) {
        fail(`${from} does not hold PUBLISHER_ROLE on ConfigRegistry ${await registry.getAddress()}`);
      }
      const receipt = await send("publish", [registry.interface], () => registry.publish(version, hash));
      console.log(`anchored version ${version} (${hash}) in ${receipt.hash}`);
    }
    if (stargates.length === 0) {
      console.log("no --stargates: upload the file to a stargate (POST /config/versions) for it to take effect");
      return;
    }
    const results = await Promise.all(stargates.map((stargate) => uploadTo(stargate, bytes)));
    printRows(
      ["stargate", "upload", "detail"],
      results.map((r) => [r.stargate, r.outcome, r.detail]),
    );
    const failed = results.filter((r) => r.outcome === "failed");
    if (failed.length > 0) {
      fail(
        `version ${version} is anchored, but ${failed.length} of ${results.length} stargate(s) did not take it ` +
          `(${failed.map((r) => r.stargate).join(", ")}): run the same command again to retry the uploads`,
      );
    }
  });

interface ConfigView {
  version: number;
  hash: string | null;
  seq: number;
  subscribers: Array<{ device: string; role: string; version: number; seq: number; connected: boolean; lastNack?: { version: number; reason: string } }>; // prettier-ignore
}

/** GET /config/view of one stargate, or the reason it could not be read. */
async function viewOf(stargate: string): Promise<ConfigView | string> {
  try {
    const response = await fetch(`${stargate}/config/view`, { signal: AbortSignal.timeout(STARGATE_TIMEOUT_MS) });
    if (!response.ok) return `HTTP ${response.status}`;
    const view = (await response.json()) as ConfigView;
    if (!Number.isSafeInteger(view?.version) || !Array.isArray(view.subscribers)) return "not a configuration view";
    return view;
  } catch (error) {
    return `unreachable: ${describeFetchError(error)}`;
  }
}

task("config:status", "Shows the chain's latest configuration version and, per stargate, who runs which version")
  .addOptionalParam("stargates", "stargate base URLs, comma-separated (http://host:port)")
  .addOptionalParam("addresses", "address book file")
  .addFlag("json", "print JSON")
  .setAction(async (args: { stargates?: string; addresses?: string; json: boolean }, hre) => {
    const stargates = parseStargates(args.stargates);
    const { registry } = await registryOf(hre, args.addresses);
    const [latestVersion, latestHash] = await registry.latest();
    const latest = Number(latestVersion);
    const views = await Promise.all(stargates.map(async (stargate) => ({ stargate, view: await viewOf(stargate) })));
    if (args.json) {
      const out = views.map(({ stargate, view }) =>
        typeof view === "string" ? { stargate, error: view } : { stargate, ...view },
      );
      console.log(JSON.stringify({ chain: { version: latest, hash: latestHash }, stargates: out }, null, 2));
      return;
    }
    console.log(`chain: version ${latest}${latest === 0 ? " (nothing published)" : ` ${latestHash}`}`);
    if (views.length === 0) return;
    printRows(
      ["stargate", "version", "seq", "subscribers", `on ${latest}`, "behind", "nacked", "note"],
      views.map(({ stargate, view }) => {
        if (typeof view === "string") return [stargate, "-", "-", "-", "-", "-", "-", view];
        const subs = view.subscribers;
        const note = view.version < latest ? "behind the chain" : view.version > latest ? "ahead of the chain?" : "";
        return [
          stargate,
          String(view.version),
          String(view.seq),
          String(subs.length),
          String(subs.filter((s) => s.version === latest).length),
          String(subs.filter((s) => s.version < latest).length),
          String(subs.filter((s) => s.lastNack !== undefined).length),
          note,
        ];
      }),
    );
    const rows = views.flatMap(({ stargate, view }) =>
      typeof view === "string"
        ? []
        : view.subscribers.map((s) => [
            stargate,
            s.device,
            s.role,
            String(s.version),
            String(s.seq),
            s.connected ? "yes" : "no",
            s.lastNack ? `v${s.lastNack.version}: ${s.lastNack.reason}` : "",
          ]),
    );
    if (rows.length > 0) {
      console.log("");
      printRows(["stargate", "device", "role", "version", "seq", "connected", "last nack"], rows);
    }
  });

/** C0 and C1 control characters and DEL: a stargate's view is not trusted to write terminal escapes (R17-10). */
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g;

/** Prints a table with columns padded to their widest cell; control characters in any cell are stripped. */
function printRows(header: string[], cells: string[][]): void {
  const rows = cells.map((row) => row.map((cell) => cell.replace(CONTROL, "")));
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]))
      .join("  ")
      .trimEnd();
  console.log(line(header));
  for (const row of rows) console.log(line(row));
}
