/**
 * The check every receiver of signed node messages makes after the signature: the sender is bound to a stake of
 * its kind that the (confirmed) chain view admits now.
 */
import type { ChainView } from "../chainView";
import { StakeType } from "../stakeMap";

export type SenderStanding = "admitted" | "not_staked" | "not_admitted";

export function senderStanding(view: ChainView, device: string, kind: StakeType): SenderStanding {
  const stake = view.map.stakeOfDevice(device);
  if (!stake || stake.stakeType !== kind || stake.phase === "released") return "not_staked";
  return view.map.isAdmitted(device) ? "admitted" : "not_admitted";
}

/** "gateway", "stargate", "host": the kind's name in messages. */
export const stakeKindName = (kind: StakeType): string => StakeType[kind].toLowerCase();
