/** A gateway's signed count of the jobs each host returned in an epoch, POSTed to the oracle's /reports. */
import { type Static, Type } from "@fastify/type-provider-typebox";
import type { Hex, LocalAccount } from "viem";

import { isSignedBy, signMessage } from "./eip712";
import { type JobReportEntry, jobEntriesHash } from "./hashes";
import { AddressSchema, SignatureSchema, SmallDecimalSchema, Uint256DecimalSchema } from "./primitives";

/** At most this many hosts in one report (a gateway with more splits nothing: it is far above any peer group). */
export const MAX_REPORT_ENTRIES = 20_000;

export const JobReportBodySchema = Type.Object(
  {
    gateway: AddressSchema,
    epoch: SmallDecimalSchema,
    sequence: SmallDecimalSchema,
    entries: Type.Array(
      Type.Object(
        {
          host: AddressSchema,
          jobs: Uint256DecimalSchema,
          // The host's latest tally for this gateway and epoch (hostTally.ts), all three fields or none.
          attested: Type.Optional(Uint256DecimalSchema),
          tallySeq: Type.Optional(SmallDecimalSchema),
          tallySig: Type.Optional(SignatureSchema),
        },
        { additionalProperties: false },
      ),
      { maxItems: MAX_REPORT_ENTRIES },
    ),
    signature: SignatureSchema,
  },
  { additionalProperties: false },
);
/**
 * Decimal strings: job counts can exceed 2^53. The highest sequence of an epoch wins. An entry's `attested`,
 * `tallySeq` and `tallySig` are the host's own signed tally (host, this gateway, this epoch, attested, tallySeq).
 */
export type JobReportBody = Static<typeof JobReportBodySchema>;

export const ReportReplySchema = Type.Object({ status: Type.String() });

/** Signs a gateway's report of `entries` for `epoch` and returns the body the oracle takes. */
export async function signJobReport(
  account: Pick<LocalAccount, "address" | "signTypedData">,
  chainId: number,
  epoch: bigint,
  sequence: bigint,
  entries: readonly JobReportEntry[],
): Promise<JobReportBody> {
  const entriesHash = jobEntriesHash(entries);
  const signature = await signMessage(account, chainId, "JobReport", {
    gateway: account.address,
    epoch,
    sequence,
    entriesHash,
  });
  return {
    gateway: account.address,
    epoch: epoch.toString(),
    sequence: sequence.toString(),
    entries: entries.map((e) =>
      e.attested === undefined || e.tallySeq === undefined || e.tallySig === undefined
        ? { host: e.host, jobs: e.jobs.toString() }
        : {
            host: e.host,
            jobs: e.jobs.toString(),
            attested: e.attested.toString(),
            tallySeq: e.tallySeq.toString(),
            tallySig: e.tallySig,
          },
    ),
    signature,
  };
}

/**
 * Whether the report is signed by the gateway it names, and the hash of its entries (which the signature
 * covers). A job count above 2^256 - 1 throws a RangeError: it could not have been signed.
 */
export async function verifyJobReport(
  chainId: number,
  body: JobReportBody,
): Promise<{ signed: boolean; entriesHash: Hex }> {
  const entriesHash = jobEntriesHash(body.entries);
  const message = {
    gateway: body.gateway as Hex,
    epoch: BigInt(body.epoch),
    sequence: BigInt(body.sequence),
    entriesHash,
  };
  return { signed: await isSignedBy(chainId, "JobReport", message, body.signature as Hex, body.gateway), entriesHash };
}
