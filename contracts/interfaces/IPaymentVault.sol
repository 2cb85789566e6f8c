// SPDX-License-Identifier: MIT
pragma solidity ^0.8.27;

/**
 * @title IPaymentVault
 * @notice Prepaid, pay-as-you-go payments for Edge Network services. Customers deposit tokens into a balance;
 * each billing period the biller settles one itemised bill per customer:
 *
 *     charge    = min(bill amount, spending cap, balance)        (a cap of 0 means no cap)
 *     shortfall = bill amount - charge                           (recorded as outstanding debt)
 *
 * and splits the charge in a fixed order that always sums to it: the customer's referrer gets
 * `referrerShareBps` as a pull-payment credit (nothing when there is no referrer), the reward pool
 * `rewardPoolShareBps`, the treasury the rest. Each (customer, period) is settled at most once; a settled entry
 * in a later batch is skipped with an event, so a retried batch is harmless.
 *
 * Withdrawals wait a notice period so a closed period can still be settled: funds under notice stay
 * collectable until the withdrawal executes. The vault always holds exactly the customers' balances plus the
 * referrers' unclaimed credits.
 *
 * Periods are opaque uint32 indexes chosen by billing (UTC months since 1970-01 by default; see
 * offchain/common/period.ts).
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
    }

    // ---------------------------------------------------------------- events

    event Deposited(address indexed customer, address indexed from, uint256 amount);
    event SpendingCapSet(address indexed customer, uint256 cap);
    event ReferrerSet(address indexed customer, address indexed referrer);
    event WithdrawalRequested(address indexed customer, uint256 amount, uint256 executableAt);
    event WithdrawalCancelled(address indexed customer);
    event Withdrawn(address indexed customer, uint256 amount);

    /// @notice A bill was settled: `charged` came out of the balance, `shortfall` was added to the debt.
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

    /// @notice A settlement batch split `charged` into referral credits, the reward pool and the treasury.
    event RevenueSplit(
        uint256 indexed period,
        uint256 charged,
        uint256 referrals,
        uint256 rewardPool,
        uint256 treasury
    );

    /// @notice `amount` of `customer`'s debt was paid by `payer` (from the wallet, or from the balance by the
    /// customer) and split like a charge.
    event DebtPaid(
        address indexed customer,
        address indexed payer,
        uint256 amount,
        uint256 outstanding,
        uint256 referral,
        uint256 rewardPool,
        uint256 treasury
    );

    event ReferralCredited(address indexed referrer, address indexed customer, uint256 amount);
    event ReferralClaimed(address indexed referrer, address to, uint256 amount);
    event ParamsSet(Params params);
    event TreasurySet(address indexed treasury);
    event RewardPoolSet(address indexed rewardPool);

    // ---------------------------------------------------------------- errors

    error PaymentZeroAmount();
    error PaymentZeroAddress();
    error PaymentInsufficientBalance(address customer, uint256 amount, uint256 balance);
    error ReferrerAlreadySet(address customer, address referrer);
    error SelfReferral(address customer);
    error NoPendingWithdrawal(address customer);
    error WithdrawalNotYetExecutable(address customer, uint256 executableAt);
    error NoOutstandingDebt(address customer);
    error NoReferralCredit(address referrer);
    error ParamsOutOfBounds(Params params);

    // ---------------------------------------------------------------- customers

    /// @notice Adds `amount` (pulled from the caller) to the caller's balance.
    function deposit(uint256 amount) external;

    /// @notice Adds `amount` (pulled from the caller) to `customer`'s balance.
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

    /// @notice Caps what one period's bill can take from the caller's balance (0: no cap).
    function setSpendingCap(uint256 cap) external;

    /// @notice Names the caller's referrer, once; it earns a share of the caller's charges.
    function setReferrer(address referrer) external;

    /// @notice Announces a withdrawal of `amount`, executable after the notice period (replaces any earlier one).
    function requestWithdrawal(uint256 amount) external;

    function cancelWithdrawal() external;

    /// @notice Pays out the pending withdrawal (what is left of it after settlements). Never paused.
    function executeWithdrawal() external returns (uint256 amount);

    /// @notice Pays up to `amount` of `customer`'s debt with the caller's tokens.
    function payDebt(address customer, uint256 amount) external returns (uint256 paid);

    /// @notice Pays up to `amount` of the caller's debt from the caller's balance.
    function payDebtFromBalance(uint256 amount) external returns (uint256 paid);

    /// @notice Sends the caller's referral credit to `to`. Never paused.
    function claimReferral(address to) external returns (uint256 amount);

    // ---------------------------------------------------------------- billing and governance

    /// @notice Settles a batch of one period's bills. Biller role.
    function settle(uint32 period, Bill[] calldata bills) external;

    function setParams(Params calldata params) external;

    function setTreasury(address treasury) external;

    function setRewardPool(address rewardPool) external;

    function pause() external;

    function unpause() external;

    // ---------------------------------------------------------------- views

    function token() external view returns (address);

    function balanceOf(address customer) external view returns (uint256);

    function spendingCap(address customer) external view returns (uint256);

    function referrerOf(address customer) external view returns (address);

    function outstanding(address customer) external view returns (uint256);

    function pendingWithdrawal(address customer) external view returns (uint256 amount, uint256 executableAt);

    function referralCredit(address referrer) external view returns (uint256);

    /// @notice Whether `customer`'s bill for `period` was settled.
    function isSettled(address customer, uint256 period) external view returns (bool);

    /// @notice The latest period settled for `customer` (`settled` false if none).
    function lastSettledPeriod(address customer) external view returns (bool settled, uint256 period);

    /// @notice Whether gateways should serve `customer`: no outstanding debt, and a positive balance or a free
    /// buffer in force.
    function isInGoodStanding(address customer) external view returns (bool);

    function params() external view returns (Params memory);

    function treasury() external view returns (address);

    function rewardPool() external view returns (address);

    /// @notice The split of `charged` for a customer with or without a referrer, as settlement computes it.
    function split(
        uint256 charged,
        bool hasReferrer
    ) external view returns (uint256 referrerShare, uint256 rewardPoolShare, uint256 treasuryShare);
}
