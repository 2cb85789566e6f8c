/**
 * The host's own tallies (F11, D40, D44): per (gateway, epoch) the cumulative count of jobs it returned, signed
 * as a HostTally when the gateway asks for it over the host's link (before each job report, and once for an epoch
 * that ended). The gateway keeps the latest; the oracle scores min(the gateway's count, this one), so no gateway
 * can claim jobs its hosts did not attest.
 *
 * Signing costs ~1.5 ms (viem), far more than a cached response, so a job's answer never waits on one: `count` is
 * synchronous, and `attest` signs the count at the time it is asked (one signature at a time per (gateway,
 * epoch), shared by concurrent askers).
 *
 * Persistence (`<dataDir>/<device>-host/tallies.json`, atomic write): the count and the sequence are saved
 * before each signature leaves, and a restart resumes from them, so the host never signs a lower count than
 * before for a (gateway, epoch) nor reuses a sequence. Jobs returned after the last signature and before a crash
 * go unattested (at most one signature's worth). Epochs before the previous one are forgotten.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Address } from "viem";

import type { EpochClock } from "../../../offchain/common/epochs";
import { type HostTallyBody, signHostTally } from "../../../offchain/common/protocol";
import type { Signer } from "../../context";

interface TallyState {
  /** The last sequence signed: the next tally gets a higher one. */
  sequence: number;
  /** gateway (lowercase) -> epoch -> the count of the last signed tally */
  counts: Record<string, Record<string, string>>;
}

export class HostTallies {
  private readonly file: string;
  private readonly state: TallyState;
  /** `${gateway}:${epoch}` -> jobs returned (signed or not yet) */
  private readonly live = new Map<string, bigint>();
  private readonly latest = new Map<string, HostTallyBody>();
  private readonly signing = new Map<string, Promise<void>>();
  private signed = 0;

  constructor(
    dir: string,
    private readonly signer: Signer,
    private readonly clock: Pick<EpochClock, "currentEpoch">,
  ) {
    mkdirSync(dir, { recursive: true });
    this.file = join(dir, "tallies.json");
    this.state = existsSync(this.file)
      ? (JSON.parse(readFileSync(this.file, "utf8")) as TallyState)
      : { sequence: 0, counts: {} };
  }

  /** Counts one job returned to `gateway` now (synchronous: the job's answer never waits on a signature). */
  count(gateway: Address): void {
    const epoch = this.clock.currentEpoch();
    const gw = gateway.toLowerCase();
    const key = `${gw}:${epoch}`;
    this.live.set(key, this.liveCount(gw, epoch) + 1n);
  }

  /**
   * A signed tally of the jobs returned to `gateway` in `epoch` (the current or the previous one), covering every
   * job counted before the call: the latest signature if it already does, else a new one (one signature at a time
   * per (gateway, epoch), shared by concurrent callers). Undefined for other epochs or when nothing was returned.
   */
  async attest(gateway: Address, epoch: bigint): Promise<HostTallyBody | undefined> {
    const current = this.clock.currentEpoch();
    if (epoch > current || epoch < current - 1n) return undefined;
    const gw = gateway.toLowerCase();
    const key = `${gw}:${epoch}`;
    const count = this.liveCount(gw, epoch);
    if (count === 0n) return undefined;
    this.live.set(key, count);
    for (;;) {
      const tally = this.latest.get(key);
      if (tally && BigInt(tally.jobs) >= count) return tally;
      let inFlight = this.signing.get(key);
      if (!inFlight) {
        inFlight = this.sign(gateway, epoch, key).finally(() => this.signing.delete(key));
        this.signing.set(key, inFlight);
      }
      await inFlight;
    }
  }

  /** Jobs returned to `gw` in `epoch`: live, else as last signed (after a restart). */
  private liveCount(gw: string, epoch: bigint): bigint {
    return this.live.get(`${gw}:${epoch}`) ?? BigInt(this.state.counts[gw]?.[epoch.toString()] ?? "0");
  }

  /** Signs the current count of (gateway, epoch) under a new sequence, saved first. */
  private async sign(gateway: Address, epoch: bigint, key: string): Promise<void> {
    const jobs = this.live.get(key)!;
    const gw = gateway.toLowerCase();
    this.state.sequence += 1;
    const sequence = BigInt(this.state.sequence);
    (this.state.counts[gw] ??= {})[epoch.toString()] = jobs.toString();
    for (const counts of Object.values(this.state.counts)) {
      for (const e of Object.keys(counts)) if (BigInt(e) < epoch - 1n) delete counts[e];
    }
    this.save();
    const tally = await signHostTally(this.signer.account, this.signer.chainId, { gateway, epoch, jobs, sequence });
    this.signed += 1;
    const before = this.latest.get(key);
    if (!before || BigInt(before.sequence) < sequence) this.latest.set(key, tally);
    for (const map of [this.latest, this.live])
      for (const k of map.keys()) if (BigInt(k.slice(k.indexOf(":") + 1)) < epoch - 1n) map.delete(k);
  }

  private save(): void {
    writeFileSync(`${this.file}.tmp`, JSON.stringify(this.state));
    renameSync(`${this.file}.tmp`, this.file);
  }

  status(): { tallySequence: number; talliesSigned: number } {
    return { tallySequence: this.state.sequence, talliesSigned: this.signed };
  }
}
