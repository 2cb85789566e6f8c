// SPDX-License-Identifier: MIT
pragma solidity ^0.8.27;

import {AccessControlDefaultAdminRules} from "@openzeppelin/contracts/access/extensions/AccessControlDefaultAdminRules.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {RateLimiter} from "@openzeppelin/contracts/utils/RateLimiter.sol";
import {Checkpoints} from "@openzeppelin/contracts/utils/structs/Checkpoints.sol";

import {IPaymentVault} from "../interfaces/IPaymentVault.sol";

/**
 * @title PaymentVault
 * @notice Prepaid balances, period settlement of itemised bills, referral credits. See {IPaymentVault}.
 *
 * Settling a bill touches the customer's account slot (balance, debt and a 32-period window of settled periods,
 * which makes "at most once per (customer, period)" one read and one write, and "debt first" free of another
 * read), reads the customer's spending cap history (one slot when the customer never set a cap), reads the
 * referrer only when it takes something, and credits the referrer. The reward pool's and the treasury's shares
 * leave the vault once per batch. No reentrancy guard: the token is the Edge ERC-20 (no hooks) and every
 * function changes state before moving tokens.
 */
contract PaymentVault is IPaymentVault, AccessControlDefaultAdminRules, Pausable {
    using Checkpoints for Checkpoints.Trace208;
    using RateLimiter for RateLimiter.RefillingBucket;
    using SafeCast for uint256;
    using SafeERC20 for IERC20;

    // ---------------------------------------------------------------- constants

    bytes32 public constant BILLER_ROLE = keccak256("BILLER_ROLE");
    bytes32 public constant PARAMETER_ADMIN_ROLE = keccak256("PARAMETER_ADMIN_ROLE");
    bytes32 public constant PAUSER_ROLE = keccak256("PAUSER_ROLE");

    uint256 public constant MAX_REFERRER_SHARE_BPS = 2_500;
    uint256 public constant MAX_REWARD_POOL_SHARE_BPS = 5_000;
    /// @notice Upper bound of the withdrawal notice: a parameter change can never lock balances in for longer.
    uint256 public constant MAX_WITHDRAWAL_NOTICE = 30 days;
    /// @notice Bounds of the withdrawal window: long enough to act on, short enough that a request goes stale.
    uint256 public constant MIN_WITHDRAWAL_WINDOW = 1 hours;
    uint256 public constant MAX_WITHDRAWAL_WINDOW = 30 days;
    uint256 public constant MIN_BILLING_WINDOW = 1 hours;
    uint256 public constant MAX_BILLING_WINDOW = 30 days;
    /// @notice The last period that can be settled: `top` (period + 1) must fit the uint32 of the account slot.
    uint256 public constant MAX_PERIOD = type(uint32).max - 1;

    uint256 private constant _BPS = 10_000;
    uint256 private constant _WINDOW = 32;

    /// @notice Lower bound of the withdrawal notice, fixed at deployment: the billing service's grace period (a
    /// period's bill is settled after its end plus the grace), so a request made as a period closes cannot
    /// execute before that period's bill is settled.
    uint256 public immutable MIN_WITHDRAWAL_NOTICE;

    IERC20 private immutable _TOKEN;

    // ---------------------------------------------------------------- storage

    /// @dev What settling reads and writes. Bit k of `window` is period `top - 1 - k`.
    struct Account {
        uint96 balance;
        uint96 outstanding;
        uint32 top; // latest settled period + 1; 0 when none
        uint32 window;
    }

    struct Withdrawal {
        uint96 amount;
        uint40 executableAt;
        uint40 expiresAt;
    }

    /// @dev What a batch reads with one storage read (a struct starts a slot of its own: it does not share
    /// Pausable's).
    Params private _params;

    address private _treasury;
    /// @dev One after the latest period settled (0 before any): the period taken as in progress. Packed with
    /// `_treasury`, which a batch reads anyway.
    uint32 private _currentPeriod;
    address private _rewardPool;
    mapping(address customer => Account) private _accounts;
    mapping(address customer => address referrer) private _referrers;
    /// @dev Key: the first period a cap applies to; value: the cap (0: none).
    mapping(address customer => Checkpoints.Trace208) private _caps;
    mapping(address customer => Withdrawal) private _withdrawals;
    mapping(address referrer => uint256 amount) private _credits;
    RateLimiter.RefillingBucket private _billingLimiter;

    /// @dev A settlement batch's running sums.
    struct Totals {
        uint256 billed;
        uint256 charged;
        uint256 referrals;
        uint256 debtPool;
        uint256 debtTreasury;
    }

    // ---------------------------------------------------------------- constructor

    /**
     * @param token_ The payment token (EdgeToken).
     * @param admin The default admin (can be a timelock); transfers are two-step with `adminDelay`.
     * @param treasury_ Receives the treasury's share of every charge.
     * @param rewardPool_ Receives the reward pool's share (RewardsManager).
     * @param minWithdrawalNotice Lower bound of the withdrawal notice: the billing grace period (1 s .. 30 days).
     * @param billingWindow With `billingCapacity`: each biller bills at most `billingCapacity` tokens per window.
     */
    constructor(
        IERC20 token_,
        address admin,
        uint48 adminDelay,
        address treasury_,
        address rewardPool_,
        Params memory params_,
        uint256 minWithdrawalNotice,
        uint256 billingWindow,
        uint256 billingCapacity
    ) AccessControlDefaultAdminRules(adminDelay, admin) {
        require(address(token_) != address(0), PaymentZeroAddress());
        require(
            minWithdrawalNotice != 0 && minWithdrawalNotice <= MAX_WITHDRAWAL_NOTICE,
            MinWithdrawalNoticeOutOfBounds(minWithdrawalNotice)
        );
        _TOKEN = token_;
        MIN_WITHDRAWAL_NOTICE = minWithdrawalNotice;
        _setTreasury(treasury_);
        _setRewardPool(rewardPool_);
        _setParams(params_);
        _setBillingLimit(billingWindow, billingCapacity);
    }

    // ---------------------------------------------------------------- customers

    /// @inheritdoc IPaymentVault
    function deposit(uint256 amount) external whenNotPaused {
        _deposit(msg.sender, amount);
    }

    /// @inheritdoc IPaymentVault
    function depositFor(address customer, uint256 amount) external whenNotPaused {
        _deposit(customer, amount);
    }

    /// @inheritdoc IPaymentVault
    function depositWithPermit(
        address customer,
        uint256 amount,
        uint256 deadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external whenNotPaused {
        // A front-run permit reverts here but has already set the allowance; the transfer then decides.
        try IERC20Permit(address(_TOKEN)).permit(msg.sender, address(this), amount, deadline, v, r, s) {} catch {} // solhint-disable-line no-empty-blocks
        _deposit(customer, amount);
    }

    /// @inheritdoc IPaymentVault
    function setSpendingCap(uint256 cap) external {
        // The period in progress keeps the cap it started with: the change applies from the next one. Keys only
        // grow (`_currentPeriod` never goes back), as Checkpoints requires; a second change in the same period
        // replaces the first.
        uint256 fromPeriod = uint256(_currentPeriod) + 1;
        _caps[msg.sender].push(uint48(fromPeriod), cap.toUint96());
        emit SpendingCapSet(msg.sender, cap, fromPeriod);
    }

    /// @inheritdoc IPaymentVault
    function setReferrer(address referrer) external {
        require(referrer != address(0), PaymentZeroAddress());
        require(referrer != msg.sender, SelfReferral(msg.sender));
        address current = _referrers[msg.sender];
        require(current == address(0), ReferrerAlreadySet(msg.sender, current));
        _referrers[msg.sender] = referrer;
        emit ReferrerSet(msg.sender, referrer);
    }

    /// @inheritdoc IPaymentVault
    function requestWithdrawal(uint256 amount) external {
        require(amount != 0, PaymentZeroAmount());
        Account memory account = _accounts[msg.sender];
        require(amount <= account.balance, PaymentInsufficientBalance(msg.sender, amount, account.balance));
        uint256 free = _free(account);
        require(amount <= free, WithdrawalClaimedByDebt(msg.sender, amount, free, account.outstanding));
        Params memory p = _params;
        uint256 executableAt = block.timestamp + p.withdrawalNotice;
        uint256 expiresAt = executableAt + p.withdrawalWindow;
        _withdrawals[msg.sender] = Withdrawal({
            amount: uint96(amount),
            executableAt: uint40(executableAt),
            expiresAt: uint40(expiresAt)
        });
        emit WithdrawalRequested(msg.sender, amount, executableAt, expiresAt);
    }

    /// @inheritdoc IPaymentVault
    function cancelWithdrawal() external {
        require(_withdrawals[msg.sender].amount != 0, NoPendingWithdrawal(msg.sender));
        delete _withdrawals[msg.sender];
        emit WithdrawalCancelled(msg.sender);
    }

    /// @inheritdoc IPaymentVault
    function executeWithdrawal() external returns (uint256 amount) {
        Withdrawal memory w = _withdrawals[msg.sender];
        require(w.amount != 0, NoPendingWithdrawal(msg.sender));
        require(block.timestamp >= w.executableAt, WithdrawalNotYetExecutable(msg.sender, w.executableAt));
        // A matured request does not wait for the best moment forever: it lapses after the window.
        require(block.timestamp < w.expiresAt, WithdrawalExpired(msg.sender, w.expiresAt));
        delete _withdrawals[msg.sender];
        // Settlements may have charged the funds under notice meanwhile, and debt claims what it is owed: pay out
        // what is left of the request within the free balance.
        Account storage account = _accounts[msg.sender];
        uint256 free = _free(account);
        amount = w.amount < free ? w.amount : free;
        account.balance -= uint96(amount);
        if (amount != 0) _TOKEN.safeTransfer(msg.sender, amount);
        emit Withdrawn(msg.sender, amount);
    }

    /// @inheritdoc IPaymentVault
    function payDebt(address customer, uint256 amount) external whenNotPaused returns (uint256 paid) {
        require(amount != 0, PaymentZeroAmount());
        Account storage account = _accounts[customer];
        uint256 debt = account.outstanding;
        require(debt != 0, NoOutstandingDebt(customer));
        paid = amount < debt ? amount : debt;
        account.outstanding = uint96(debt - paid);
        (uint256 pool, uint256 toTreasury) = _splitDebtPayment(customer, msg.sender, paid, debt - paid, false);
        _TOKEN.safeTransferFrom(msg.sender, address(this), paid);
        _payOut(pool, toTreasury);
    }

    /// @inheritdoc IPaymentVault
    function payDebtFromBalance(uint256 amount) external whenNotPaused returns (uint256 paid) {
        Account storage account = _accounts[msg.sender];
        uint256 balance = account.balance;
        require(balance != 0, PaymentInsufficientBalance(msg.sender, amount, 0));
        require(amount != 0, PaymentZeroAmount());
        uint256 debt = account.outstanding;
        require(debt != 0, NoOutstandingDebt(msg.sender));
        paid = amount < debt ? amount : debt;
        if (balance < paid) paid = balance;
        account.balance = uint96(balance - paid);
        account.outstanding = uint96(debt - paid);
        (uint256 pool, uint256 toTreasury) = _splitDebtPayment(msg.sender, msg.sender, paid, debt - paid, true);
        _payOut(pool, toTreasury);
    }

    /// @inheritdoc IPaymentVault
    function claimReferral(address to) external returns (uint256 amount) {
        require(to != address(0), PaymentZeroAddress());
        amount = _credits[msg.sender];
        require(amount != 0, NoReferralCredit(msg.sender));
        delete _credits[msg.sender];
        _TOKEN.safeTransfer(to, amount);
        emit ReferralClaimed(msg.sender, to, amount);
    }

    // ---------------------------------------------------------------- billing and governance

    /// @inheritdoc IPaymentVault
    function settle(uint32 period, Bill[] calldata bills) external onlyRole(BILLER_ROLE) whenNotPaused {
        require(period <= MAX_PERIOD, PeriodOutOfBounds(period, MAX_PERIOD));
        Params memory p = _params;
        Totals memory t;
        uint256 n = bills.length;
        for (uint256 i = 0; i < n; ++i) {
            _settleBill(period, bills[i], p, t);
        }
        // What the batch newly billed (retried bills are skipped and cost nothing) counts against the biller.
        bytes32 key = bytes32(uint256(uint160(msg.sender)));
        require(
            _billingLimiter.tryConsume(key, t.billed),
            BillingRateLimited(msg.sender, t.billed, _billingLimiter.available(key))
        );
        // Cannot wrap: period <= MAX_PERIOD.
        if (period >= _currentPeriod) _currentPeriod = period + 1;
        // Fixed order, each share rounded down; the treasury takes the remainder, so the shares sum to the charge.
        uint256 pool = (t.charged * p.rewardPoolShareBps) / _BPS;
        uint256 toTreasury = t.charged - t.referrals - pool;
        emit RevenueSplit(period, t.charged, t.referrals, pool, toTreasury);
        _payOut(pool + t.debtPool, toTreasury + t.debtTreasury);
    }

    /// @inheritdoc IPaymentVault
    function setParams(Params calldata params_) external onlyRole(PARAMETER_ADMIN_ROLE) {
        _setParams(params_);
    }

    /// @inheritdoc IPaymentVault
    function setBillingLimit(uint256 window, uint256 capacity) external onlyRole(PARAMETER_ADMIN_ROLE) {
        _setBillingLimit(window, capacity);
    }

    /// @inheritdoc IPaymentVault
    function setTreasury(address treasury_) external onlyRole(PARAMETER_ADMIN_ROLE) {
        _setTreasury(treasury_);
    }

    /// @inheritdoc IPaymentVault
    function setRewardPool(address rewardPool_) external onlyRole(PARAMETER_ADMIN_ROLE) {
        _setRewardPool(rewardPool_);
    }

    /// @inheritdoc IPaymentVault
    function pause() external onlyRole(PAUSER_ROLE) {
        _pause();
    }

    /// @inheritdoc IPaymentVault
    function unpause() external onlyRole(PAUSER_ROLE) {
        _unpause();
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc IPaymentVault
    function token() external view returns (address) {
        return address(_TOKEN);
    }

    /// @inheritdoc IPaymentVault
    function balanceOf(address customer) external view returns (uint256) {
        return _accounts[customer].balance;
    }

    /// @inheritdoc IPaymentVault
    function spendingCap(address customer) external view returns (uint256) {
        return _caps[customer].latest();
    }

    /// @inheritdoc IPaymentVault
    function spendingCapAt(address customer, uint256 period) external view returns (uint256) {
        return _caps[customer].upperLookupRecent(period.toUint48());
    }

    /// @inheritdoc IPaymentVault
    function currentPeriod() external view returns (uint256) {
        return _currentPeriod;
    }

    /// @inheritdoc IPaymentVault
    function referrerOf(address customer) external view returns (address) {
        return _referrers[customer];
    }

    /// @inheritdoc IPaymentVault
    function outstanding(address customer) external view returns (uint256) {
        return _accounts[customer].outstanding;
    }

    /// @inheritdoc IPaymentVault
    function pendingWithdrawal(
        address customer
    ) external view returns (uint256 amount, uint256 executableAt, uint256 expiresAt) {
        Withdrawal memory w = _withdrawals[customer];
        return (w.amount, w.executableAt, w.expiresAt);
    }

    /// @inheritdoc IPaymentVault
    function availableBalance(address customer) external view returns (uint256) {
        return _available(customer);
    }

    /// @inheritdoc IPaymentVault
    function referralCredit(address referrer) external view returns (uint256) {
        return _credits[referrer];
    }

    /// @inheritdoc IPaymentVault
    function isSettled(address customer, uint256 period) external view returns (bool) {
        Account memory account = _accounts[customer];
        if (period >= account.top) return false;
        uint256 k = account.top - 1 - period;
        return k < _WINDOW && (account.window >> k) & 1 == 1;
    }

    /// @inheritdoc IPaymentVault
    function lastSettledPeriod(address customer) external view returns (bool settled, uint256 period) {
        uint256 top = _accounts[customer].top;
        return top == 0 ? (false, 0) : (true, top - 1);
    }

    /// @inheritdoc IPaymentVault
    function isInGoodStanding(address customer) external view returns (bool) {
        return _accounts[customer].outstanding == 0 && (_available(customer) != 0 || _params.freeBuffer != 0);
    }

    /// @inheritdoc IPaymentVault
    function params() external view returns (Params memory) {
        return _params;
    }

    /// @inheritdoc IPaymentVault
    function treasury() external view returns (address) {
        return _treasury;
    }

    /// @inheritdoc IPaymentVault
    function rewardPool() external view returns (address) {
        return _rewardPool;
    }

    /// @inheritdoc IPaymentVault
    function billingLimit() external view returns (uint256 window, uint256 capacity) {
        return (_billingLimiter._window, _billingLimiter._capacity);
    }

    /// @inheritdoc IPaymentVault
    function billingAvailable(address biller) external view returns (uint256) {
        return _billingLimiter.available(bytes32(uint256(uint160(biller))));
    }

    /// @inheritdoc IPaymentVault
    function split(
        uint256 charged,
        bool hasReferrer
    ) external view returns (uint256 referrerShare, uint256 rewardPoolShare, uint256 treasuryShare) {
        Params memory p = _params;
        referrerShare = hasReferrer ? (charged * p.referrerShareBps) / _BPS : 0;
        rewardPoolShare = (charged * p.rewardPoolShareBps) / _BPS;
        treasuryShare = charged - referrerShare - rewardPoolShare;
    }

    // ---------------------------------------------------------------- internal

    /// @dev Credits `customer` and pays its debt from the new balance first.
    function _deposit(address customer, uint256 amount) internal {
        require(customer != address(0), PaymentZeroAddress());
        require(amount != 0, PaymentZeroAmount());
        Account storage account = _accounts[customer];
        uint256 balance = account.balance + amount;
        uint256 debt = account.outstanding;
        uint256 paid = debt < balance ? debt : balance;
        account.balance = (balance - paid).toUint96();
        if (paid != 0) account.outstanding = uint96(debt - paid);
        _TOKEN.safeTransferFrom(msg.sender, address(this), amount);
        emit Deposited(customer, msg.sender, amount);
        if (paid != 0) {
            (uint256 pool, uint256 toTreasury) = _splitDebtPayment(customer, customer, paid, debt - paid, true);
            _payOut(pool, toTreasury);
        }
    }

    /// @dev Settles one bill into the batch's totals: the debt first, then the bill, within the period's cap.
    function _settleBill(uint32 period, Bill calldata bill, Params memory p, Totals memory t) internal {
        address customer = bill.customer;
        Account memory account = _accounts[customer];
        (bool fresh, SkipReason reason) = _markSettled(account, period);
        if (!fresh) {
            emit BillSkipped(customer, period, bill.billHash, reason);
            return;
        }
        uint256 amount = bill.amount;
        uint256 debt = account.outstanding;
        uint256 taken = debt + amount;
        uint256 cap = _caps[customer].upperLookupRecent(period);
        if (cap != 0 && cap < taken) taken = cap;
        if (account.balance < taken) taken = account.balance;
        uint256 debtPaid = taken < debt ? taken : debt;
        uint256 charge = taken - debtPaid;
        // Unchecked: taken <= balance; the debt grows by what the bill left unpaid (checked below).
        unchecked {
            account.balance -= uint96(taken);
            t.billed += amount;
        }
        account.outstanding = (debt + amount - taken).toUint96();
        _accounts[customer] = account;
        if (debtPaid != 0) {
            (uint256 pool, uint256 toTreasury) = _splitDebtPayment(customer, customer, debtPaid, debt - debtPaid, true);
            t.debtPool += pool;
            t.debtTreasury += toTreasury;
        }
        if (charge != 0) {
            address referrer = _referrers[customer];
            uint256 referral = referrer == address(0) ? 0 : (charge * p.referrerShareBps) / _BPS;
            if (referral != 0) {
                _credits[referrer] += referral;
                emit ReferralCredited(referrer, customer, referral);
            }
            // Unchecked: the sums are bounded by the tokens customers deposited (below 2^96).
            unchecked {
                t.charged += charge;
                t.referrals += referral;
            }
        }
        emit BillSettled(customer, period, bill.billHash, amount, charge, amount - charge);
    }

    /// @dev Marks `period` settled in `account` (in memory) unless it already is or is out of the window.
    function _markSettled(Account memory account, uint256 period) internal pure returns (bool, SkipReason) {
        uint256 top = account.top;
        // Unchecked: each subtraction is guarded by the comparison before it; period + 1 fits a uint32 because
        // settle bounds period by MAX_PERIOD.
        unchecked {
            if (period >= top) {
                uint256 shift = period + 1 - top;
                // `top` is 0 for a customer never settled: the shift then empties the window, as it should.
                account.window = shift >= _WINDOW ? 1 : uint32((uint256(account.window) << shift) | 1);
                account.top = uint32(period + 1);
                return (true, SkipReason.AlreadySettled);
            }
            uint256 k = top - 1 - period;
            if (k >= _WINDOW) return (false, SkipReason.PeriodTooOld);
            if ((account.window >> k) & 1 == 1) return (false, SkipReason.AlreadySettled);
            account.window |= uint32(1 << k);
            return (true, SkipReason.AlreadySettled);
        }
    }

    /// @dev Splits a debt payment of `paid` like a charge: credits the referrer and returns the reward pool's and
    /// the treasury's shares, which the caller pays out once it has the tokens.
    function _splitDebtPayment(
        address customer,
        address payer,
        uint256 paid,
        uint256 outstandingAfter,
        bool fromBalance
    ) internal returns (uint256 pool, uint256 toTreasury) {
        Params memory p = _params;
        address referrer = _referrers[customer];
        uint256 referral = referrer == address(0) ? 0 : (paid * p.referrerShareBps) / _BPS;
        if (referral != 0) {
            _credits[referrer] += referral;
            emit ReferralCredited(referrer, customer, referral);
        }
        pool = (paid * p.rewardPoolShareBps) / _BPS;
        toTreasury = paid - referral - pool;
        emit DebtPaid(customer, payer, paid, outstandingAfter, referral, pool, toTreasury, fromBalance);
    }

    function _payOut(uint256 pool, uint256 toTreasury) internal {
        if (pool != 0) _TOKEN.safeTransfer(_rewardPool, pool);
        if (toTreasury != 0) _TOKEN.safeTransfer(_treasury, toTreasury);
    }

    function _setParams(Params memory params_) internal {
        require(
            params_.referrerShareBps <= MAX_REFERRER_SHARE_BPS &&
                params_.rewardPoolShareBps <= MAX_REWARD_POOL_SHARE_BPS &&
                params_.withdrawalNotice >= MIN_WITHDRAWAL_NOTICE &&
                params_.withdrawalNotice <= MAX_WITHDRAWAL_NOTICE &&
                params_.withdrawalWindow >= MIN_WITHDRAWAL_WINDOW &&
                params_.withdrawalWindow <= MAX_WITHDRAWAL_WINDOW,
            ParamsOutOfBounds(params_)
        );
        _params = params_;
        emit ParamsSet(params_);
    }

    function _setBillingLimit(uint256 window, uint256 capacity) internal {
        require(
            window >= MIN_BILLING_WINDOW &&
                window <= MAX_BILLING_WINDOW &&
                capacity != 0 &&
                capacity <= type(uint96).max,
            BillingLimitOutOfBounds(window, capacity)
        );
        _billingLimiter.updateSettings(uint48(window), uint208(capacity));
        emit BillingLimitSet(window, capacity);
    }

    function _setTreasury(address treasury_) internal {
        require(treasury_ != address(0), PaymentZeroAddress());
        _treasury = treasury_;
        emit TreasurySet(treasury_);
    }

    function _setRewardPool(address rewardPool_) internal {
        require(rewardPool_ != address(0), PaymentZeroAddress());
        _rewardPool = rewardPool_;
        emit RewardPoolSet(rewardPool_);
    }

    /// @dev The balance that debt does not claim.
    function _free(Account memory account) private pure returns (uint256) {
        return account.balance > account.outstanding ? account.balance - account.outstanding : 0;
    }

    /// @dev The free balance less an executable withdrawal (saturating at 0).
    function _available(address customer) private view returns (uint256) {
        uint256 free = _free(_accounts[customer]);
        Withdrawal memory w = _withdrawals[customer];
        if (block.timestamp < w.executableAt || block.timestamp >= w.expiresAt) return free;
        return w.amount < free ? free - w.amount : 0;
    }
}
