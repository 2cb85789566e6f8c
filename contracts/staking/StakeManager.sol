// SPDX-License-Identifier: MIT
pragma solidity ^0.8.27;

import {AccessControlDefaultAdminRules} from "@openzeppelin/contracts/access/extensions/AccessControlDefaultAdminRules.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {RateLimiter} from "@openzeppelin/contracts/utils/RateLimiter.sol";

import {IStakeManager} from "../interfaces/IStakeManager.sol";

/**
 * @title StakeManager
 * @notice Stakes for Edge Network devices. See {IStakeManager}.
 *
 * Storage is laid out for the hot paths: everything a yield computation needs about a stake (amount, type,
 * phase, activity window, last increase, history length) is packed in the stake's first slot, so scoring a
 * stake costs one cold storage read. The amount history is only written when an amount changes after
 * creation (increase, compound, slash); the release time lives in the first slot too, so releasing writes no
 * history.
 *
 * No reentrancy guard: the token is the Edge ERC-20 (no transfer hooks) and every function updates its state
 * before it moves tokens.
 */
contract StakeManager is IStakeManager, AccessControlDefaultAdminRules, EIP712, Pausable {
    using SafeCast for uint256;
    using SafeERC20 for IERC20;
    using RateLimiter for RateLimiter.RefillingBucket;

    // ---------------------------------------------------------------- constants

    bytes32 public constant PARAMETER_ADMIN_ROLE = keccak256("PARAMETER_ADMIN_ROLE");
    bytes32 public constant SLASHER_ROLE = keccak256("SLASHER_ROLE");
    bytes32 public constant PAUSER_ROLE = keccak256("PAUSER_ROLE");

    bytes32 public constant DEVICE_CONSENT_TYPEHASH = keccak256(
        "DeviceConsent(address device,address owner,uint256 nonce,uint256 deadline)"
    );

    /// @notice Upper bound of any unbonding period: a parameter change can never lock stakers in for longer.
    uint256 public constant MAX_UNBONDING_PERIOD = 180 days;
    /// @notice Lowest minimum unbonding period a deployment may choose (the deploy task asks 1 day off the devnet).
    uint256 public constant LOWEST_MIN_UNBONDING_PERIOD = 1;
    /// @notice Upper bound of any minimum stake (10 million tokens of 18 decimals).
    uint256 public constant MAX_MINIMUM_STAKE = 10_000_000e18;
    /// @notice Upper bound of the express release fee (50%).
    uint256 public constant MAX_EXPRESS_RELEASE_FEE_BPS = 5_000;
    uint256 public constant MIN_SLASH_WINDOW = 1 hours;
    uint256 public constant MAX_SLASH_WINDOW = 30 days;

    uint256 private constant _BPS = 10_000;

    IERC20 private immutable _TOKEN;
    /// @dev No unbonding period can go below it: unstaking, releasing and escaping a slash in one block is
    /// impossible, and a parameter admin cannot shorten unbonding below what the deployment promised.
    uint256 private immutable _MIN_UNBONDING_PERIOD;

    // ---------------------------------------------------------------- storage

    /// @dev Where a stake is in its life. The network's status vocabulary is derived from it in {_status}.
    enum Phase {
        Active,
        Unlocking,
        Released
    }

    /// @dev A stake's first slot: everything a yield computation reads, loaded with one storage read.
    struct StakeCore {
        uint96 amount;
        StakeType stakeType;
        Phase phase;
        uint40 activeSince; // start of the current continuous active period (tenure)
        uint40 endedAt; // unstake request time while Unlocking; release time once Released
        uint40 lastChangeAt; // time of the last history entry (0: the amount never changed)
        uint24 historyLength;
    }

    struct StakeData {
        StakeCore core; // slot 0
        address owner; // slot 1
        uint40 createdAt;
        uint40 unlockAt;
        address device; // slot 2
        // The active period before the last cancelled unstake: [previousActiveSince, previousEndedAt]. Epochs
        // that ended inside it stay eligible after the cancel (read only when the current period does not
        // cover the epoch, so the scoring hot path does not pay for it).
        uint40 previousActiveSince;
        uint40 previousEndedAt;
    }

    /// @dev "The amount was `amountBefore` until `at`": one entry per amount change after creation. `previousAt`
    /// (the time of the entry before, 0 for the first) lets a lookup of a recent time stop after one read.
    struct HistoryEntry {
        uint40 at;
        uint96 amountBefore;
        uint40 previousAt;
    }

    /// @dev The device's stake and its consent nonce share a slot; the nonce survives unassignment.
    struct DeviceRecord {
        uint64 stakeId;
        uint64 nonce;
    }

    // Declared first so they pack into Pausable's slot (Pausable is the last base): creating a stake reads the
    // pause flag and the counter with one cold storage read, compounding the pause flag and the rewards manager.
    uint64 private _stakeCount;
    uint16 private _expressReleaseFeeBps;
    address private _rewardsManager;

    mapping(uint256 stakeId => StakeData) private _stakes;
    mapping(uint256 stakeId => mapping(uint256 index => HistoryEntry)) private _history;
    mapping(address device => DeviceRecord) private _devices;
    mapping(StakeType stakeType => TypeParams) private _typeParams;

    address private _treasury;
    RateLimiter.RefillingBucket private _slashLimiter;

    // ---------------------------------------------------------------- constructor

    /**
     * @param token_ The staking token (EdgeToken).
     * @param admin The default admin (can be a timelock); transfers are two-step with `adminDelay`.
     * @param treasury_ Receives express release fees and slashed tokens.
     * @param params Minimum stake and unbonding period of Host, Gateway and Stargate, in that order.
     * @param minUnbondingPeriod_ The floor of every unbonding period, for good (1 s .. 180 days; the deploy task
     * refuses less than 1 day except on the development chain).
     */
    constructor(
        IERC20 token_,
        address admin,
        uint48 adminDelay,
        address treasury_,
        TypeParams[3] memory params,
        uint256 expressReleaseFeeBps_,
        uint256 slashWindow,
        uint256 slashCapacity,
        uint256 minUnbondingPeriod_
    ) AccessControlDefaultAdminRules(adminDelay, admin) EIP712("Edge StakeManager", "1") {
        require(address(token_) != address(0), ZeroAddress());
        require(
            minUnbondingPeriod_ >= LOWEST_MIN_UNBONDING_PERIOD && minUnbondingPeriod_ <= MAX_UNBONDING_PERIOD,
            MinUnbondingPeriodOutOfBounds(minUnbondingPeriod_, LOWEST_MIN_UNBONDING_PERIOD, MAX_UNBONDING_PERIOD)
        );
        _TOKEN = token_;
        _MIN_UNBONDING_PERIOD = minUnbondingPeriod_;
        _setTreasury(treasury_);
        for (uint256 i = 0; i < 3; ++i) {
            _setMinimumStake(StakeType(i), params[i].minimumStake);
            // Immutables cannot be read inside functions during construction: pass the floor along.
            _setUnbondingPeriod(StakeType(i), params[i].unbondingPeriod, minUnbondingPeriod_);
        }
        _setExpressReleaseFee(expressReleaseFeeBps_);
        _setSlashLimit(slashWindow, slashCapacity);
    }

    // ---------------------------------------------------------------- staking

    /// @inheritdoc IStakeManager
    function stake(StakeType stakeType, uint256 amount) external whenNotPaused returns (uint256 stakeId) {
        stakeId = _createStake(stakeType, amount);
        _TOKEN.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @inheritdoc IStakeManager
    function stakeWithPermit(
        StakeType stakeType,
        uint256 amount,
        Permit calldata permit
    ) external whenNotPaused returns (uint256 stakeId) {
        _tryPermit(amount, permit);
        stakeId = _createStake(stakeType, amount);
        _TOKEN.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @inheritdoc IStakeManager
    function stakeAndAssign(
        StakeType stakeType,
        uint256 amount,
        DeviceConsent calldata consent
    ) external whenNotPaused returns (uint256 stakeId) {
        stakeId = _createStake(stakeType, amount);
        _assignDevice(stakeId, _stakes[stakeId], address(0), consent);
        _TOKEN.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @inheritdoc IStakeManager
    function stakeAndAssignWithPermit(
        StakeType stakeType,
        uint256 amount,
        DeviceConsent calldata consent,
        Permit calldata permit
    ) external whenNotPaused returns (uint256 stakeId) {
        _tryPermit(amount, permit);
        stakeId = _createStake(stakeType, amount);
        _assignDevice(stakeId, _stakes[stakeId], address(0), consent);
        _TOKEN.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @inheritdoc IStakeManager
    function increase(uint256 stakeId, uint256 amount) external whenNotPaused {
        _increase(stakeId, amount, msg.sender);
        _TOKEN.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @inheritdoc IStakeManager
    function increaseWithPermit(uint256 stakeId, uint256 amount, Permit calldata permit) external whenNotPaused {
        _tryPermit(amount, permit);
        _increase(stakeId, amount, msg.sender);
        _TOKEN.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @inheritdoc IStakeManager
    function compoundFor(uint256 stakeId, uint256 amount, address owner) external whenNotPaused {
        require(msg.sender == _rewardsManager, NotRewardsManager(msg.sender));
        _increase(stakeId, amount, owner);
        _TOKEN.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @inheritdoc IStakeManager
    function assignDevice(uint256 stakeId, DeviceConsent calldata consent) external whenNotPaused {
        StakeData storage s = _ownedStake(stakeId, msg.sender);
        require(s.core.phase == Phase.Active, StakeNotActive(stakeId, _status(s)));
        _assignDevice(stakeId, s, s.device, consent);
    }

    /// @inheritdoc IStakeManager
    function unassignDevice(uint256 stakeId) external {
        StakeData storage s = _existingStake(stakeId);
        address device = s.device;
        require(device != address(0), StakeHasNoDevice(stakeId));
        require(msg.sender == s.owner || msg.sender == device, StakeNotOwnerOrDevice(stakeId, msg.sender));
        s.device = address(0);
        _devices[device].stakeId = 0;
        emit DeviceUnassigned(stakeId, device);
    }

    /// @inheritdoc IStakeManager
    function requestUnstake(uint256 stakeId) external {
        StakeData storage s = _ownedStake(stakeId, msg.sender);
        require(s.core.phase == Phase.Active, StakeNotActive(stakeId, _status(s)));
        uint256 unlockAt = block.timestamp + _typeParams[s.core.stakeType].unbondingPeriod;
        s.core.phase = Phase.Unlocking;
        s.core.endedAt = uint40(block.timestamp);
        s.unlockAt = uint40(unlockAt);
        emit UnstakeRequested(stakeId, unlockAt);
    }

    /// @inheritdoc IStakeManager
    function cancelUnstake(uint256 stakeId) external whenNotPaused {
        StakeData storage s = _ownedStake(stakeId, msg.sender);
        require(s.core.phase == Phase.Unlocking, StakeNotUnlocking(stakeId, _status(s)));
        // Epochs that ended while the stake was active, before the request, stay eligible (they may not be
        // posted yet): keep that period. Only the last one is kept; an earlier one is forgotten.
        s.previousActiveSince = s.core.activeSince;
        s.previousEndedAt = s.core.endedAt;
        s.core.phase = Phase.Active;
        s.core.activeSince = uint40(block.timestamp);
        s.core.endedAt = 0;
        s.unlockAt = 0;
        emit UnstakeCancelled(stakeId);
    }

    /// @inheritdoc IStakeManager
    function release(uint256 stakeId) external {
        StakeData storage s = _ownedStake(stakeId, msg.sender);
        require(s.core.phase == Phase.Unlocking, StakeNotUnlocking(stakeId, _status(s)));
        uint256 unlockAt = s.unlockAt;
        require(block.timestamp >= unlockAt, StakeStillLocked(stakeId, unlockAt));
        uint256 amount = _close(s);
        _TOKEN.safeTransfer(msg.sender, amount);
        emit StakeReleased(stakeId, msg.sender, amount, 0);
    }

    /// @inheritdoc IStakeManager
    function expressRelease(uint256 stakeId) external {
        StakeData storage s = _ownedStake(stakeId, msg.sender);
        require(s.core.phase == Phase.Unlocking, StakeNotUnlocking(stakeId, _status(s)));
        uint256 unlockAt = s.unlockAt;
        require(block.timestamp < unlockAt, StakeAlreadyUnlocked(stakeId, unlockAt));
        uint256 amount = _close(s);
        // Round the fee down: the owner never pays more than the advertised rate.
        uint256 fee = (amount * _expressReleaseFeeBps) / _BPS;
        if (fee != 0) _TOKEN.safeTransfer(_treasury, fee);
        _TOKEN.safeTransfer(msg.sender, amount - fee);
        emit StakeReleased(stakeId, msg.sender, amount - fee, fee);
    }

    /// @inheritdoc IStakeManager
    function slash(uint256 stakeId, uint256 amount, string calldata reason) external onlyRole(SLASHER_ROLE) {
        StakeData storage s = _existingStake(stakeId);
        require(s.core.phase != Phase.Released, SlashReleasedStake(stakeId));
        require(amount != 0, StakeZeroAmount());
        uint256 staked = s.core.amount;
        require(amount <= staked, SlashExceedsStake(stakeId, amount, staked));
        bytes32 key = bytes32(uint256(uint160(msg.sender)));
        require(
            _slashLimiter.tryConsume(key, amount),
            SlashRateLimited(msg.sender, amount, _slashLimiter.available(key))
        );
        _recordChange(stakeId, s);
        // Cannot underflow: checked against `staked` above.
        uint256 newAmount = staked - amount;
        s.core.amount = uint96(newAmount);
        _TOKEN.safeTransfer(_treasury, amount);
        emit StakeSlashed(stakeId, msg.sender, amount, newAmount, reason);
    }

    // ---------------------------------------------------------------- governance

    /// @inheritdoc IStakeManager
    function setMinimumStake(StakeType stakeType, uint256 minimumStake) external onlyRole(PARAMETER_ADMIN_ROLE) {
        _setMinimumStake(stakeType, minimumStake);
    }

    /// @inheritdoc IStakeManager
    function setUnbondingPeriod(StakeType stakeType, uint256 unbondingPeriod) external onlyRole(PARAMETER_ADMIN_ROLE) {
        _setUnbondingPeriod(stakeType, unbondingPeriod, _MIN_UNBONDING_PERIOD);
    }

    /// @inheritdoc IStakeManager
    function revokeConsent() external {
        // The device key calls it for itself: only the nonce moves (a current assignment stays; see
        // {unassignDevice}). uint64 cannot realistically overflow.
        uint256 revoked = _devices[msg.sender].nonce;
        _devices[msg.sender].nonce = uint64(revoked + 1);
        emit ConsentRevoked(msg.sender, revoked);
    }

    /// @inheritdoc IStakeManager
    function setExpressReleaseFee(uint256 feeBps) external onlyRole(PARAMETER_ADMIN_ROLE) {
        _setExpressReleaseFee(feeBps);
    }

    /// @inheritdoc IStakeManager
    function setTreasury(address treasury_) external onlyRole(PARAMETER_ADMIN_ROLE) {
        _setTreasury(treasury_);
    }

    /// @inheritdoc IStakeManager
    function setSlashLimit(uint256 window, uint256 capacity) external onlyRole(PARAMETER_ADMIN_ROLE) {
        _setSlashLimit(window, capacity);
    }

    /// @inheritdoc IStakeManager
    function setRewardsManager(address rewardsManager_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _rewardsManager = rewardsManager_;
        emit RewardsManagerSet(rewardsManager_);
    }

    /// @inheritdoc IStakeManager
    function pause() external onlyRole(PAUSER_ROLE) {
        _pause();
    }

    /// @inheritdoc IStakeManager
    function unpause() external onlyRole(PAUSER_ROLE) {
        _unpause();
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc IStakeManager
    function token() external view returns (address) {
        return address(_TOKEN);
    }

    /// @inheritdoc IStakeManager
    function getStake(uint256 stakeId) external view returns (StakeView memory view_) {
        StakeData storage s = _existingStake(stakeId);
        bool released = s.core.phase == Phase.Released;
        view_ = StakeView({
            stakeId: stakeId,
            owner: s.owner,
            stakeType: s.core.stakeType,
            status: _status(s),
            amount: released ? 0 : s.core.amount,
            device: s.device,
            createdAt: s.createdAt,
            activeSince: s.core.phase == Phase.Active ? s.core.activeSince : 0,
            unlockAt: s.unlockAt,
            releasedAt: released ? s.core.endedAt : 0,
            minimumMet: !released && s.core.amount >= _typeParams[s.core.stakeType].minimumStake
        });
    }

    /// @inheritdoc IStakeManager
    function stakeAt(uint256 stakeId, uint256 timestamp) external view returns (uint256) {
        StakeData storage s = _existingStake(stakeId);
        if (timestamp < s.createdAt) return 0;
        if (s.core.phase == Phase.Released && timestamp >= s.core.endedAt) return 0;
        return _amountAt(stakeId, s.core, timestamp);
    }

    /// @inheritdoc IStakeManager
    function stakeOwner(uint256 stakeId) external view returns (address) {
        return _existingStake(stakeId).owner;
    }

    /// @inheritdoc IStakeManager
    function yieldInputs(
        uint256 stakeId,
        uint256 epochStart,
        uint256 epochEnd
    ) external view returns (bool eligible, StakeType stakeType, uint256 effectiveStake, uint256 activeSince) {
        uint256 word = _yieldInputs(stakeId, epochStart, epochEnd);
        if (word != 0) {
            return (true, StakeType(uint8(word >> 136)), uint96(word), uint40(word >> 96));
        }
    }

    /// @inheritdoc IStakeManager
    function yieldInputsBatch(
        uint256[] calldata stakeIds,
        uint256 epochStart,
        uint256 epochEnd
    ) external view returns (uint256[] memory inputs) {
        uint256 n = stakeIds.length;
        inputs = new uint256[](n);
        // Unchecked: i < n.
        unchecked {
            for (uint256 i = 0; i < n; ++i) {
                inputs[i] = _yieldInputs(stakeIds[i], epochStart, epochEnd);
            }
        }
    }

    /// @inheritdoc IStakeManager
    function isAdmitted(address device) external view returns (bool) {
        uint256 stakeId = _devices[device].stakeId;
        return stakeId != 0 && _isAdmitted(_stakes[stakeId]);
    }

    /// @inheritdoc IStakeManager
    function deviceStatus(address device) external view returns (DeviceStatus memory status) {
        uint256 stakeId = _devices[device].stakeId;
        if (stakeId == 0) return status;
        StakeData storage s = _stakes[stakeId];
        uint256 minimum = _typeParams[s.core.stakeType].minimumStake;
        uint256 amount = s.core.phase == Phase.Released ? 0 : s.core.amount;
        bool minimumMet = amount >= minimum;
        status = DeviceStatus({
            stakeId: stakeId,
            owner: s.owner,
            stakeType: s.core.stakeType,
            status: _status(s),
            amount: amount,
            minimumStake: minimum,
            unlockAt: s.unlockAt,
            activeSince: s.core.phase == Phase.Active ? s.core.activeSince : 0,
            minimumMet: minimumMet,
            admitted: s.core.phase == Phase.Active && minimumMet
        });
    }

    /// @inheritdoc IStakeManager
    function stakeOfDevice(address device) external view returns (uint256) {
        return _devices[device].stakeId;
    }

    /// @inheritdoc IStakeManager
    function deviceNonce(address device) external view returns (uint256) {
        return _devices[device].nonce;
    }

    /// @inheritdoc IStakeManager
    function deviceConsentDigest(
        address device,
        address owner,
        uint256 nonce,
        uint256 deadline
    ) public view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(DEVICE_CONSENT_TYPEHASH, device, owner, nonce, deadline)));
    }

    /// @inheritdoc IStakeManager
    function typeParams(StakeType stakeType) external view returns (TypeParams memory) {
        return _typeParams[stakeType];
    }

    /// @inheritdoc IStakeManager
    function minUnbondingPeriod() external view returns (uint256) {
        return _MIN_UNBONDING_PERIOD;
    }

    /// @inheritdoc IStakeManager
    function expressReleaseFeeBps() external view returns (uint256) {
        return _expressReleaseFeeBps;
    }

    /// @inheritdoc IStakeManager
    function treasury() external view returns (address) {
        return _treasury;
    }

    /// @inheritdoc IStakeManager
    function rewardsManager() external view returns (address) {
        return _rewardsManager;
    }

    /// @inheritdoc IStakeManager
    function slashLimit() external view returns (uint256 window, uint256 capacity) {
        return (_slashLimiter._window, _slashLimiter._capacity);
    }

    /// @inheritdoc IStakeManager
    function slashAvailable(address slasher) external view returns (uint256) {
        return _slashLimiter.available(bytes32(uint256(uint160(slasher))));
    }

    /// @inheritdoc IStakeManager
    function stakeCount() external view returns (uint256) {
        return _stakeCount;
    }

    // ---------------------------------------------------------------- internal

    function _createStake(StakeType stakeType, uint256 amount) internal returns (uint256 stakeId) {
        uint256 minimum = _typeParams[stakeType].minimumStake;
        require(amount >= minimum, StakeBelowMinimum(stakeType, amount, minimum));
        stakeId = ++_stakeCount;
        StakeData storage s = _stakes[stakeId];
        s.core = StakeCore({
            amount: amount.toUint96(),
            stakeType: stakeType,
            phase: Phase.Active,
            activeSince: uint40(block.timestamp),
            endedAt: 0,
            lastChangeAt: 0,
            historyLength: 0
        });
        s.owner = msg.sender;
        s.createdAt = uint40(block.timestamp);
        emit StakeCreated(stakeId, msg.sender, stakeType, amount);
    }

    function _increase(uint256 stakeId, uint256 amount, address owner) internal {
        StakeData storage s = _ownedStake(stakeId, owner);
        require(s.core.phase == Phase.Active, StakeNotActive(stakeId, _status(s)));
        require(amount != 0, StakeZeroAmount());
        _recordChange(stakeId, s);
        uint256 newAmount = s.core.amount + amount;
        s.core.amount = newAmount.toUint96();
        emit StakeIncreased(stakeId, amount, newAmount);
    }

    /**
     * @dev Binds `consent.device` to `stakeId` after checking the device key's signature. `current` is the stake's
     * device (passed in so a brand-new stake does not read its empty device slot).
     */
    function _assignDevice(
        uint256 stakeId,
        StakeData storage s,
        address current,
        DeviceConsent calldata consent
    ) internal {
        address device = consent.device;
        require(device != address(0), DeviceZeroAddress());
        require(block.timestamp <= consent.deadline, DeviceConsentExpired(device, consent.deadline));
        DeviceRecord memory record = _devices[device];
        bytes32 digest = deviceConsentDigest(device, s.owner, record.nonce, consent.deadline);
        (address signer, , ) = ECDSA.tryRecover(digest, consent.signature);
        require(signer == device, DeviceConsentInvalid(device, signer));

        uint256 previousStakeId = record.stakeId;
        if (previousStakeId != 0) {
            // A device serves one stake at a time; it may only leave a stake that no longer backs it.
            StakeData storage previous = _stakes[previousStakeId];
            require(
                previousStakeId != stakeId && previous.core.phase != Phase.Active,
                DeviceAlreadyAssigned(device, previousStakeId)
            );
            previous.device = address(0);
            emit DeviceUnassigned(previousStakeId, device);
        }
        if (current != address(0)) {
            _devices[current].stakeId = 0;
            emit DeviceUnassigned(stakeId, current);
        }
        s.device = device;
        // The nonce only moves on use, so a consent can be used once; uint64 cannot realistically overflow.
        _devices[device] = DeviceRecord({stakeId: uint64(stakeId), nonce: record.nonce + 1});
        emit DeviceAssigned(stakeId, device);
    }

    /// @dev The scoring hot path, packed as {IStakeManager-yieldInputsBatch} documents (0: not eligible). One read
    /// of the stake's first slot, plus one history read when the amount changed since `epochStart`. A stake that
    /// does not exist has activeSince 0 (every real stake has a creation time).
    function _yieldInputs(uint256 stakeId, uint256 epochStart, uint256 epochEnd) internal view returns (uint256) {
        StakeCore storage core = _stakes[stakeId].core;
        uint256 word;
        // Read the packed slot once and unpack it with shifts: the legacy code generator would otherwise read
        // it once per field, and this runs for every scored stake every epoch. Layout (Solidity packs struct
        // members from the low bits): amount 0-95, stakeType 96-103, phase 104-111, activeSince 112-151,
        // endedAt 152-191, lastChangeAt 192-231, historyLength 232-255.
        assembly ("memory-safe") {
            word := sload(core.slot)
        }
        uint256 activeSince = uint40(word >> 112);
        uint256 phase = uint8(word >> 104);
        if (
            activeSince > epochStart ||
            (phase != uint8(Phase.Active) && (phase != uint8(Phase.Unlocking) || uint40(word >> 152) < epochEnd))
        ) {
            // Not active through the epoch in its current period: perhaps in the one before a cancelled unstake.
            if (phase == uint8(Phase.Released)) return 0;
            activeSince = _previousPeriodCovering(stakeId, epochStart, epochEnd);
        }
        if (activeSince == 0) return 0;
        uint256 amount = uint96(word);
        if (uint40(word >> 192) > epochStart) {
            uint256 atStart = _amountBefore(stakeId, uint24(word >> 232), epochStart);
            if (atStart < amount) amount = atStart;
        }
        return (1 << 144) | (uint256(uint8(word >> 96)) << 136) | (activeSince << 96) | amount;
    }

    /// @dev The start of the stake's active period before its last cancelled unstake if that period covers the
    /// epoch [`epochStart`, `epochEnd`), else 0.
    function _previousPeriodCovering(
        uint256 stakeId,
        uint256 epochStart,
        uint256 epochEnd
    ) internal view returns (uint256 since) {
        StakeData storage s = _stakes[stakeId];
        since = s.previousActiveSince;
        if (since > epochStart || s.previousEndedAt < epochEnd) since = 0;
    }

    /// @dev Marks the stake released and returns the amount it held.
    function _close(StakeData storage s) internal returns (uint256 amount) {
        amount = s.core.amount;
        s.core.phase = Phase.Released;
        s.core.endedAt = uint40(block.timestamp);
    }

    /// @dev Appends "the amount was `s.core.amount` until now" before the amount changes.
    function _recordChange(uint256 stakeId, StakeData storage s) internal {
        uint256 length = s.core.historyLength;
        require(length < type(uint24).max, StakeHistoryFull(stakeId));
        _history[stakeId][length] = HistoryEntry({
            at: uint40(block.timestamp),
            amountBefore: s.core.amount,
            previousAt: s.core.lastChangeAt
        });
        s.core.historyLength = uint24(length + 1);
        s.core.lastChangeAt = uint40(block.timestamp);
    }

    /// @dev The amount after every change made at or before `timestamp`: the `amountBefore` of the first change
    /// made after it, or the current amount if there is none.
    function _amountAt(uint256 stakeId, StakeCore storage c, uint256 timestamp) internal view returns (uint256) {
        return c.lastChangeAt <= timestamp ? c.amount : _amountBefore(stakeId, c.historyLength, timestamp);
    }

    /// @dev The `amountBefore` of the first history entry after `timestamp`, knowing the last one is after it.
    /// One read when only one change came after `timestamp` (what yields ask for); binary search otherwise.
    function _amountBefore(uint256 stakeId, uint256 length, uint256 timestamp) internal view returns (uint256) {
        mapping(uint256 => HistoryEntry) storage history = _history[stakeId];
        uint256 high = length - 1;
        HistoryEntry storage last = history[high];
        if (last.previousAt <= timestamp) return last.amountBefore;
        uint256 low = 0;
        while (low < high) {
            uint256 mid = (low + high) / 2;
            if (history[mid].at > timestamp) high = mid;
            else low = mid + 1;
        }
        return history[low].amountBefore;
    }

    function _isAdmitted(StakeData storage s) internal view returns (bool) {
        return s.core.phase == Phase.Active && s.core.amount >= _typeParams[s.core.stakeType].minimumStake;
    }

    function _status(StakeData storage s) internal view returns (StakeStatus) {
        Phase phase = s.core.phase;
        if (phase == Phase.Released) return StakeStatus.Released;
        if (phase == Phase.Unlocking) {
            return block.timestamp >= s.unlockAt ? StakeStatus.Unlocked : StakeStatus.Unlocking;
        }
        return s.device == address(0) ? StakeStatus.Unassigned : StakeStatus.Assigned;
    }

    function _existingStake(uint256 stakeId) internal view returns (StakeData storage s) {
        s = _stakes[stakeId];
        require(s.owner != address(0), StakeNotFound(stakeId));
    }

    function _ownedStake(uint256 stakeId, address account) internal view returns (StakeData storage s) {
        s = _existingStake(stakeId);
        require(s.owner == account, StakeNotOwner(stakeId, account, s.owner));
    }

    /// @dev Uses a permit if it still works. Someone may have submitted it first (front-running); then the
    /// allowance is already in place and the transfer goes through, or fails with the token's allowance error.
    function _tryPermit(uint256 amount, Permit calldata permit) internal {
        try
            IERC20Permit(address(_TOKEN)).permit(
                msg.sender,
                address(this),
                amount,
                permit.deadline,
                permit.v,
                permit.r,
                permit.s
            )
        {} catch {} // solhint-disable-line no-empty-blocks
    }

    function _setMinimumStake(StakeType stakeType, uint256 minimumStake) internal {
        require(
            minimumStake != 0 && minimumStake <= MAX_MINIMUM_STAKE,
            MinimumStakeOutOfBounds(stakeType, minimumStake, 1, MAX_MINIMUM_STAKE)
        );
        _typeParams[stakeType].minimumStake = uint96(minimumStake);
        emit MinimumStakeSet(stakeType, minimumStake);
    }

    function _setUnbondingPeriod(StakeType stakeType, uint256 unbondingPeriod, uint256 minimum) internal {
        require(
            unbondingPeriod >= minimum && unbondingPeriod <= MAX_UNBONDING_PERIOD,
            UnbondingPeriodOutOfBounds(stakeType, unbondingPeriod, minimum, MAX_UNBONDING_PERIOD)
        );
        _typeParams[stakeType].unbondingPeriod = uint40(unbondingPeriod);
        emit UnbondingPeriodSet(stakeType, unbondingPeriod);
    }

    function _setExpressReleaseFee(uint256 feeBps) internal {
        require(
            feeBps <= MAX_EXPRESS_RELEASE_FEE_BPS,
            ExpressReleaseFeeOutOfBounds(feeBps, MAX_EXPRESS_RELEASE_FEE_BPS)
        );
        _expressReleaseFeeBps = uint16(feeBps);
        emit ExpressReleaseFeeSet(feeBps);
    }

    function _setTreasury(address treasury_) internal {
        require(treasury_ != address(0), ZeroAddress());
        _treasury = treasury_;
        emit TreasurySet(treasury_);
    }

    function _setSlashLimit(uint256 window, uint256 capacity) internal {
        require(
            window >= MIN_SLASH_WINDOW && window <= MAX_SLASH_WINDOW && capacity != 0 && capacity <= type(uint96).max,
            SlashLimitOutOfBounds(window, capacity)
        );
        _slashLimiter.updateSettings(uint48(window), uint208(capacity));
        emit SlashLimitSet(window, capacity);
    }
}
