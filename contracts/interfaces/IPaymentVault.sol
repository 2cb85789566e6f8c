// SPDX-License-Identifier: MIT
pragma solidity ^0.8.27;

/**
 * @title IPaymentVault
 * @notice Prepaid, pay-as-you-go payments for Edge Network services. Customers deposit tokens into a balance;
 * each billing period the biller settles one itemised bill per customer. Outstanding debt is paid first:
 *
 *     taken     = min(debt + bill amount, spending cap of the period, balance)   (a cap of 0 means no cap)
 *     debt paid = min(taken, debt)                                             (`DebtPaid`, from the balance)
 *     charge    = taken - debt paid
 *     shortfall = bill amount - charge                                         (added to the debt)
 *
 * and splits what it takes in a fixed order that always sums to it: the customer's referrer gets
 * `referrerShareBps` as a pull-payment credit (nothing when there is no referrer), the reward pool
 * `rewardPoolShareBps`, the treasury the rest. Each (customer, period) is settled at most once; a settled entry
 * in a later batch is skipped with an event, so a retried batch is harmless. What one biller bills is
 * rate-limited (a refilling bucket per biller, like slashing).
 *
 * The spending cap of a period is the cap in force at its start: a change applies from the period after the one
 * in progress ({currentPeriod}). A deposit pays outstanding debt first, and a withdrawal never takes the part of
 * the balance that debt claims.
 *
 * Withdrawals wait a notice period (at least the billing grace period) so a closed period can still be settled:
 * funds under notice stay collectable until the withdrawal executes. A request is executable only within a
 * window after its notice and must be made again once that has passed; while it is executable, the requested
 * amount counts as gone for good standing. The vault always holds exactly the customers' balances plus the
 * referrers' unclaimed credits.
 *
 * Periods are opaque uint32 indexes chosen by billing (UTC months since 1970-01 by default; see
 * offchain/common/period.ts), below 2^32 - 1.
 */
interface IPaymentVault {
    /// @notice One customer's bill for a period, as billing produced it.
    struct Bill {
        address customer;
        uint96 amount;
        bytes32 billHash;
    }

    /// @notice Why a bill of a settlement batch was skipped.
    enum SkipReason {
        AlreadySettled,
        PeriodTooOld
    }

    /// @notice Governed parameters.
    struct Params {
        uint16 referrerShareBps;
        uint16 rewardPoolShareBps;
        uint40 withdrawalNotice;
        uint96 freeBuffer;
        uint40 withdrawalWindow;
    }

    // ---------------------------------------------------------------- events

    event Deposited(address indexed customer, address indexed from, uint256 amount);
    /// @notice `customer` set a spending cap of `cap` (0: none) for the periods from `fromPeriod` on.
    event SpendingCapSet(address indexed customer, uint256 cap, uint256 fromPeriod);
    event ReferrerSet(address indexed customer, address indexed referrer);
    /// @notice A withdrawal of `amount` was requested: executable from `executableAt` until before `expiresAt`.
    event WithdrawalRequested(address indexed customer, uint256 amount, uint256 executableAt, uint256 expiresAt);
    event WithdrawalCancelled(address indexed customer);
    event Withdrawn(address indexed customer, uint256 amount);

    /// @notice A bill was settled: `charged` came out of the balance, `shortfall` was added to the debt (debt the
    /// settlement paid first is reported by a `DebtPaid` event before this one).
    event BillSettled(
        address indexed customer,
        uint256 indexed period,
        bytes32 billHash,
        uint256 amount,
        uint256 charged,
        uint256 shortfall
    );

    /// @notice A bill of a batch was not settled (the rest of the batch is unaffected).
    event BillSkipped(address indexed customer, uint256 indexed period, bytes32 billHash, SkipReason reason);

    /// @notice A settlement batch split `charged` (the sum of its bills' charges; debt paid first is split in its
    /// own `DebtPaid` events) into referral credits, the reward pool and the treasury.
    event RevenueSplit(
        uint256 indexed period,
        uint256 charged,
        uint256 referrals,
        uint256 rewardPool,
        uint256 treasury
    );

    /// @notice `amount` of `customer`'s debt was paid and split like a charge. `fromBalance`: the customer's
    /// balance paid it (`payer` is then the customer: by {payDebtFromBalance}, or first thing on a deposit or a
    /// settlement); otherwise `payer` paid from its wallet ({payDebt}).
    event DebtPaid(
        address indexed customer,
        address indexed payer,
        uint256 amount,
        uint256 outstanding,
        uint256 referral,
        uint256 rewardPool,
        uint256 treasury,
        bool fromBalance
    );

    event ReferralCredited(address indexed referrer, address indexed customer, uint256 amount);
    event ReferralClaimed(address indexed referrer, address to, uint256 amount);
    event ParamsSet(Params params);
    event TreasurySet(address indexed treasury);
    event RewardPoolSet(address indexed rewardPool);

    /// @notice The per-biller rate limit changed: at most `capacity` tokens billed per `window` seconds, refilling
    /// linearly.
    event BillingLimitSet(uint256 window, uint256 capacity);

    // ---------------------------------------------------------------- errors

    error PaymentZeroAmount();
    error PaymentZeroAddress();
    error PaymentInsufficientBalance(address customer, uint256 amount, uint256 balance);
    /// @notice The withdrawal asks for funds that outstanding debt claims: at most `withdrawable` is free.
    error WithdrawalClaimedByDebt(address customer, uint256 amount, uint256 withdrawable, uint256 outstanding);
    error ReferrerAlreadySet(address customer, address referrer);
    error SelfReferral(address customer);
    error NoPendingWithdrawal(address customer);
    error WithdrawalNotYetExecutable(address customer, uint256 executableAt);
    /// @notice The request's execution window closed at `expiresAt`: request the withdrawal again.
    error WithdrawalExpired(address customer, uint256 expiresAt);
    error NoOutstandingDebt(address customer);
    error NoReferralCredit(address referrer);
    error ParamsOutOfBounds(Params params);
    /// @notice The lower bound of the withdrawal notice given at deployment is 0 or above `MAX_WITHDRAWAL_NOTICE`.
    error MinWithdrawalNoticeOutOfBounds(uint256 minimum);
    /// @notice Settling `period` would wrap the settled-period window: periods stop at `maximum`.
    error PeriodOutOfBounds(uint256 period, uint256 maximum);
    /// @notice The biller's rate limit does not allow billing `amount` now.
    error BillingRateLimited(address biller, uint256 amount, uint256 available);
    /// @notice A billing limit outside its bounds.
    error BillingLimitOutOfBounds(uint256 window, uint256 capacity);

    // ---------------------------------------------------------------- customers

    /// @notice Adds `amount` (pulled from the caller) to the caller's balance; outstanding debt is paid from it
    /// first.
    function deposit(uint256 amount) external;

    /// @notice Adds `amount` (pulled from the caller) to `customer`'s balance; outstanding debt is paid from it
    /// first.
    function depositFor(address customer, uint256 amount) external;

    /// @notice {depositFor} with an ERC-2612 permit from the caller; a front-run permit is ignored when the
    /// allowance is already there.
    function depositWithPermit(
        address customer,
        uint256 amount,
        uint256 deadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external;

    /// @notice Caps what one period's settlement can take from the caller's balance (0: no cap), from the period
    /// after {currentPeriod} on: the periods already in progress keep the cap they started with.
    function setSpendingCap(uint256 cap) external;

    /// @notice Names the caller's referrer, once; it earns a share of the caller's charges.
    function setReferrer(address referrer) external;

    /// @notice Announces a withdrawal of `amount` (at most the balance that debt does not claim), executable after
    /// the notice period and within the withdrawal window after it (replaces any earlier request).
    function requestWithdrawal(uint256 amount) external;

    function cancelWithdrawal() external;

    /// @notice Pays out the pending withdrawal within its window: what is left of it after settlements, never the
    /// part of the balance that debt claims. Never paused.
    function executeWithdrawal() external returns (uint256 amount);

    /// @notice Pays up to `amount` of `customer`'s debt with the caller's tokens.
    function payDebt(address customer, uint256 amount) external returns (uint256 paid);

    /// @notice Pays up to `amount` of the caller's debt from the caller's balance.
    function payDebtFromBalance(uint256 amount) external returns (uint256 paid);

    /// @notice Sends the caller's referral credit to `to`. Never paused.
    function claimReferral(address to) external returns (uint256 amount);

    // ---------------------------------------------------------------- billing and governance

    /// @notice Settles a batch of one period's bills. Biller role; the fresh bills' amounts count against the
    /// biller's rate limit. `period` is below 2^32 - 1.
    function settle(uint32 period, Bill[] calldata bills) external;

    function setParams(Params calldata params) external;

    /// @notice Sets the per-biller rate limit: `capacity` tokens per `window` seconds. Parameter admin.
    function setBillingLimit(uint256 window, uint256 capacity) external;

    function setTreasury(address treasury) external;

    function setRewardPool(address rewardPool) external;

    function pause() external;

    function unpause() external;

    // ---------------------------------------------------------------- views

    function token() external view returns (address);

    function balanceOf(address customer) external view returns (uint256);

    /// @notice The spending cap `customer` set last (it applies from the period its `SpendingCapSet` names).
    function spendingCap(address customer) external view returns (uint256);

    /// @notice The spending cap in force for `customer`'s bill of `period` (the cap at the period's start).
    function spendingCapAt(address customer, uint256 period) external view returns (uint256);

    /// @notice The period the vault takes as in progress: one after the latest period billed (0 before any).
    function currentPeriod() external view returns (uint256);

    function referrerOf(address customer) external view returns (address);

    function outstanding(address customer) external view returns (uint256);

    /// @notice The pending request: executable from `executableAt` until before `expiresAt` (all 0 when none).
    function pendingWithdrawal(
        address customer
    ) external view returns (uint256 amount, uint256 executableAt, uint256 expiresAt);

    /// @notice The balance gateways can count on: the balance less outstanding debt and less an executable
    /// withdrawal (0 when those take it all).
    function availableBalance(address customer) external view returns (uint256);

    function referralCredit(address referrer) external view returns (uint256);

    /// @notice Whether `customer`'s bill for `period` was settled.
    function isSettled(address customer, uint256 period) external view returns (bool);

    /// @notice The latest period settled for `customer` (`settled` false if none).
    function lastSettledPeriod(address customer) external view returns (bool settled, uint256 period);

    /// @notice Whether gateways should serve `customer`: no outstanding debt, and a positive {availableBalance}
    /// (an executable withdrawal counts as gone) or a free buffer in force.
    function isInGoodStanding(address customer) external view returns (bool);

    function params() external view returns (Params memory);

    function treasury() external view returns (address);

    function rewardPool() external view returns (address);

    /// @notice The per-biller rate limit: `capacity` tokens billed per `window` seconds, refilling linearly.
    function billingLimit() external view returns (uint256 window, uint256 capacity);

    /// @notice How much `biller` may bill now.
    function billingAvailable(address biller) external view returns (uint256);

    /// @notice The split of `charged` for a customer with or without a referrer, as settlement computes it.
    function split(
        uint256 charged,
        bool hasReferrer
    ) external view returns (uint256 referrerShare, uint256 rewardPoolShare, uint256 treasuryShare);
}
