/**
 * Form validation: each helper reads a field's draft, checks it before anything is sent, and shows what is
 * wrong next to the field (re-rendering the page) or clears the field's error. They return the value, or
 * undefined when the field is wrong.
 */
import type { Address, Hex } from "viem";

import { ConsentFormatError, parseSignedConsent } from "../../offchain/common/consent";
import { AmountFormatError, formatTokens, parseTokenAmount } from "./format";
import { draft, render, state } from "./state";
import { ADDRESS_PATTERN } from "../../offchain/common/protocol/patterns";

/** Shows `message` next to field `key`, or clears the field's error when it is undefined. */
export function fieldError(key: string, message: string | undefined): void {
  if (message) state.fieldErrors.set(key, message);
  else state.fieldErrors.delete(key);
}

/** Shows `message` next to field `key` and redraws the page. */
function refuse(key: string, message: string): undefined {
  fieldError(key, message);
  render();
  return undefined;
}

export interface AmountLimits {
  allowZero?: boolean;
  max?: bigint;
  /** What the maximum is, e.g. "your wallet balance". */
  maxWhat?: string;
  min?: bigint;
  /** What the minimum is, e.g. "the host minimum". */
  minWhat?: string;
}

/** A token amount field: a well-formed amount within the limits. */
export function amountField(key: string, options: AmountLimits = {}): bigint | undefined {
  try {
    const amount = parseTokenAmount(draft(key), { allowZero: options.allowZero });
    if (options.min !== undefined && amount < options.min)
      throw new AmountFormatError(`at least ${formatTokens(options.min)} (${options.minWhat})`);
    if (options.max !== undefined && amount > options.max)
      throw new AmountFormatError(`${options.maxWhat} is ${formatTokens(options.max)}`);
    fieldError(key, undefined);
    return amount;
  } catch (error) {
    return refuse(key, (error as Error).message);
  }
}

/** An address field naming someone other than the connected account (a referrer). */
export function otherAddressField(key: string): Address | undefined {
  const value = draft(key).trim();
  if (!ADDRESS_PATTERN.test(value)) return refuse(key, "enter an address: 0x followed by 40 hex digits");
  if (value.toLowerCase() === state.account!.toLowerCase())
    return refuse(key, "you cannot name yourself as your referrer");
  fieldError(key, undefined);
  return value as Address;
}

/** A device consent as StakeManager takes it. */
export interface DeviceConsent {
  device: Address;
  deadline: bigint;
  signature: Hex;
}

/**
 * A pasted device consent: its JSON's shape (parseSignedConsent), then the chain's checks (for this wallet, not
 * expired, the device's current nonce, signed by the device). `ok` is false when the field is wrong; an empty
 * optional field is ok with no consent.
 */
export async function consentField(
  key: string,
  optional = false,
): Promise<{ consent: DeviceConsent | undefined; ok: boolean }> {
  const text = draft(key).trim();
  if (text === "" && optional) {
    fieldError(key, undefined);
    return { consent: undefined, ok: true };
  }
  let consent;
  try {
    if (text === "")
      throw new ConsentFormatError("paste the device's consent (the JSON from stake:consent or edge-node)");
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new ConsentFormatError("the consent is not valid JSON: paste it exactly as the operator gave it");
    }
    consent = parseSignedConsent(json);
  } catch (error) {
    refuse(key, (error as Error).message);
    return { consent: undefined, ok: false };
  }
  const problem = await state.chain!.checkConsent(consent);
  if (problem) {
    refuse(key, problem);
    return { consent: undefined, ok: false };
  }
  fieldError(key, undefined);
  return {
    consent: {
      device: consent.device as Address,
      deadline: BigInt(consent.deadline),
      signature: consent.signature as Hex,
    },
    ok: true,
  };
}
