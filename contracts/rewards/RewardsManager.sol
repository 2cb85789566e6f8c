// SPDX-License-Identifier: MIT
pragma solidity ^0.8.27;

import {AccessControlDefaultAdminRules} from "@openzeppelin/contracts/access/extensions/AccessControlDefaultAdminRules.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";

import {IRewardsManager} from "../interfaces/IRewardsManager.sol";
import {IStakeManager} from "../interfaces/IStakeManager.sol";

/**
 * @title RewardsManager
 * @notice Scores in, yield out. See {IRewardsManager}.
 *
 * Scoring a stake is the hot path (once per stake per epoch, forever): it reads the stake's packed first slot
 * in StakeManager through one view call and updates one slot here, which holds the accrued yield together
 * with a 128-epoch window of which epochs were scored. That window makes "each (epoch, stake) accrues at most
 * once" exact and O(1) even when batches of different epochs arrive out of order. Posting emits one event per
 * batch, not per entry: the entries are in the transaction's calldata and the state answers per stake.
 */
contract RewardsManager is IRewardsManager, AccessControlDefaultAdminRules, EIP712, Pausable {
    using SafeERC20 for IERC20;

    // ---------------------------------------------------------------- constants

    bytes32 public constant ORACLE_ADMIN_ROLE = keccak256("ORACLE_ADMIN_ROLE");
    bytes32 public constant PARAMETER_ADMIN_ROLE = keccak256("PARAMETER_ADMIN_ROLE");
    bytes32 public constant PAUSER_ROLE = keccak256("PAUSER_ROLE");

    bytes32 public constant SCORE_BATCH_TYPEHASH =
        keccak256("ScoreBatch(uint256 epoch,uint256 batchIndex,bytes32 entriesHash,uint256 committeeVersion)");

    uint256 public constant MAX_SCORE = 20_000;
    uint256 public constant MAX_COMMITTEE_SIZE = 32;
    uint256 public constant MAX_BASE_APR_BPS = 5_000;
    uint256 public constant MAX_TENURE_STEP_BPS = 1_000;
    uint256 public constant MAX_TENURE_BONUS_BPS = 5_000;
    uint256 public constant MAX_EPOCH_DURATION = 30 days;
    uint256 public constant TENURE_STEP = 30 days;

    uint256 private constant _ENTRY_SIZE = 10;
    uint256 private constant _WINDOW = 128;
    uint256 private constant _BPS = 10_000;
    // reward = stake * aprBps * score * duration / (_BPS * _BPS * 365 days): APR and score are both in bps.
    uint256 private constant _DENOMINATOR = _BPS * _BPS * 365 days;

    IStakeManager private immutable _STAKE_MANAGER;
    IERC20 private immutable _TOKEN;
    uint256 private immutable _GENESIS;
    uint256 private immutable _EPOCH_DURATION;

    // ---------------------------------------------------------------- storage

    /// @dev The epoch a batch scores, with its window.
    struct Epoch {
        uint256 epoch;
        uint256 start;
        uint256 end;
    }

    /// @dev Accrued yield and which epochs were scored: bit k of `window` is epoch `top - 1 - k`.
    struct StakeRewards {
        uint96 accrued;
        uint32 top; // highest scored epoch + 1; 0 when none
        uint128 window;
    }

    // Declared first so they pack into Pausable's slot (Pausable is the last base): a batch reads the pause
    // flag, the yield parameters and the committee's version and threshold with one storage read.
    YieldParams private _params;
    uint64 private _committeeVersion;
    uint8 private _threshold;

    uint256 private _reserved;
    mapping(uint256 stakeId => StakeRewards) private _rewards;
    mapping(uint256 epoch => mapping(uint256 word => uint256 bits)) private _postedBatches;
    mapping(address member => uint256 version) private _memberVersion;
    address[] private _members;

    // ---------------------------------------------------------------- constructor

    /**
     * @param stakeManager_ The StakeManager whose stakes earn yield (its token is the reward token).
     * @param admin The default admin (can be a timelock); transfers are two-step with `adminDelay`.
     * @param genesis_ Start of epoch 0.
     * @param epochDuration_ Length of an epoch in seconds (1 day on real networks).
     * @param members The oracle committee.
     * @param threshold How many distinct members must sign a batch.
     */
    constructor(
        IStakeManager stakeManager_,
        address admin,
        uint48 adminDelay,
        uint256 genesis_,
        uint256 epochDuration_,
        address[] memory members,
        uint256 threshold,
        YieldParams memory params
    ) AccessControlDefaultAdminRules(adminDelay, admin) EIP712("Edge RewardsManager", "1") {
        require(address(stakeManager_) != address(0), ZeroAddress());
        require(
            epochDuration_ != 0 && epochDuration_ <= MAX_EPOCH_DURATION,
            EpochDurationOutOfBounds(epochDuration_)
        );
        _STAKE_MANAGER = stakeManager_;
        _TOKEN = IERC20(stakeManager_.token());
        _GENESIS = genesis_;
        _EPOCH_DURATION = epochDuration_;
        _setCommittee(members, threshold);
        _setYieldParams(params);
        // Compounding hands yield to StakeManager, which pulls it: allow it once, for good.
        _TOKEN.forceApprove(address(stakeManager_), type(uint256).max);
    }

    // ---------------------------------------------------------------- actions

    /// @inheritdoc IRewardsManager
    function postScores(
        uint256 epoch,
        uint256 batchIndex,
        bytes calldata entries,
        bytes[] calldata signatures
    ) external whenNotPaused {
        (uint256 start, uint256 end) = epochWindow(epoch);
        require(end <= block.timestamp, EpochNotClosed(epoch, currentEpoch()));
        require(
            entries.length != 0 && entries.length % _ENTRY_SIZE == 0,
            EntriesMalformed(entries.length)
        );
        _markBatchPosted(epoch, batchIndex);

        uint256 version = _committeeVersion;
        bytes32 entriesHash = keccak256(entries);
        _verifySignatures(batchDigest(epoch, batchIndex, entriesHash, version), signatures, version, _threshold);

        (uint256 count, uint256 total) = _accrue(Epoch(epoch, start, end), entries);
        uint256 reserved_ = _reserved;
        uint256 free = _TOKEN.balanceOf(address(this)) - reserved_;
        // Solvency: yield is only ever accrued against tokens the pool holds and has not promised.
        require(total <= free, PoolInsufficient(total, free));
        _reserved = reserved_ + total;
        emit ScoresPosted(epoch, batchIndex, entriesHash, count, total, msg.sender);
    }

    /// @inheritdoc IRewardsManager
    function fund(uint256 amount) external {
        require(amount != 0, ZeroAmount());
        _TOKEN.safeTransferFrom(msg.sender, address(this), amount);
        emit PoolFunded(msg.sender, amount);
    }

    /// @inheritdoc IRewardsManager
    function claim(uint256 stakeId, address to) external returns (uint256 amount) {
        require(to != address(0), ZeroAddress());
        amount = _takeAccrued(stakeId);
        _TOKEN.safeTransfer(to, amount);
        emit YieldClaimed(stakeId, msg.sender, to, amount);
    }

    /// @inheritdoc IRewardsManager
    function compound(uint256 stakeId) external returns (uint256 amount) {
        amount = _takeAccrued(stakeId);
        // StakeManager checks the stake is active (and not paused) and pulls the tokens.
        _STAKE_MANAGER.compoundFor(stakeId, amount);
        emit YieldCompounded(stakeId, msg.sender, amount);
    }

    // ---------------------------------------------------------------- governance

    /// @inheritdoc IRewardsManager
    function setCommittee(address[] calldata members, uint256 threshold) external onlyRole(ORACLE_ADMIN_ROLE) {
        _setCommittee(members, threshold);
    }

    /// @inheritdoc IRewardsManager
    function setYieldParams(YieldParams calldata params) external onlyRole(PARAMETER_ADMIN_ROLE) {
        _setYieldParams(params);
    }

    /// @inheritdoc IRewardsManager
    function pause() external onlyRole(PAUSER_ROLE) {
        _pause();
    }

    /// @inheritdoc IRewardsManager
    function unpause() external onlyRole(PAUSER_ROLE) {
        _unpause();
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc IRewardsManager
    function stakeManager() external view returns (IStakeManager) {
        return _STAKE_MANAGER;
    }

    /// @inheritdoc IRewardsManager
    function token() external view returns (address) {
        return address(_TOKEN);
    }

    /// @inheritdoc IRewardsManager
    function accrued(uint256 stakeId) external view returns (uint256) {
        return _rewards[stakeId].accrued;
    }

    /// @inheritdoc IRewardsManager
    function lastScoredEpoch(uint256 stakeId) external view returns (bool scored, uint256 epoch) {
        uint256 top = _rewards[stakeId].top;
        return top == 0 ? (false, 0) : (true, top - 1);
    }

    /// @inheritdoc IRewardsManager
    function isScored(uint256 stakeId, uint256 epoch) external view returns (bool) {
        StakeRewards memory r = _rewards[stakeId];
        if (epoch >= r.top) return false;
        uint256 k = r.top - 1 - epoch;
        return k < _WINDOW && (r.window >> k) & 1 == 1;
    }

    /// @inheritdoc IRewardsManager
    function isBatchPosted(uint256 epoch, uint256 batchIndex) external view returns (bool) {
        return (_postedBatches[epoch][batchIndex >> 8] >> (batchIndex & 0xff)) & 1 == 1;
    }

    /// @inheritdoc IRewardsManager
    function genesis() external view returns (uint256) {
        return _GENESIS;
    }

    /// @inheritdoc IRewardsManager
    function epochDuration() external view returns (uint256) {
        return _EPOCH_DURATION;
    }

    /// @inheritdoc IRewardsManager
    /// @dev Before genesis this is 0 (and epoch 0 is not closed yet).
    function currentEpoch() public view returns (uint256) {
        return block.timestamp < _GENESIS ? 0 : (block.timestamp - _GENESIS) / _EPOCH_DURATION;
    }

    /// @inheritdoc IRewardsManager
    function epochWindow(uint256 epoch) public view returns (uint256 start, uint256 end) {
        start = _GENESIS + epoch * _EPOCH_DURATION;
        end = start + _EPOCH_DURATION;
    }

    /// @inheritdoc IRewardsManager
    function committee() external view returns (address[] memory members, uint256 threshold, uint256 version) {
        return (_members, _threshold, _committeeVersion);
    }

    /// @inheritdoc IRewardsManager
    function isCommitteeMember(address account) external view returns (bool) {
        return account != address(0) && _memberVersion[account] == _committeeVersion;
    }

    /// @inheritdoc IRewardsManager
    function yieldParams() external view returns (YieldParams memory) {
        return _params;
    }

    /// @inheritdoc IRewardsManager
    function aprBps(
        IStakeManager.StakeType stakeType,
        uint256 activeTime,
        uint256 score
    ) external view returns (uint256) {
        return (_rateBps(_params, stakeType, activeTime) * score) / _BPS;
    }

    /// @inheritdoc IRewardsManager
    function batchDigest(
        uint256 epoch,
        uint256 batchIndex,
        bytes32 entriesHash,
        uint256 committeeVersion
    ) public view returns (bytes32) {
        return
            _hashTypedDataV4(
                keccak256(abi.encode(SCORE_BATCH_TYPEHASH, epoch, batchIndex, entriesHash, committeeVersion))
            );
    }

    /// @inheritdoc IRewardsManager
    function reserved() external view returns (uint256) {
        return _reserved;
    }

    /// @inheritdoc IRewardsManager
    function available() external view returns (uint256) {
        return _TOKEN.balanceOf(address(this)) - _reserved;
    }

    // ---------------------------------------------------------------- internal

    /// @dev Accrues every entry of a batch; returns how many accrued and their total yield.
    function _accrue(Epoch memory e, bytes calldata entries) internal returns (uint256 count, uint256 total) {
        YieldParams memory params = _params;
        uint256 n = entries.length / _ENTRY_SIZE;
        for (uint256 i = 0; i < n; ++i) {
            uint256 offset = i * _ENTRY_SIZE;
            uint80 entry = uint80(bytes10(entries[offset:offset + _ENTRY_SIZE]));
            (bool accrued_, uint256 reward) = _accrueEntry(e, params, entry >> 16, uint16(entry));
            if (accrued_) {
                total += reward;
                ++count;
            }
        }
    }

    /// @dev Accrues one (stake, score) entry, or emits why it is skipped.
    function _accrueEntry(
        Epoch memory e,
        YieldParams memory params,
        uint256 stakeId,
        uint256 score
    ) internal returns (bool, uint256 reward) {
        if (score > MAX_SCORE) {
            emit EntrySkipped(e.epoch, stakeId, score, SkipReason.ScoreAboveMaximum);
            return (false, 0);
        }
        StakeRewards memory r = _rewards[stakeId];
        (bool fresh, SkipReason reason) = _markScored(r, e.epoch);
        if (!fresh) {
            emit EntrySkipped(e.epoch, stakeId, score, reason);
            return (false, 0);
        }
        bool eligible;
        (eligible, reward) = _reward(e, params, stakeId, score);
        if (!eligible) {
            emit EntrySkipped(e.epoch, stakeId, score, SkipReason.NotActiveThroughEpoch);
            return (false, 0);
        }
        // Cannot truncate: every accrual is backed by pool tokens (checked after the loop, reverting the whole
        // batch otherwise) and the token's supply fits 96 bits.
        r.accrued = uint96(r.accrued + reward);
        _rewards[stakeId] = r;
        return (true, reward);
    }

    /// @dev The stake's yield for the epoch at `score`, if it was active through the epoch.
    function _reward(
        Epoch memory e,
        YieldParams memory params,
        uint256 stakeId,
        uint256 score
    ) internal view returns (bool eligible, uint256 reward) {
        IStakeManager.StakeType stakeType;
        uint256 effectiveStake;
        uint256 activeSince;
        (eligible, stakeType, effectiveStake, activeSince) = _STAKE_MANAGER.yieldInputs(stakeId, e.start, e.end);
        if (eligible) {
            uint256 rate = _rateBps(params, stakeType, e.end - activeSince) * score * _EPOCH_DURATION;
            // One floor, at the very end: the protocol never pays more than the exact formula.
            reward = Math.mulDiv(effectiveStake, rate, _DENOMINATOR);
        }
    }

    /// @dev Marks `epoch` scored in `r` (in memory) unless it already is or is out of the window.
    function _markScored(StakeRewards memory r, uint256 epoch) internal pure returns (bool, SkipReason) {
        uint256 top = r.top;
        if (epoch >= top) {
            uint256 shift = epoch + 1 - top;
            // `top` is 0 for a stake never scored: the shift then empties the window, as it should.
            r.window = shift >= _WINDOW ? 1 : uint128((uint256(r.window) << shift) | 1);
            // Epochs are closed, so they stay far below 2^32 (136 years of 1-second epochs).
            r.top = uint32(epoch + 1);
            return (true, SkipReason.AlreadyScored);
        }
        uint256 k = top - 1 - epoch;
        if (k >= _WINDOW) return (false, SkipReason.EpochTooOld);
        if ((r.window >> k) & 1 == 1) return (false, SkipReason.AlreadyScored);
        r.window |= uint128(1 << k);
        return (true, SkipReason.AlreadyScored);
    }

    /// @dev (base APR of the type + tenure bonus) in basis points, before the score.
    function _rateBps(
        YieldParams memory params,
        IStakeManager.StakeType stakeType,
        uint256 activeTime
    ) internal pure returns (uint256) {
        uint256 base = stakeType == IStakeManager.StakeType.Host
            ? params.hostBaseAprBps
            : stakeType == IStakeManager.StakeType.Gateway
                ? params.gatewayBaseAprBps
                : params.stargateBaseAprBps;
        uint256 tenure = Math.min(params.maxTenureBonusBps, params.tenureStepBps * (activeTime / TENURE_STEP));
        return base + tenure;
    }

    function _markBatchPosted(uint256 epoch, uint256 batchIndex) internal {
        mapping(uint256 => uint256) storage words = _postedBatches[epoch];
        uint256 word = batchIndex >> 8;
        uint256 bit = 1 << (batchIndex & 0xff);
        uint256 bits = words[word];
        require(bits & bit == 0, BatchAlreadyPosted(epoch, batchIndex));
        words[word] = bits | bit;
    }

    /// @dev At least `threshold` signatures, each from a distinct member of committee `version`.
    function _verifySignatures(
        bytes32 digest,
        bytes[] calldata signatures,
        uint256 version,
        uint256 threshold
    ) internal view {
        uint256 count = signatures.length;
        require(count >= threshold, NotEnoughSignatures(count, threshold));
        address[] memory signers = new address[](count);
        for (uint256 i = 0; i < count; ++i) {
            (address signer, , ) = ECDSA.tryRecover(digest, signatures[i]);
            require(signer != address(0) && _memberVersion[signer] == version, SignerNotInCommittee(signer));
            // A committee is small (<= 32): a quadratic scan in memory is cheaper than any storage.
            for (uint256 j = 0; j < i; ++j) {
                require(signers[j] != signer, DuplicateSigner(signer));
            }
            signers[i] = signer;
        }
    }

    function _takeAccrued(uint256 stakeId) internal returns (uint256 amount) {
        address owner = _STAKE_MANAGER.stakeOwner(stakeId);
        require(owner == msg.sender, NotStakeOwner(stakeId, msg.sender, owner));
        StakeRewards storage r = _rewards[stakeId];
        amount = r.accrued;
        require(amount != 0, NothingAccrued(stakeId));
        // The scored-epoch window stays: the slot stays non-zero, so the next accrual is a cheap update.
        r.accrued = 0;
        _reserved -= amount;
    }

    function _setCommittee(address[] memory members, uint256 threshold) internal {
        uint256 size = members.length;
        require(
            size != 0 && size <= MAX_COMMITTEE_SIZE && threshold != 0 && threshold <= size,
            CommitteeInvalid(size, threshold)
        );
        // A new version at once disowns every earlier member and every signature made for them.
        uint64 version = _committeeVersion + 1;
        for (uint256 i = 0; i < size; ++i) {
            address member = members[i];
            require(member != address(0) && _memberVersion[member] != version, CommitteeMemberInvalid(member));
            _memberVersion[member] = version;
        }
        _committeeVersion = version;
        _threshold = uint8(threshold);
        _members = members;
        emit CommitteeSet(version, members, threshold);
    }

    function _setYieldParams(YieldParams memory params) internal {
        require(
            params.hostBaseAprBps <= MAX_BASE_APR_BPS &&
                params.gatewayBaseAprBps <= MAX_BASE_APR_BPS &&
                params.stargateBaseAprBps <= MAX_BASE_APR_BPS &&
                params.tenureStepBps <= MAX_TENURE_STEP_BPS &&
                params.maxTenureBonusBps <= MAX_TENURE_BONUS_BPS,
            YieldParamsOutOfBounds(params)
        );
        _params = params;
        emit YieldParamsSet(params);
    }
}
