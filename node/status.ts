/**
 * The daemon's /status answer: the device, role and declared region (D68; null when undeclared), the admission
 * decision and its reason, the stake, the chain view's sync state, work in flight, the outbox, and the role's own
 * figures under the role's name.
 */
import type { Address } from "viem";

import type { ChainView } from "../offchain/common/chainView";
import { stakeKindName } from "../offchain/common/service/admittedSender";
import type { AdmissionState } from "./admission";
import type { LoadReport } from "./loadReport";
import type { Region } from "../offchain/common/protocol";
import type { Role } from "./config";

export interface StatusSources {
  device: Address;
  role: Role;
  region?: Region;
  chainId: number;
  confirmations: number;
  admission: Readonly<AdmissionState>;
  serving: boolean;
  draining: boolean;
  stale: boolean;
  view: Pick<ChainView, "map" | "status">;
  inFlight: number;
  outboxPending: number;
  load: LoadReport;
  roleStatus: Record<string, unknown>;
}

export function nodeStatus(s: StatusSources): Record<string, unknown> {
  const view = s.view.status();
  const stake = s.view.map.stakeOfDevice(s.device);
  const minimum = stake ? s.view.map.minimum(stake.stakeType) : undefined;
  return {
    device: s.device,
    role: s.role,
    region: s.region ?? null,
    chainId: s.chainId,
    admitted: s.admission.admitted,
    serving: s.serving,
    reason: s.admission.reason,
    admissionChangedAt: s.admission.changedAt,
    draining: s.draining,
    stake: stake
      ? {
          stakeId: stake.stakeId.toString(),
          type: stakeKindName(stake.stakeType),
          amount: stake.amount.toString(),
          phase: stake.phase,
          minimumStake: minimum?.toString() ?? null,
        }
      : null,
    sync: {
      head: view.head?.toString() ?? null,
      cursor: view.cursor?.number.toString() ?? null,
      lag: view.lag?.toString() ?? null,
      stalenessMs: view.stalenessMs,
      stale: s.stale,
      synced: view.synced,
      confirmations: s.confirmations,
      reorgs: view.reorgs,
      consecutiveErrors: view.consecutiveErrors,
      lastError: view.lastError,
    },
    inFlight: s.inFlight,
    outboxPending: s.outboxPending,
    load: s.load,
    [s.role]: s.roleStatus,
  };
}
