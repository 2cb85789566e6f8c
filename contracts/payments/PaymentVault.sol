// SPDX-License-Identifier: MIT
pragma solidity ^0.8.27;

import {AccessControlDefaultAdminRules} from "@openzeppelin/contracts/access/extensions/AccessControlDefaultAdminRules.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";

import {IPaymentVault} from "../interfaces/IPaymentVault.sol";

/**
 * @title PaymentVault
 * @notice Prepaid balances, period settlement of itemised bills, referral credits. See {IPaymentVault}.
 *
 * Settling a bill touches the customer's account slot (balance, cap and a 32-period window of settled periods,
 * which makes "at most once per (customer, period)" one read and one write), reads the profile slot (referrer,
 * debt) only when it needs it, and credits the referrer. The reward pool's and the treasury's shares leave the
 * vault once per batch. No reentrancy guard: the token is the Edge ERC-20 (no hooks) and every function changes
 * state before moving tokens.
 */
contract PaymentVault is IPaymentVault, AccessControlDefaultAdminRules, Pausable {
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

    uint256 private constant _BPS = 10_000;
    uint256 private constant _WINDOW = 32;

    IERC20 private immutable _TOKEN;

    // ---------------------------------------------------------------- storage

    /// @dev What settling reads and writes. Bit k of `window` is period `top - 1 - k`.
    struct Account {
        uint96 balance;
        uint96 cap; // 0: no cap
        uint32 top; // latest settled period + 1; 0 when none
        uint32 window;
    }

    struct Profile {
        address referrer;
        uint96 outstanding;
    }

    struct Withdrawal {
        uint96 amount;
        uint40 executableAt;
    }

    // Declared first so it packs into Pausable's slot (Pausable is the last base): a batch reads the pause flag
    // and the split with one storage read.
    Params private _params;

    address private _treasury;
    address private _rewardPool;
    mapping(address customer => Account) private _accounts;
    mapping(address customer => Profile) private _profiles;
    mapping(address customer => Withdrawal) private _withdrawals;
    mapping(address referrer => uint256 amount) private _credits;

    // ---------------------------------------------------------------- constructor

    /**
     * @param token_ The payment token (EdgeToken).
     * @param admin The default admin (can be a timelock); transfers are two-step with `adminDelay`.
     * @param treasury_ Receives the treasury's share of every charge.
     * @param rewardPool_ Receives the reward pool's share (RewardsManager).
     */
    constructor(
        IERC20 token_,
        address admin,
        uint48 adminDelay,
        address treasury_,
        address rewardPool_,
        Params memory params_
    ) AccessControlDefaultAdminRules(adminDelay, admin) {
        require(address(token_) != address(0), PaymentZeroAddress());
        _TOKEN = token_;
        _setTreasury(treasury_);
        _setRewardPool(rewardPool_);
        _setParams(params_);
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
        _accounts[msg.sender].cap = cap.toUint96();
        emit SpendingCapSet(msg.sender, cap);
    }

    /// @inheritdoc IPaymentVault
    function setReferrer(address referrer) external {
        require(referrer != address(0), PaymentZeroAddress());
        require(referrer != msg.sender, SelfReferral(msg.sender));
        Profile storage profile = _profiles[msg.sender];
        require(profile.referrer == address(0), ReferrerAlreadySet(msg.sender, profile.referrer));
        profile.referrer = referrer;
        emit ReferrerSet(msg.sender, referrer);
    }

    /// @inheritdoc IPaymentVault
    function requestWithdrawal(uint256 amount) external {
        require(amount != 0, PaymentZeroAmount());
        uint256 balance = _accounts[msg.sender].balance;
        require(amount <= balance, PaymentInsufficientBalance(msg.sender, amount, balance));
        uint256 executableAt = block.timestamp + _params.withdrawalNotice;
        _withdrawals[msg.sender] = Withdrawal({amount: uint96(amount), executableAt: uint40(executableAt)});
        emit WithdrawalRequested(msg.sender, amount, executableAt);
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
        delete _withdrawals[msg.sender];
        // Settlements may have charged the funds under notice meanwhile: pay out what is left of them.
        Account storage account = _accounts[msg.sender];
        uint256 balance = account.balance;
        amount = w.amount < balance ? w.amount : balance;
        account.balance = uint96(balance - amount);
        if (amount != 0) _TOKEN.safeTransfer(msg.sender, amount);
        emit Withdrawn(msg.sender, amount);
    }

    /// @inheritdoc IPaymentVault
    function payDebt(address customer, uint256 amount) external whenNotPaused returns (uint256 paid) {
        uint256 pool;
        uint256 toTreasury;
        (paid, pool, toTreasury) = _payDebt(customer, amount);
        _TOKEN.safeTransferFrom(msg.sender, address(this), paid);
        _payOut(pool, toTreasury);
    }

    /// @inheritdoc IPaymentVault
    function payDebtFromBalance(uint256 amount) external whenNotPaused returns (uint256 paid) {
        Account storage account = _accounts[msg.sender];
        uint256 balance = account.balance;
        require(balance != 0, PaymentInsufficientBalance(msg.sender, amount, 0));
        uint256 pool;
        uint256 toTreasury;
        (paid, pool, toTreasury) = _payDebt(msg.sender, amount < balance ? amount : balance);
        account.balance = uint96(balance - paid);
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
        Params memory p = _params;
        uint256 charged;
        uint256 referrals;
        uint256 n = bills.length;
        for (uint256 i = 0; i < n; ++i) {
            (uint256 charge, uint256 referral) = _settleBill(period, bills[i], p);
            // Unchecked: the sums are bounded by the tokens customers deposited (below 2^96).
            unchecked {
                charged += charge;
                referrals += referral;
            }
        }
        // Fixed order, each share rounded down; the treasury takes the remainder, so the shares sum to the charge.
        uint256 pool = (charged * p.rewardPoolShareBps) / _BPS;
        uint256 toTreasury = charged - referrals - pool;
        emit RevenueSplit(period, charged, referrals, pool, toTreasury);
        _payOut(pool, toTreasury);
    }

    /// @inheritdoc IPaymentVault
    function setParams(Params calldata params_) external onlyRole(PARAMETER_ADMIN_ROLE) {
        _setParams(params_);
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
        return _accounts[customer].cap;
    }

    /// @inheritdoc IPaymentVault
    function referrerOf(address customer) external view returns (address) {
        return _profiles[customer].referrer;
    }

    /// @inheritdoc IPaymentVault
    function outstanding(address customer) external view returns (uint256) {
        return _profiles[customer].outstanding;
    }

    /// @inheritdoc IPaymentVault
    function pendingWithdrawal(address customer) external view returns (uint256 amount, uint256 executableAt) {
        Withdrawal memory w = _withdrawals[customer];
        return (w.amount, w.executableAt);
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
        return _profiles[customer].outstanding == 0 && (_accounts[customer].balance != 0 || _params.freeBuffer != 0);
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

    function _deposit(address customer, uint256 amount) internal {
        require(customer != address(0), PaymentZeroAddress());
        require(amount != 0, PaymentZeroAmount());
        Account storage account = _accounts[customer];
        account.balance = (account.balance + amount).toUint96();
        _TOKEN.safeTransferFrom(msg.sender, address(this), amount);
        emit Deposited(customer, msg.sender, amount);
    }

    /// @dev Settles one bill; returns what it charged and the referrer's credit out of it.
    function _settleBill(
        uint32 period,
        Bill calldata bill,
        Params memory p
    ) internal returns (uint256 charge, uint256 referral) {
        address customer = bill.customer;
        Account memory account = _accounts[customer];
        (bool fresh, SkipReason reason) = _markSettled(account, period);
        if (!fresh) {
            emit BillSkipped(customer, period, bill.billHash, reason);
            return (0, 0);
        }
        uint256 amount = bill.amount;
        charge = amount;
        if (account.cap != 0 && account.cap < charge) charge = account.cap;
        if (account.balance < charge) charge = account.balance;
        // Unchecked: charge <= balance and charge <= amount.
        unchecked {
            account.balance -= uint96(charge);
        }
        _accounts[customer] = account;
        uint256 shortfall = amount - charge;
        if (charge != 0 || shortfall != 0) {
            Profile storage profile = _profiles[customer];
            address referrer = profile.referrer;
            if (shortfall != 0) profile.outstanding += uint96(shortfall);
            if (referrer != address(0) && charge != 0) {
                referral = (charge * p.referrerShareBps) / _BPS;
                if (referral != 0) {
                    _credits[referrer] += referral;
                    emit ReferralCredited(referrer, customer, referral);
                }
            }
        }
        emit BillSettled(customer, period, bill.billHash, amount, charge, shortfall);
    }

    /// @dev Marks `period` settled in `account` (in memory) unless it already is or is out of the window.
    function _markSettled(Account memory account, uint256 period) internal pure returns (bool, SkipReason) {
        uint256 top = account.top;
        // Unchecked: each subtraction is guarded by the comparison before it; periods are uint32.
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

    /// @dev Reduces `customer`'s debt by up to `amount` and splits the payment like a charge: credits the
    /// referrer and returns the paid amount with the reward pool's and the treasury's shares, which the caller
    /// pays out once it has the tokens (from the payer's wallet, or the customer's balance).
    function _payDebt(
        address customer,
        uint256 amount
    ) internal returns (uint256 paid, uint256 pool, uint256 toTreasury) {
        require(amount != 0, PaymentZeroAmount());
        Profile storage profile = _profiles[customer];
        uint256 debt = profile.outstanding;
        require(debt != 0, NoOutstandingDebt(customer));
        paid = amount < debt ? amount : debt;
        profile.outstanding = uint96(debt - paid);
        Params memory p = _params;
        address referrer = profile.referrer;
        uint256 referral = referrer == address(0) ? 0 : (paid * p.referrerShareBps) / _BPS;
        if (referral != 0) {
            _credits[referrer] += referral;
            emit ReferralCredited(referrer, customer, referral);
        }
        pool = (paid * p.rewardPoolShareBps) / _BPS;
        toTreasury = paid - referral - pool;
        emit DebtPaid(customer, msg.sender, paid, debt - paid, referral, pool, toTreasury);
    }

    function _payOut(uint256 pool, uint256 toTreasury) internal {
        if (pool != 0) _TOKEN.safeTransfer(_rewardPool, pool);
        if (toTreasury != 0) _TOKEN.safeTransfer(_treasury, toTreasury);
    }

    function _setParams(Params memory params_) internal {
        require(
            params_.referrerShareBps <= MAX_REFERRER_SHARE_BPS &&
                params_.rewardPoolShareBps <= MAX_REWARD_POOL_SHARE_BPS &&
                params_.withdrawalNotice <= MAX_WITHDRAWAL_NOTICE,
            ParamsOutOfBounds(params_)
        );
        _params = params_;
        emit ParamsSet(params_);
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
}
