// SPDX-License-Identifier: MIT
pragma solidity ^0.8.27;

/**
 * @title IStakeManager
 * @notice Stakes for Edge Network devices (hosts, gateways, stargates): per-type minimums, device assignment
 * with the device key's consent, unbonding, express release, slashing and the amount history yields read.
 *
 * A device is ADMITTED for a stake type iff it is assigned to a stake of that type that is active (no unstake
 * requested, not released) and whose amount is at least the type's current minimum. The events below are
 * enough to rebuild the device -> stake -> admitted map from logs alone; {deviceStatus} answers it directly.
 */
interface IStakeManager {
    /// @notice The three kinds of device a stake can back.
    enum StakeType {
        Host,
        Gateway,
        Stargate
    }

    /// @notice A stake's status in the network's vocabulary.
    /// @dev Unassigned/Assigned: active, without/with a device. Unlocking: unstake requested, unbonding.
    /// Unlocked: unbonding finished, ready to release. Released: tokens returned, the stake is closed.
    enum StakeStatus {
        Unassigned,
        Assigned,
        Unlocking,
        Unlocked,
        Released
    }

    /// @notice Governed parameters of one stake type.
    struct TypeParams {
        uint96 minimumStake;
        uint40 unbondingPeriod;
    }

    /// @notice A device key's consent to be assigned to a stake of `owner` (EIP-712 `DeviceConsent`).
    /// @param device The device key address; it must be the signer.
    /// @param deadline Last timestamp at which the consent is valid.
    /// @param signature The device key's 65-byte ECDSA signature over
    /// `DeviceConsent(address device,address owner,uint256 nonce,uint256 deadline)`.
    struct DeviceConsent {
        address device;
        uint256 deadline;
        bytes signature;
    }

    /// @notice An ERC-2612 permit for the staking token, signed by the caller.
    struct Permit {
        uint256 deadline;
        uint8 v;
        bytes32 r;
        bytes32 s;
    }

    /// @notice Everything a wallet shows about one stake.
    struct StakeView {
        uint256 stakeId;
        address owner;
        StakeType stakeType;
        StakeStatus status;
        uint256 amount;
        address device;
        uint256 createdAt;
        uint256 activeSince;
        uint256 unlockAt;
        uint256 releasedAt;
        bool minimumMet;
    }

    /// @notice Everything a node daemon needs to decide whether it may serve.
    /// @dev For a device that was never assigned, `stakeId` is 0 and `admitted` false.
    struct DeviceStatus {
        uint256 stakeId;
        address owner;
        StakeType stakeType;
        StakeStatus status;
        uint256 amount;
        uint256 minimumStake;
        uint256 unlockAt;
        uint256 activeSince;
        bool minimumMet;
        bool admitted;
    }

    // ---------------------------------------------------------------- events

    /// @notice A stake was created.
    event StakeCreated(uint256 indexed stakeId, address indexed owner, StakeType stakeType, uint256 amount);

    /// @notice Tokens were added to an active stake (by its owner, or by compounding yield).
    event StakeIncreased(uint256 indexed stakeId, uint256 amount, uint256 newAmount);

    /// @notice `device` was bound to `stakeId` with the device key's consent.
    event DeviceAssigned(uint256 indexed stakeId, address indexed device);

    /// @notice `device` was unbound from `stakeId`.
    event DeviceUnassigned(uint256 indexed stakeId, address indexed device);

    /// @notice The owner asked to unstake; the stake stops being active now and unlocks at `unlockAt`.
    event UnstakeRequested(uint256 indexed stakeId, uint256 unlockAt);

    /// @notice The owner withdrew an unstake request; the stake is active again (tenure restarts).
    event UnstakeCancelled(uint256 indexed stakeId);

    /// @notice The stake was closed: `amount` went to the owner and `fee` (express release only) to the treasury.
    event StakeReleased(uint256 indexed stakeId, address indexed owner, uint256 amount, uint256 fee);

    /// @notice A slasher took `amount` from the stake for `reason`; the tokens went to the treasury.
    event StakeSlashed(
        uint256 indexed stakeId,
        address indexed slasher,
        uint256 amount,
        uint256 newAmount,
        string reason
    );

    /// @notice A stake type's minimum stake changed (this can change which devices are admitted).
    event MinimumStakeSet(StakeType indexed stakeType, uint256 minimumStake);

    /// @notice A stake type's unbonding period changed (for unstake requests made from now on).
    event UnbondingPeriodSet(StakeType indexed stakeType, uint256 unbondingPeriod);

    /// @notice The express release fee changed.
    event ExpressReleaseFeeSet(uint256 feeBps);

    /// @notice The treasury (receiver of fees and slashed tokens) changed.
    event TreasurySet(address indexed treasury);

    /// @notice The per-slasher rate limit changed: at most `capacity` tokens per `window` seconds, refilling linearly.
    event SlashLimitSet(uint256 window, uint256 capacity);

    /// @notice The device key revoked its consents signed for `nonce`: the device's nonce is now `nonce + 1`.
    event ConsentRevoked(address indexed device, uint256 nonce);

    /// @notice The rewards contract allowed to add compounded yield to stakes changed.
    event RewardsManagerSet(address indexed rewardsManager);

    // ---------------------------------------------------------------- errors

    /// @notice No stake has this id.
    error StakeNotFound(uint256 stakeId);

    /// @notice Only the stake's owner may do this.
    error StakeNotOwner(uint256 stakeId, address caller, address owner);

    /// @notice Only the stake's owner or its device may do this.
    error StakeNotOwnerOrDevice(uint256 stakeId, address caller);

    /// @notice Amounts must be positive.
    error StakeZeroAmount();

    /// @notice A new stake must be at least the type's minimum.
    error StakeBelowMinimum(StakeType stakeType, uint256 amount, uint256 minimum);

    /// @notice The stake is unlocking or released and cannot do this.
    error StakeNotActive(uint256 stakeId, StakeStatus status);

    /// @notice The stake has no pending unstake request.
    error StakeNotUnlocking(uint256 stakeId, StakeStatus status);

    /// @notice The stake is still unbonding.
    error StakeStillLocked(uint256 stakeId, uint256 unlockAt);

    /// @notice The stake already unlocked: release it for free instead.
    error StakeAlreadyUnlocked(uint256 stakeId, uint256 unlockAt);

    /// @notice The stake has no device assigned.
    error StakeHasNoDevice(uint256 stakeId);

    /// @notice The stake's amount history is full (one entry per increase or slash).
    error StakeHistoryFull(uint256 stakeId);

    /// @notice The device address is zero.
    error DeviceZeroAddress();

    /// @notice The device is already bound to an active stake (possibly this one).
    error DeviceAlreadyAssigned(address device, uint256 stakeId);

    /// @notice The consent's deadline has passed.
    error DeviceConsentExpired(address device, uint256 deadline);

    /// @notice The consent was not signed by the device key (wrong signer, nonce, owner, chain or contract).
    error DeviceConsentInvalid(address device, address signer);

    /// @notice The slash takes more than the stake holds.
    error SlashExceedsStake(uint256 stakeId, uint256 amount, uint256 staked);

    /// @notice The slasher's rate limit does not allow this amount now.
    error SlashRateLimited(address slasher, uint256 amount, uint256 available);

    /// @notice The stake was already released; there is nothing to slash.
    error SlashReleasedStake(uint256 stakeId);

    /// @notice Only the rewards manager may compound.
    error NotRewardsManager(address caller);

    /// @notice A minimum stake outside its bounds.
    error MinimumStakeOutOfBounds(StakeType stakeType, uint256 minimumStake, uint256 lowest, uint256 highest);

    /// @notice An unbonding period outside its bounds (the deployment's floor .. 180 days).
    error UnbondingPeriodOutOfBounds(StakeType stakeType, uint256 unbondingPeriod, uint256 lowest, uint256 highest);

    /// @notice The deployment's floor of unbonding periods outside its bounds (1 s .. 180 days).
    error MinUnbondingPeriodOutOfBounds(uint256 minUnbondingPeriod, uint256 lowest, uint256 highest);

    /// @notice An express release fee above its bound.
    error ExpressReleaseFeeOutOfBounds(uint256 feeBps, uint256 highest);

    /// @notice A slash limit outside its bounds.
    error SlashLimitOutOfBounds(uint256 window, uint256 capacity);

    /// @notice The zero address where an account is required.
    error ZeroAddress();

    // ---------------------------------------------------------------- staking

    /// @notice Stakes `amount` tokens (pulled from the caller, who needs an allowance) for a new stake of `stakeType`.
    /// @return stakeId The new stake's id (ids start at 1).
    function stake(StakeType stakeType, uint256 amount) external returns (uint256 stakeId);

    /// @notice {stake} with an ERC-2612 permit in the same transaction. A permit that was front-run is ignored
    /// when the allowance is already there.
    function stakeWithPermit(
        StakeType stakeType,
        uint256 amount,
        Permit calldata permit
    ) external returns (uint256 stakeId);

    /// @notice Creates a stake and binds `consent.device` to it in one transaction.
    function stakeAndAssign(
        StakeType stakeType,
        uint256 amount,
        DeviceConsent calldata consent
    ) external returns (uint256 stakeId);

    /// @notice {stakeAndAssign} with an ERC-2612 permit.
    function stakeAndAssignWithPermit(
        StakeType stakeType,
        uint256 amount,
        DeviceConsent calldata consent,
        Permit calldata permit
    ) external returns (uint256 stakeId);

    /// @notice Adds `amount` tokens to the caller's active stake. Yields count the increase from the next epoch.
    function increase(uint256 stakeId, uint256 amount) external;

    /// @notice {increase} with an ERC-2612 permit.
    function increaseWithPermit(uint256 stakeId, uint256 amount, Permit calldata permit) external;

    /// @notice Binds a device to the caller's active stake, replacing its current device if any. A device bound to
    /// a stake that is no longer active (unlocking, released) may move to a new stake.
    function assignDevice(uint256 stakeId, DeviceConsent calldata consent) external;

    /// @notice Unbinds the stake's device. Callable by the owner or by the device key itself.
    function unassignDevice(uint256 stakeId) external;

    /// @notice Called by a device key: moves its consent nonce on by one, so a consent it signed and that was not
    /// used yet (for the current nonce) no longer works. A current assignment stays (see {unassignDevice}).
    function revokeConsent() external;

    /// @notice Starts unbonding: the device stops being admitted in this block; tenure is forfeited.
    function requestUnstake(uint256 stakeId) external;

    /// @notice Withdraws an unstake request; the stake is active again and its tenure restarts now. Epochs that
    /// ended before the request, while the stake was active, stay eligible for yield (see {yieldInputs}).
    function cancelUnstake(uint256 stakeId) external;

    /// @notice Returns an unlocked stake's tokens to its owner.
    function release(uint256 stakeId) external;

    /// @notice Returns an unbonding stake's tokens to its owner now, less the express release fee.
    function expressRelease(uint256 stakeId) external;

    /// @notice Takes `amount` from a stake (active or unbonding) to the treasury. Slasher role; rate-limited.
    function slash(uint256 stakeId, uint256 amount, string calldata reason) external;

    /// @notice Adds `amount` tokens, pulled from the rewards manager, to `owner`'s active stake (compounding
    /// yield on the owner's behalf: the stake must belong to `owner`).
    /// @dev Only the rewards manager; it needs an allowance.
    function compoundFor(uint256 stakeId, uint256 amount, address owner) external;

    // ---------------------------------------------------------------- governance

    function setMinimumStake(StakeType stakeType, uint256 minimumStake) external;

    function setUnbondingPeriod(StakeType stakeType, uint256 unbondingPeriod) external;

    function setExpressReleaseFee(uint256 feeBps) external;

    function setTreasury(address treasury) external;

    function setSlashLimit(uint256 window, uint256 capacity) external;

    function setRewardsManager(address rewardsManager) external;

    function pause() external;

    function unpause() external;

    // ---------------------------------------------------------------- views

    /// @notice The staking token.
    function token() external view returns (address);

    /// @notice One stake, as a wallet shows it.
    function getStake(uint256 stakeId) external view returns (StakeView memory);

    /// @notice The stake's amount at `timestamp` (after every change made at or before it). 0 before the stake was
    /// created and from its release on.
    function stakeAt(uint256 stakeId, uint256 timestamp) external view returns (uint256);

    /// @notice The stake's owner.
    function stakeOwner(uint256 stakeId) external view returns (address);

    /**
     * @notice What a yield computation needs about a stake for the epoch [`epochStart`, `epochEnd`).
     * @return eligible Whether the stake exists and was active through the whole epoch: active since at most
     * `epochStart`, and still active or its unstake requested at or after `epochEnd`; or the epoch lies within
     * the active period before the stake's last cancelled unstake (released stakes never are).
     * @return stakeType The stake's type.
     * @return effectiveStake min(amount at `epochStart`, amount now) (0 when not eligible).
     * @return activeSince Start of the continuous active period that covers the epoch (for the tenure bonus).
     */
    function yieldInputs(
        uint256 stakeId,
        uint256 epochStart,
        uint256 epochEnd
    ) external view returns (bool eligible, StakeType stakeType, uint256 effectiveStake, uint256 activeSince);

    /**
     * @notice {yieldInputs} for many stakes in one call (the scoring hot path), one word per stake: 0 when not
     * eligible, else `1 << 144 | stakeType << 136 | activeSince << 96 | effectiveStake` (effectiveStake in the
     * low 96 bits, activeSince in the next 40).
     */
    function yieldInputsBatch(
        uint256[] calldata stakeIds,
        uint256 epochStart,
        uint256 epochEnd
    ) external view returns (uint256[] memory inputs);

    /// @notice Whether `device` may serve now.
    function isAdmitted(address device) external view returns (bool);

    /// @notice Everything a daemon needs about `device` in one call.
    function deviceStatus(address device) external view returns (DeviceStatus memory);

    /// @notice The stake `device` is bound to (0 if none).
    function stakeOfDevice(address device) external view returns (uint256);

    /// @notice The nonce the device's next consent must carry.
    function deviceNonce(address device) external view returns (uint256);

    /// @notice The EIP-712 digest a device key signs to consent to `owner`.
    function deviceConsentDigest(
        address device,
        address owner,
        uint256 nonce,
        uint256 deadline
    ) external view returns (bytes32);

    function typeParams(StakeType stakeType) external view returns (TypeParams memory);

    /// @notice The floor of every unbonding period, fixed at deployment.
    function minUnbondingPeriod() external view returns (uint256);

    function expressReleaseFeeBps() external view returns (uint256);

    function treasury() external view returns (address);

    function rewardsManager() external view returns (address);

    /// @notice The per-slasher rate limit: `capacity` tokens per `window` seconds, refilling linearly.
    function slashLimit() external view returns (uint256 window, uint256 capacity);

    /// @notice How much `slasher` may slash now.
    function slashAvailable(address slasher) external view returns (uint256);

    /// @notice The number of stakes ever created (the highest stake id).
    function stakeCount() external view returns (uint256);
}
