/**
 * Checks a pasted device consent before anything is sent: for this wallet, not expired, for the device's current
 * nonce, and signed by the device for this chain and StakeManager.
 */
import { type Address, type Hex, recoverTypedDataAddress, zeroAddress } from "viem";

import { stakeManagerAbi } from "../../offchain/common/generated/abis";
import { DEVICE_CONSENT_TYPES, type SignedDeviceConsent } from "../../offchain/common/consent";
import { type ChainReader, eip712DomainOf } from "./chainReader";

/** A sentence for the consent field when the consent cannot be used, or undefined when it can. */
export async function checkConsent(reader: ChainReader, consent: SignedDeviceConsent): Promise<string | undefined> {
  const account = reader.account;
  if (consent.owner.toLowerCase() !== account.toLowerCase())
    return `This consent is for owner ${consent.owner}, not for your wallet ${account}: ask the operator to sign one for your address.`;
  const block = await reader.publicClient.getBlock({ blockTag: "latest" });
  if (BigInt(consent.deadline) < block.timestamp)
    return `This consent expired (its deadline has passed): ask the operator for a new one.`;
  const nonce = await reader.publicClient.readContract({
    address: reader.contracts.staking,
    abi: stakeManagerAbi,
    functionName: "deviceNonce",
    args: [consent.device as Address],
  });
  if (BigInt(consent.nonce) !== nonce)
    return `This consent was signed for the device's nonce ${consent.nonce}, but its current nonce is ${nonce}: ask the operator for a new one.`;
  const domain = await eip712DomainOf(reader, reader.contracts.staking, stakeManagerAbi);
  const signer = await recoverTypedDataAddress({
    domain,
    types: DEVICE_CONSENT_TYPES,
    primaryType: "DeviceConsent",
    message: {
      device: consent.device as Address,
      owner: consent.owner as Address,
      nonce: BigInt(consent.nonce),
      deadline: BigInt(consent.deadline),
    },
    signature: consent.signature as Hex,
  }).catch(() => zeroAddress);
  if (signer.toLowerCase() !== consent.device.toLowerCase())
    return `The signature is not the device's for this network and StakeManager: ask the operator for a new consent.`;
  return undefined;
}
