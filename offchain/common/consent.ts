/**
 * The device key's consent to be assigned to a stake (EIP-712 `DeviceConsent` of StakeManager). Shared by the
 * stake tasks, the edge-node daemon and the console so all three produce the same signature.
 */
import { errorClass } from "./errors";
import { ADDRESS_PATTERN, SIGNATURE_PATTERN } from "./protocol/patterns";

export const DEVICE_CONSENT_TYPES = {
  DeviceConsent: [
    { name: "device", type: "address" },
    { name: "owner", type: "address" },
    { name: "nonce", type: "uint256" },
    { name: "deadline", type: "uint256" },
  ],
};

export interface DeviceConsentMessage {
  device: string;
  owner: string;
  nonce: bigint;
  deadline: bigint;
}

/** What a device operator hands to the stake owner: enough to call assignDevice / stakeAndAssign. */
export interface SignedDeviceConsent {
  device: string;
  owner: string;
  nonce: string;
  deadline: string;
  signature: string;
}

export const ConsentFormatError = errorClass("ConsentFormatError", "CONSENT_FORMAT_INVALID");
export type ConsentFormatError = InstanceType<typeof ConsentFormatError>;

/** Parses a consent as printed by `stake:consent` or `edge-node consent`, with a message naming the bad field. */
export function parseSignedConsent(raw: unknown): SignedDeviceConsent {
  if (typeof raw !== "object" || raw === null) throw new ConsentFormatError("the consent is not a JSON object");
  const c = raw as Record<string, unknown>;
  const check = (field: keyof SignedDeviceConsent, pattern: RegExp, what: string) => {
    if (typeof c[field] !== "string" || !pattern.test(c[field] as string)) {
      throw new ConsentFormatError(`consent.${field} must be ${what}`);
    }
  };
  check("device", ADDRESS_PATTERN, "an address");
  check("owner", ADDRESS_PATTERN, "an address");
  check("nonce", /^\d+$/, "a decimal integer string");
  check("deadline", /^\d+$/, "a decimal integer string (unix seconds)");
  check("signature", SIGNATURE_PATTERN, "a 65-byte hex signature");
  return c as unknown as SignedDeviceConsent;
}
