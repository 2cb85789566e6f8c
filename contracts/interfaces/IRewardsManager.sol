// SPDX-License-Identifier: MIT
pragma solidity ^0.8.27;

import {IStakeManager} from "./IStakeManager.sol";

/**
 * @title IRewardsManager
 * @notice Turns the oracle committee's per-epoch scores into yield. Time is cut into epochs of a fixed duration
 * from a genesis time. After an epoch closes, anyone may submit the committee's signed score batches; posting a
 * batch accrues each scored stake's yield for that epoch at once:
 *
 *     tenureBonusBps = min(maxTenureBonusBps, tenureStepBps * floor(activeTime / 30 days))
 *     reward = floor(effectiveStake * (baseAprBps[type] + tenureBonusBps) * score * epochDuration
 *                    / (10000 * 10000 * 365 days))
 *
 * where score is in basis points of the peer average (0..20000), activeTime is how long the stake has been
 * continuously active at the epoch's end, and effectiveStake = min(amount at the epoch's start, amount now).
 * Yield is reserved from a funded pool when it accrues, so the pool always covers every unclaimed reward.
 *
 * A batch's entries are packed, 10 bytes each: the stake id as a big-endian uint64, then the score as a
 * big-endian uint16. The committee signs the EIP-712 message
 * `ScoreBatch(uint256 epoch,uint256 batchIndex,bytes32 entriesHash,uint256 committeeVersion)` with
 * `entriesHash = keccak256(entries)`.
 */
interface IRewardsManager {
    /// @notice Why an entry of a batch accrued nothing (the rest of the batch is unaffected).
    enum SkipReason {
        ScoreAboveMaximum,
        NotActiveThroughEpoch,
        AlreadyScored
    }

    /// @notice Governed yield parameters, in basis points.
    struct YieldParams {
        uint16 hostBaseAprBps;
        uint16 gatewayBaseAprBps;
        uint16 stargateBaseAprBps;
        uint16 tenureStepBps;
        uint16 maxTenureBonusBps;
    }

    // ---------------------------------------------------------------- events

    /// @notice A signed batch of scores for `epoch` was posted; `accrued` entries earned `totalYield` in all.
    event ScoresPosted(
        uint256 indexed epoch,
        uint256 indexed batchIndex,
        bytes32 entriesHash,
        uint256 accrued,
        uint256 totalYield,
        address submitter
    );

    /// @notice An entry of a posted batch was skipped.
    event EntrySkipped(uint256 indexed epoch, uint256 indexed stakeId, uint256 score, SkipReason reason);

    /// @notice `amount` tokens were added to the reward pool by `from`.
    event PoolFunded(address indexed from, uint256 amount);

    /// @notice The owner took a stake's accrued yield to `to`.
    event YieldClaimed(uint256 indexed stakeId, address indexed owner, address to, uint256 amount);

    /// @notice The owner added a stake's accrued yield to the stake.
    event YieldCompounded(uint256 indexed stakeId, address indexed owner, uint256 amount);

    /// @notice The oracle committee changed; signatures made for earlier versions no longer count.
    event CommitteeSet(uint256 indexed version, address[] members, uint256 threshold);

    /// @notice The yield parameters changed (they apply to batches posted from now on).
    event YieldParamsSet(YieldParams params);

    // ---------------------------------------------------------------- errors

    /// @notice Only closed epochs can be scored.
    error EpochNotClosed(uint256 epoch, uint256 currentEpoch);

    /// @notice Only the 128 epochs before the current one can be posted; the oldest postable is `oldestPostable`.
    error EpochExpired(uint256 epoch, uint256 oldestPostable);

    /// @notice This batch of this epoch was posted already.
    error BatchAlreadyPosted(uint256 epoch, uint256 batchIndex);

    /// @notice Entries must be a non-empty multiple of 10 bytes.
    error EntriesMalformed(uint256 length);

    /// @notice Fewer valid signatures than the threshold.
    error NotEnoughSignatures(uint256 count, uint256 threshold);

    /// @notice A signature is not from a current committee member (`signer` is 0 for a malformed signature).
    error SignerNotInCommittee(address signer);

    /// @notice The same member signed twice.
    error DuplicateSigner(address signer);

    /// @notice The pool's free balance cannot cover the batch's yield.
    error PoolInsufficient(uint256 needed, uint256 available);

    /// @notice Only the stake's owner may claim or compound.
    error NotStakeOwner(uint256 stakeId, address caller, address owner);

    /// @notice The stake has no accrued yield.
    error NothingAccrued(uint256 stakeId);

    /// @notice A committee must have 1..MAX_COMMITTEE_SIZE distinct non-zero members and 1 <= threshold <= size.
    error CommitteeInvalid(uint256 size, uint256 threshold);

    /// @notice A committee member is the zero address or listed twice.
    error CommitteeMemberInvalid(address member);

    /// @notice A yield parameter above its bound.
    error YieldParamsOutOfBounds(YieldParams params);

    /// @notice The epoch duration must be between 1 second and 30 days.
    error EpochDurationOutOfBounds(uint256 duration);

    /// @notice Funding of 0 tokens.
    error ZeroAmount();

    /// @notice The zero address where an account is required.
    error ZeroAddress();

    // ---------------------------------------------------------------- actions

    /**
     * @notice Posts one signed batch of scores for a closed epoch, one of the 128 before the current one (so
     * every stake's window of scored epochs covers it whatever the posting order). Anyone may submit it.
     * @param epoch The epoch scored.
     * @param batchIndex The batch's index within the epoch (each is posted once).
     * @param entries Packed entries, 10 bytes each (uint64 stake id, uint16 score), big-endian.
     * @param signatures 65-byte ECDSA signatures of at least `threshold` distinct current committee members.
     */
    function postScores(
        uint256 epoch,
        uint256 batchIndex,
        bytes calldata entries,
        bytes[] calldata signatures
    ) external;

    /// @notice Adds `amount` tokens (pulled from the caller) to the reward pool. Plain transfers count too.
    function fund(uint256 amount) external;

    /// @notice Sends the stake's accrued yield to `to`. Owner only; never paused.
    function claim(uint256 stakeId, address to) external returns (uint256 amount);

    /// @notice Adds the stake's accrued yield to the stake (it must be active). Owner only.
    function compound(uint256 stakeId) external returns (uint256 amount);

    function setCommittee(address[] calldata members, uint256 threshold) external;

    function setYieldParams(YieldParams calldata params) external;

    function pause() external;

    function unpause() external;

    // ---------------------------------------------------------------- views

    function stakeManager() external view returns (IStakeManager);

    function token() external view returns (address);

    /// @notice The yield accrued and not yet claimed for `stakeId`.
    function accrued(uint256 stakeId) external view returns (uint256);

    /// @notice The highest epoch scored for `stakeId` (`scored` false if none).
    function lastScoredEpoch(uint256 stakeId) external view returns (bool scored, uint256 epoch);

    /// @notice Whether `stakeId` accrued yield for `epoch`.
    function isScored(uint256 stakeId, uint256 epoch) external view returns (bool);

    /// @notice Whether batch `batchIndex` of `epoch` was posted.
    function isBatchPosted(uint256 epoch, uint256 batchIndex) external view returns (bool);

    function genesis() external view returns (uint256);

    function epochDuration() external view returns (uint256);

    /// @notice The epoch now (reverts before genesis).
    function currentEpoch() external view returns (uint256);

    /// @notice The oldest epoch that can still be posted (max(0, current epoch - 128)).
    function oldestPostableEpoch() external view returns (uint256);

    /// @notice The time window [start, end) of `epoch`.
    function epochWindow(uint256 epoch) external view returns (uint256 start, uint256 end);

    /// @notice The committee's members, threshold and version (signatures must name the version).
    function committee() external view returns (address[] memory members, uint256 threshold, uint256 version);

    function isCommitteeMember(address account) external view returns (bool);

    function yieldParams() external view returns (YieldParams memory);

    /// @notice The APR in basis points for a stake of `stakeType`, active for `activeTime` seconds, at `score`.
    function aprBps(
        IStakeManager.StakeType stakeType,
        uint256 activeTime,
        uint256 score
    ) external view returns (uint256);

    /// @notice The EIP-712 digest the committee signs for a batch.
    function batchDigest(
        uint256 epoch,
        uint256 batchIndex,
        bytes32 entriesHash,
        uint256 committeeVersion
    ) external view returns (bytes32);

    /// @notice Tokens held for accrued, unclaimed yield.
    function reserved() external view returns (uint256);

    /// @notice Tokens in the pool not yet reserved.
    function available() external view returns (uint256);
}
