/**
 * The device -> stake -> admitted map, rebuilt from StakeManager events alone.
 *
 * Pure and library-agnostic: feed it decoded events in chain order (block, then log index) and ask who is
 * admitted. The node daemon's chain view, the oracle and billing build on it; tests check it against the
 * contract's own views.
 */

export enum StakeType {
  Host = 0,
  Gateway = 1,
  Stargate = 2,
}

export type Address = `0x${string}`;

/** A StakeManager event, decoded: the event name and its named arguments. */
export type StakeEvent =
  | { name: "StakeCreated"; args: { stakeId: bigint; owner: string; stakeType: number | bigint; amount: bigint } }
  | { name: "StakeIncreased"; args: { stakeId: bigint; amount: bigint; newAmount: bigint } }
  | { name: "StakeSlashed"; args: { stakeId: bigint; amount: bigint; newAmount: bigint } }
  | { name: "DeviceAssigned"; args: { stakeId: bigint; device: string } }
  | { name: "DeviceUnassigned"; args: { stakeId: bigint; device: string } }
  | { name: "UnstakeRequested"; args: { stakeId: bigint; unlockAt: bigint } }
  | { name: "UnstakeCancelled"; args: { stakeId: bigint } }
  | { name: "StakeReleased"; args: { stakeId: bigint } }
  | { name: "MinimumStakeSet"; args: { stakeType: number | bigint; minimumStake: bigint } };

/** The event names the map needs; anything else a reader sees can be skipped. */
export const STAKE_MAP_EVENTS: ReadonlySet<string> = new Set([
  "StakeCreated",
  "StakeIncreased",
  "StakeSlashed",
  "DeviceAssigned",
  "DeviceUnassigned",
  "UnstakeRequested",
  "UnstakeCancelled",
  "StakeReleased",
  "MinimumStakeSet",
]);

export type StakePhase = "active" | "unlocking" | "released";

export interface StakeRecord {
  stakeId: bigint;
  owner: Address;
  stakeType: StakeType;
  amount: bigint;
  phase: StakePhase;
  device: Address | null;
  unlockAt: bigint;
}

export interface DeviceAdmission {
  device: Address;
  stakeId: bigint;
  stakeType: StakeType;
  amount: bigint;
  admitted: boolean;
}

export class UnknownStakeError extends Error {
  constructor(
    readonly stakeId: bigint,
    readonly event: string,
  ) {
    super(`${event} for unknown stake ${stakeId}: events are missing or out of order`);
  }
}

const lower = (address: string): Address => address.toLowerCase() as Address;

export class StakeMap {
  private readonly stakes = new Map<bigint, StakeRecord>();
  private readonly deviceStake = new Map<Address, bigint>();
  private readonly minimums = new Map<StakeType, bigint>();

  /** Applies one event. Events must come in chain order. */
  apply(event: StakeEvent): void {
    switch (event.name) {
      case "StakeCreated":
        this.stakes.set(event.args.stakeId, {
          stakeId: event.args.stakeId,
          owner: lower(event.args.owner),
          stakeType: Number(event.args.stakeType) as StakeType,
          amount: event.args.amount,
          phase: "active",
          device: null,
          unlockAt: 0n,
        });
        return;
      case "StakeIncreased":
      case "StakeSlashed":
        this.stake(event.args.stakeId, event.name).amount = event.args.newAmount;
        return;
      case "DeviceAssigned": {
        const stake = this.stake(event.args.stakeId, event.name);
        stake.device = lower(event.args.device);
        this.deviceStake.set(stake.device, stake.stakeId);
        return;
      }
      case "DeviceUnassigned": {
        const stake = this.stake(event.args.stakeId, event.name);
        const device = lower(event.args.device);
        if (stake.device === device) stake.device = null;
        if (this.deviceStake.get(device) === stake.stakeId) this.deviceStake.delete(device);
        return;
      }
      case "UnstakeRequested": {
        const stake = this.stake(event.args.stakeId, event.name);
        stake.phase = "unlocking";
        stake.unlockAt = event.args.unlockAt;
        return;
      }
      case "UnstakeCancelled": {
        const stake = this.stake(event.args.stakeId, event.name);
        stake.phase = "active";
        stake.unlockAt = 0n;
        return;
      }
      case "StakeReleased": {
        const stake = this.stake(event.args.stakeId, event.name);
        stake.phase = "released";
        stake.amount = 0n;
        return;
      }
      case "MinimumStakeSet":
        this.minimums.set(Number(event.args.stakeType) as StakeType, event.args.minimumStake);
        return;
    }
  }

  /** The stake a device is bound to, if any. */
  stakeOfDevice(device: string): StakeRecord | undefined {
    const stakeId = this.deviceStake.get(lower(device));
    return stakeId === undefined ? undefined : this.stakes.get(stakeId);
  }

  getStake(stakeId: bigint): StakeRecord | undefined {
    return this.stakes.get(stakeId);
  }

  minimum(stakeType: StakeType): bigint | undefined {
    return this.minimums.get(stakeType);
  }

  /** Admitted iff bound to an active stake whose amount meets its type's minimum. */
  isAdmitted(device: string): boolean {
    const stake = this.stakeOfDevice(device);
    if (!stake || stake.phase !== "active") return false;
    const minimum = this.minimums.get(stake.stakeType);
    return minimum !== undefined && stake.amount >= minimum;
  }

  /** Every bound device with its admission. */
  devices(): DeviceAdmission[] {
    const out: DeviceAdmission[] = [];
    for (const [device, stakeId] of this.deviceStake) {
      const stake = this.stakes.get(stakeId)!;
      out.push({
        device,
        stakeId,
        stakeType: stake.stakeType,
        amount: stake.amount,
        admitted: this.isAdmitted(device),
      });
    }
    return out;
  }

  get stakeCount(): number {
    return this.stakes.size;
  }

  /** A deep copy (the chain view keeps one as its reorg-safe base). */
  clone(): StakeMap {
    const copy = new StakeMap();
    for (const [id, stake] of this.stakes) copy.stakes.set(id, { ...stake });
    for (const [device, id] of this.deviceStake) copy.deviceStake.set(device, id);
    for (const [type, minimum] of this.minimums) copy.minimums.set(type, minimum);
    return copy;
  }

  private stake(stakeId: bigint, event: string): StakeRecord {
    const stake = this.stakes.get(stakeId);
    if (!stake) throw new UnknownStakeError(stakeId, event);
    return stake;
  }
}
