/**
 * A customer's client for gateway jobs: signs the JobRequest (EIP-712) for a body and posts it. Used by the
 * devnet's customers and by tests; any wallet that can sign typed data can do the same.
 */
import type { Address, Hex, LocalAccount } from "viem";

import { jobBodyHash, signMessage } from "./messages";

export interface JobRequestBody {
  payload: string;
  rounds: number;
}

export interface SignedJobRequest {
  headers: Record<string, string>;
  body: JobRequestBody;
}

export async function signJobRequest(
  account: LocalAccount,
  chainId: number,
  gateway: Address,
  body: JobRequestBody,
  timestamp = BigInt(Math.floor(Date.now() / 1000)),
): Promise<SignedJobRequest> {
  const signature = await signMessage(account, chainId, "JobRequest", {
    customer: account.address,
    gateway,
    bodyHash: jobBodyHash(body),
    timestamp,
  });
  return {
    body,
    headers: {
      "content-type": "application/json",
      "x-edge-customer": account.address,
      "x-edge-timestamp": timestamp.toString(),
      "x-edge-signature": signature,
    },
  };
}

export interface JobResult {
  status: number;
  body: { jobId?: string; host?: string; result?: Hex; error?: string; code?: string };
}

/** Signs and submits a job to a gateway; returns the HTTP status and the parsed answer. */
export async function submitJob(
  gatewayUrl: string,
  account: LocalAccount,
  chainId: number,
  gateway: Address,
  body: JobRequestBody,
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
