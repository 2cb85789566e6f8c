/** Job reports whose entries carry each host's own signed tally (F11), as a gateway sends them. */
import type { PrivateKeyAccount } from "viem/accounts";

import { type JobReportBody, signHostTally, signJobReport } from "../../../offchain/common/protocol";

export interface AttestedEntry {
  host: PrivateKeyAccount;
  jobs: bigint;
  /** The host's count; defaults to `jobs` (an honest host). */
  attested?: bigint;
}

export async function signAttestedReport(
  gateway: PrivateKeyAccount,
  chainId: number,
  epoch: bigint,
  sequence: bigint,
  entries: readonly AttestedEntry[],
): Promise<JobReportBody> {
  const tallied = await Promise.all(
    entries.map(async ({ host, jobs, attested }) => {
      const tally = await signHostTally(host, chainId, {
        gateway: gateway.address,
        epoch,
        jobs: attested ?? jobs,
        sequence: sequence,
      });
      return { host: host.address, jobs, attested: BigInt(tally.jobs), tallySeq: sequence, tallySig: tally.signature };
    }),
  );
  return signJobReport(gateway, chainId, epoch, sequence, tallied);
}
