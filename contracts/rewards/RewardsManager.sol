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
 * once" exact and O(1) even when batches of different epochs arrive out of order: only the 128 epochs before the
 * current one can be posted, and a stake's window always reaches back that far, so no posting order can push a
 * postable epoch out of it. Posting emits one event per
 * batch, not per entry: the entries are in the transaction's calldata and the state answers per stake.
 */
contract RewardsManager is IRewardsManager, AccessControlDefaultAdminRules, EIP712, Pausable {
    using SafeERC20 for IERC20;

    // ---------------------------------------------------------------- constants

    bytes32 public constant ORACLE_ADMIN_ROLE = keccak256("ORACLE_ADMIN_ROLE");
    bytes32 public constant PARAMETER_ADMIN_ROLE = keccak256("PARAMETER_ADMIN_ROLE");
    bytes32 public constant PAUSER_ROLE = keccak256("PAUSER_ROLE");

    bytes32 public constant SCORE_BATCH_TYPEHASH = keccak256(
        "ScoreBatch(uint256 epoch,uint256 batchIndex,bytes32 entriesHash,uint256 committeeVersion)"
    );

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

    // Declared first, as plain values, so they pack into Pausable's slot (Pausable is the last base; its pause
    // flag takes the slot's first byte): a batch reads the pause flag, the yield parameters and the committee's
    // version and threshold with one cold storage read. A struct would not pack: Solidity starts a struct, and
    // whatever follows it, in a slot of its own (3 cold reads per batch).
    uint16 private _hostBaseAprBps;
    uint16 private _gatewayBaseAprBps;
    uint16 private _stargateBaseAprBps;
    uint16 private _tenureStepBps;
    uint16 private _maxTenureBonusBps;
    uint64 private _committeeVersion;
    uint8 private _threshold;

    uint256 private _reserved;
    /// @dev Per stake, one packed word (manual packing keeps the hot loop to one read and one write): accrued
    /// yield in bits 0-95, `top` = highest scored epoch + 1 (0: none) in bits 96-127, and the scored window in
    /// bits 128-255, where bit 128 + k is epoch `top - 1 - k`.
    mapping(uint256 stakeId => uint256 word) private _rewards;
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
        require(epochDuration_ != 0 && epochDuration_ <= MAX_EPOCH_DURATION, EpochDurationOutOfBounds(epochDuration_));
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
        uint256 current = currentEpoch();
        require(end <= block.timestamp, EpochNotClosed(epoch, current));
        // Every stake's window ends at an epoch before the current one, so it always covers every epoch still
        // postable: posting in any order can never push a postable epoch out of a stake's window.
        if (epoch + _WINDOW < current) revert EpochExpired(epoch, current - _WINDOW);
        require(entries.length != 0 && entries.length % _ENTRY_SIZE == 0, EntriesMalformed(entries.length));
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
        address owner = _STAKE_MANAGER.stakeOwner(stakeId);
        require(owner == msg.sender, NotStakeOwner(stakeId, msg.sender, owner));
        amount = _takeAccrued(stakeId);
        _TOKEN.safeTransfer(to, amount);
        emit YieldClaimed(stakeId, msg.sender, to, amount);
    }

    /// @inheritdoc IRewardsManager
    function compound(uint256 stakeId) external returns (uint256 amount) {
        amount = _takeAccrued(stakeId);
        // StakeManager checks the caller owns the stake, that it is active and not paused, and pulls the
        // tokens; any failure there reverts this whole call.
        _STAKE_MANAGER.compoundFor(stakeId, amount, msg.sender);
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
        return uint96(_rewards[stakeId]);
    }

    /// @inheritdoc IRewardsManager
    function lastScoredEpoch(uint256 stakeId) external view returns (bool scored, uint256 epoch) {
        uint256 top = uint32(_rewards[stakeId] >> 96);
        return top == 0 ? (false, 0) : (true, top - 1);
    }

    /// @inheritdoc IRewardsManager
    function isScored(uint256 stakeId, uint256 epoch) external view returns (bool) {
        uint256 word = _rewards[stakeId];
        uint256 top = uint32(word >> 96);
        if (epoch >= top) return false;
        uint256 k = top - 1 - epoch;
        return k < _WINDOW && (word >> (128 + k)) & 1 == 1;
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
    function oldestPostableEpoch() external view returns (uint256) {
        uint256 current = currentEpoch();
        return current >= _WINDOW ? current - _WINDOW : 0;
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
        return _yieldParams();
    }

    /// @inheritdoc IRewardsManager
    function aprBps(
        IStakeManager.StakeType stakeType,
        uint256 activeTime,
        uint256 score
    ) external view returns (uint256) {
        return (_rateBps(_yieldParams(), uint8(stakeType), activeTime) * score) / _BPS;
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
        uint256 n = entries.length / _ENTRY_SIZE;
        uint256[] memory stakeIds = new uint256[](n);
        uint256[] memory scores = new uint256[](n);
        // Unchecked: offsets stay below the calldata's length, and a batch's yield below the pool (2^96).
        unchecked {
            for (uint256 i = 0; i < n; ++i) {
                uint256 word;
                // The 32 bytes from entry i: its 10 bytes lead (the length check above keeps them in bounds).
                // Plain calldata slicing costs several checked helper calls per entry on this hot path.
                assembly ("memory-safe") {
                    word := calldataload(add(entries.offset, mul(i, _ENTRY_SIZE)))
                }
                stakeIds[i] = word >> 192; // the first 8 bytes: the stake id
                scores[i] = uint16(word >> 176); // the next 2 bytes: the score
            }
            // One call for the whole batch: what each stake was through the epoch, packed one word per stake.
            uint256[] memory inputs = _STAKE_MANAGER.yieldInputsBatch(stakeIds, e.start, e.end);
            YieldParams memory params = _yieldParams();
            for (uint256 i = 0; i < n; ++i) {
                (bool accrued_, uint256 reward) = _accrueEntry(e, params, stakeIds[i], scores[i], inputs[i]);
                if (accrued_) {
                    total += reward;
                    ++count;
                }
            }
        }
    }

    /// @dev Accrues one (stake, score) entry given the stake's packed yield inputs, or emits why it is skipped.
    function _accrueEntry(
        Epoch memory e,
        YieldParams memory params,
        uint256 stakeId,
        uint256 score,
        uint256 input
    ) internal returns (bool, uint256) {
        if (score > MAX_SCORE) {
            emit EntrySkipped(e.epoch, stakeId, score, SkipReason.ScoreAboveMaximum);
            return (false, 0);
        }
        uint256 word = _rewards[stakeId];
        (uint256 marks, SkipReason reason) = _markScored(word, e.epoch);
        if (marks == 0) {
            emit EntrySkipped(e.epoch, stakeId, score, reason);
            return (false, 0);
        }
        if (input == 0) {
            emit EntrySkipped(e.epoch, stakeId, score, SkipReason.NotActiveThroughEpoch);
            return (false, 0);
        }
        uint256 reward;
        // Unchecked: activeSince <= the epoch's start < its end; rate (< 2^14) * score (< 2^15) * duration
        // (< 2^22) stays far below 2^256; the new accrued amount stays below 2^96 because every accrual is
        // backed by pool tokens (checked after the loop, reverting the batch otherwise) and the supply fits.
        unchecked {
            // Unpack {IStakeManager-yieldInputsBatch}: effectiveStake (96 bits), activeSince (40), type (8).
            uint256 rate = _rateBps(params, uint8(input >> 136), e.end - uint40(input >> 96));
            // One floor, at the very end: the protocol never pays more than the exact formula.
            reward = Math.mulDiv(uint96(input), rate * score * _EPOCH_DURATION, _DENOMINATOR);
            _rewards[stakeId] = marks | (uint96(word) + reward);
        }
        return (true, reward);
    }

    /// @dev The top and window bits (96-255) of `word` with `epoch` marked scored, or 0 and why not.
    function _markScored(uint256 word, uint256 epoch) internal pure returns (uint256, SkipReason reason) {
        uint256 top = uint32(word >> 96);
        uint256 window = word >> 128;
        // Unchecked: every subtraction is guarded by the comparison before it; epochs are closed, so they
        // stay far below 2^32 (136 years of 1-second epochs).
        unchecked {
            if (epoch >= top) {
                uint256 shift = epoch + 1 - top;
                // `top` is 0 for a stake never scored: the shift then empties the window, as it should.
                window = shift >= _WINDOW ? 1 : uint128((window << shift) | 1);
                return ((window << 128) | ((epoch + 1) << 96), reason);
            }
            // k < _WINDOW: `top - 1` was a closed epoch, so it is below the current one, and {postScores} refuses
            // epochs _WINDOW or more behind the current one.
            uint256 k = top - 1 - epoch;
            if ((window >> k) & 1 == 1) return (0, SkipReason.AlreadyScored);
            return (((window | (1 << k)) << 128) | (top << 96), reason);
        }
    }

    /// @dev (base APR of the type + tenure bonus) in basis points, before the score.
    function _rateBps(
        YieldParams memory params,
        uint256 stakeType,
        uint256 activeTime
    ) internal pure returns (uint256) {
        uint256 base =
            stakeType == uint8(IStakeManager.StakeType.Host)
                ? params.hostBaseAprBps
                : stakeType == uint8(IStakeManager.StakeType.Gateway)
                    ? params.gatewayBaseAprBps
                    : params.stargateBaseAprBps;
        // Unchecked: 16-bit parameters times a step count below 2^40 cannot overflow.
        unchecked {
            uint256 tenure = params.tenureStepBps * (activeTime / TENURE_STEP);
            return base + (tenure < params.maxTenureBonusBps ? tenure : params.maxTenureBonusBps);
        }
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
        uint256 word = _rewards[stakeId];
        amount = uint96(word);
        require(amount != 0, NothingAccrued(stakeId));
        // The scored-epoch bits stay: the slot stays non-zero, so the next accrual is a cheap update.
        _rewards[stakeId] = word & ~uint256(type(uint96).max);
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
        _hostBaseAprBps = params.hostBaseAprBps;
        _gatewayBaseAprBps = params.gatewayBaseAprBps;
        _stargateBaseAprBps = params.stargateBaseAprBps;
        _tenureStepBps = params.tenureStepBps;
        _maxTenureBonusBps = params.maxTenureBonusBps;
        emit YieldParamsSet(params);
    }

    function _yieldParams() internal view returns (YieldParams memory) {
        return
            YieldParams({
                hostBaseAprBps: _hostBaseAprBps,
                gatewayBaseAprBps: _gatewayBaseAprBps,
                stargateBaseAprBps: _stargateBaseAprBps,
                tenureStepBps: _tenureStepBps,
                maxTenureBonusBps: _maxTenureBonusBps
            });
    }
}
