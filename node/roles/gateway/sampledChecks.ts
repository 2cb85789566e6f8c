/**
 * Sampled content checks at the front door (F9 for the CDN; D46, D49, D50): a sampled response, hashed as it
 * streamed to the client, is compared in the background with the origin's (contentCheck.ts); a mismatch is a
 * strike against the host that served it, and strikes on 2 URLs within an hour ban it (hosts.ts). One check per
 * site at a time (R13): a site's slow URLs cannot starve the checks of other sites.
 */
import type http2 from "node:http2";

import type { CdnMetrics } from "./cdnMetrics";
import type { ContentChecker } from "./contentCheck";
import type { HostRegistry } from "./hosts";
import type { Site } from "./sites";

export interface ServedResponse {
  host: string;
  status: number;
  cache: string;
  sha256?: string;
  etag?: string;
  modified?: string;
}

export class SampledChecks {
  /** Sites with a check in flight. */
  private readonly checking = new Set<string>();

  constructor(
    private readonly checker: Pick<ContentChecker, "check">,
    private readonly hosts: Pick<HostRegistry, "strike">,
    private readonly metrics: Pick<CdnMetrics, "checks">,
  ) {}

  /** Checks `served` (the answer to `path` of `site`, sent with `headers` to the host) against the origin. */
  check(site: Site, path: string, headers: http2.OutgoingHttpHeaders, served: ServedResponse, bytes: number): void {
    const forwarded: Record<string, string> = {};
    for (const [name, value] of Object.entries(headers))
      if (!name.startsWith(":") && !name.startsWith("x-edge-") && value !== undefined) forwarded[name] = String(value);
    const url = site.origin + path;
    if (this.checking.has(site.id)) return void this.metrics.checks.inc({ outcome: "skipped" });
    this.checking.add(site.id);
    void this.checker
      .check({
        url,
        headers: forwarded,
        status: served.status,
        etag: served.etag,
        lastModified: served.modified,
        cache: served.cache,
        sha256: served.sha256!,
        bytes,
      })
      .then((verdict) => {
        this.metrics.checks.inc({ outcome: verdict.outcome });
        if (verdict.outcome !== "mismatch") return;
        const jobId = String(headers["x-edge-job"]);
        this.hosts.strike(served.host, { at: Date.now(), jobId, reason: `wrong content: ${verdict.reason}`, url });
      })
      .finally(() => this.checking.delete(site.id));
  }
}
