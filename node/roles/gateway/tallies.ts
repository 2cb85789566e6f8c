/**
 * Collecting hosts' tallies (F11, D40, D44): before each job report the gateway asks every linked host, over its
 * link, for its signed tally of the jobs it returned here in the current epoch and in the previous one (whose
 * final report may still be due), and keeps each that checks out (reports.ts `attest`). A host that does not
 * answer within the timeout keeps the tally it last gave.
 */
import type { EpochClock } from "../../../offchain/common/epochs";
import type { HostTallyBody } from "../../../offchain/common/protocol";
import { exchange } from "./dispatch";
import type { HostRegistry } from "./hosts";
import type { JobReports } from "./reports";

export async function collectTallies(
  hosts: Pick<HostRegistry, "routable">,
  reports: Pick<JobReports, "attest">,
  clock: Pick<EpochClock, "currentEpoch">,
  timeoutMs: number,
): Promise<{ asked: number; kept: number }> {
  const current = clock.currentEpoch();
  let asked = 0;
  let kept = 0;
  await Promise.all(
    hosts.routable().flatMap(([host, { link }]) =>
      [current - 1n, current].map(async (epoch) => {
        asked += 1;
        try {
          const headers = { ":method": "GET", ":path": "/tally", "x-edge-kind": "tally", "x-edge-epoch": `${epoch}` };
          const { status, body } = await exchange(link, headers, null, timeoutMs);
          if (status !== 200) return;
          if (reports.attest(host, JSON.parse(body.toString("utf8")) as HostTallyBody)) kept += 1;
        } catch {
          // no answer: the tally kept before stands
        }
      }),
    ),
  );
  return { asked, kept };
}
