/**
 * The signed-request check of every write, lease and certificate read (D64): a gateway's EIP-712 CertRequest in
 * the three CERT_HEADERS, over the action, its subject (a token or a domain) and the body's hash. Cheapest first:
 * the headers' shape -> the timestamp within CERT_REQUEST_WINDOW_MS of now -> the replay guard reserves the digest
 * (synchronously, before any await, so concurrent copies see one reservation; a re-encoded signature of the same
 * message signs the same digest) -> the signature (canonical, recovering the claimed device) -> the chain view
 * admits the device as a gateway. A refusal after the reservation releases it: nothing was served, and a request
 * refused that way (a forged signature over someone else's message, a gateway not yet admitted) must not keep the
 * real one out.
 */
import type { Hex } from "viem";

import type { ChainView } from "../common/chainView";
import { ReplayGuard } from "../common/replayGuard";
import { checkSignature, messageDigest } from "../common/protocol/eip712";
import { CERT_HEADERS, CERT_REQUEST_WINDOW_MS, type CertAction, certRequestMessage } from "../common/protocol/certs";
import { senderStanding } from "../common/service/admittedSender";
import { StakeType } from "../common/stakeMap";
import { certsError } from "./errors";

/** A request that passed: its device (lower case), the signed digest and the signature (to seal replies to). */
export interface SignedRequest {
  device: string;
  digest: Hex;
  signature: Hex;
}

const DEVICE = /^0x[0-9a-fA-F]{40}$/;
const TIMESTAMP = /^[0-9]{1,16}$/;
const SIGNATURE = /^0x[0-9a-fA-F]{130}$/;

/** Signed requests remembered at once (each until its timestamp leaves the window); past it, 503. */
export const MAX_REMEMBERED_REQUESTS = 200_000;

export interface AuthOptions {
  chainId: number;
  view: Pick<ChainView, "map">;
  now: () => number;
  capacity?: number;
}

type Headers = Record<string, string | string[] | undefined>;

export class RequestAuth {
  private readonly seen: ReplayGuard;

  constructor(private readonly options: AuthOptions) {
    this.seen = new ReplayGuard(options.capacity ?? MAX_REMEMBERED_REQUESTS, options.now);
  }

  /** Digests held by the replay guard now. */
  get remembered(): number {
    return this.seen.size;
  }

  /** Passes a gateway's signed request for `action` on `subject` with `body` (undefined: none), or throws. */
  async check(headers: Headers, action: CertAction, subject: string, body: unknown): Promise<SignedRequest> {
    const { chainId, view, now } = this.options;
    const device = headers[CERT_HEADERS.device];
    const stamp = headers[CERT_HEADERS.timestamp];
    const signature = headers[CERT_HEADERS.signature];
    if (typeof device !== "string" || !DEVICE.test(device))
      throw certsError("CERTS_BAD_HEADERS", `${CERT_HEADERS.device} must be the gateway's device address`);
    if (typeof stamp !== "string" || !TIMESTAMP.test(stamp))
      throw certsError("CERTS_BAD_HEADERS", `${CERT_HEADERS.timestamp} must be unix milliseconds`);
    if (typeof signature !== "string" || !SIGNATURE.test(signature))
      throw certsError("CERTS_BAD_HEADERS", `${CERT_HEADERS.signature} must be a 65-byte hex signature`);
    const timestamp = Number(stamp);
    const skew = timestamp - now();
    if (Math.abs(skew) > CERT_REQUEST_WINDOW_MS)
      throw certsError("CERTS_REQUEST_EXPIRED", `the request's timestamp is ${Math.round(skew / 1000)} s from now`, {
        details: { windowMs: CERT_REQUEST_WINDOW_MS },
      });
    const message = certRequestMessage(device, action, subject, body ?? null, timestamp);
    const digest = messageDigest(chainId, "CertRequest", message);
    if (digest === undefined) throw certsError("CERTS_BAD_HEADERS", "the signed request does not encode");
    const reservation = this.seen.reserve(digest, timestamp + CERT_REQUEST_WINDOW_MS);
    if (reservation === "seen") throw certsError("CERTS_REPLAYED", "this signed request was taken already");
    if (reservation === "full")
      throw certsError("CERTS_REPLAY_FULL", "too many signed requests held for replay checks: retry shortly");
    try {
      const checked = await checkSignature(chainId, "CertRequest", message, signature as Hex, device);
      if (!checked.ok) throw certsError("CERTS_BAD_SIGNATURE", checked.message);
      const standing = senderStanding(view as ChainView, device, StakeType.Gateway);
      if (standing === "not_staked") throw certsError("CERTS_SENDER_NOT_STAKED", `${device} holds no gateway stake`);
      if (standing === "not_admitted")
        throw certsError("CERTS_SENDER_NOT_ADMITTED", `${device}'s gateway stake is not admitted`);
    } catch (error) {
      this.seen.release(digest);
      throw error;
    }
    return { device: device.toLowerCase(), digest, signature: signature as Hex };
  }
}
