/**
 * A customer's client for gateway jobs: signs the JobRequest (offchain/common/protocol) for a body and posts it.
 * Used by the devnet's customers and by tests; any wallet that can sign typed data can do the same.
 */
import type { Address, LocalAccount } from "viem";

import { type ClientJobBody, type ClientJobReply, signJobRequest } from "./protocol";

export interface JobResult {
  status: number;
  body: Partial<ClientJobReply> & { error?: string; code?: string };
}

/** Signs and submits a job to a gateway; returns the HTTP status and the parsed answer. */
export async function submitJob(
  gatewayUrl: string,
  account: LocalAccount,
  chainId: number,
  gateway: Address,
  body: ClientJobBody,
  timeoutMs = 15_000,
): Promise<JobResult> {
  const request = await signJobRequest(account, chainId, gateway, body);
  const response = await fetch(`${gatewayUrl.replace(/\/$/, "")}/jobs`, {
    method: "POST",
    headers: request.headers,
    body: JSON.stringify(request.body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  return { status: response.status, body: (await response.json().catch(() => ({}))) as JobResult["body"] };
}
