// SPDX-License-Identifier: MIT
pragma solidity ^0.8.27;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {ERC20Burnable} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Burnable.sol";
import {IERC20Metadata} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Metadata.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";

import {ITokenMigration} from "../interfaces/ITokenMigration.sol";

/**
 * @title TokenMigration
 * @notice Legacy Edge ERC-20 -> EdgeToken at a fixed rate until a deadline. See {ITokenMigration}.
 * Nothing here is governed: rate, deadline, treasury and burn mode are fixed at deployment.
 */
contract TokenMigration is ITokenMigration {
    using SafeERC20 for IERC20;

    /// @dev 10**36 still multiplies with any realistic rate without overflow in mulDiv's 512-bit product.
    uint8 private constant _MAX_DECIMALS = 36;

    IERC20 private immutable _LEGACY;
    IERC20 private immutable _TOKEN;
    address private immutable _TREASURY;
    uint256 private immutable _DEADLINE;
    uint256 private immutable _RATE_NUMERATOR;
    uint256 private immutable _RATE_DENOMINATOR;
    bool private immutable _BURNS_LEGACY;
    // The rate scaled by both tokens' decimals, so a quote is one mulDiv.
    uint256 private immutable _SCALED_NUMERATOR;
    uint256 private immutable _SCALED_DENOMINATOR;

    /**
     * @param legacy The legacy token.
     * @param token_ The new token; this contract must be funded with the reserve after deployment.
     * @param treasury_ Receives the remainder after the deadline.
     * @param deadline_ Last timestamp at which {migrate} works.
     * @param rateNumerator New whole tokens per `rateDenominator` legacy whole tokens.
     * @param burnLegacy Burn legacy tokens with `burnFrom` (the legacy token must be ERC20Burnable) instead of
     * locking them here.
     */
    constructor(
        IERC20Metadata legacy,
        IERC20Metadata token_,
        address treasury_,
        uint256 deadline_,
        uint256 rateNumerator,
        uint256 rateDenominator,
        bool burnLegacy
    ) {
        uint8 legacyDecimals = legacy.decimals();
        uint8 tokenDecimals = token_.decimals();
        require(
            address(legacy) != address(token_) &&
                treasury_ != address(0) &&
                deadline_ > block.timestamp &&
                rateNumerator != 0 &&
                rateDenominator != 0 &&
                rateNumerator <= type(uint128).max &&
                rateDenominator <= type(uint128).max &&
                legacyDecimals <= _MAX_DECIMALS &&
                tokenDecimals <= _MAX_DECIMALS,
            MigrationInvalidConfig()
        );
        _LEGACY = legacy;
        _TOKEN = token_;
        _TREASURY = treasury_;
        _DEADLINE = deadline_;
        _RATE_NUMERATOR = rateNumerator;
        _RATE_DENOMINATOR = rateDenominator;
        _BURNS_LEGACY = burnLegacy;
        _SCALED_NUMERATOR = rateNumerator * 10 ** tokenDecimals;
        _SCALED_DENOMINATOR = rateDenominator * 10 ** legacyDecimals;
    }

    /// @inheritdoc ITokenMigration
    function migrate(uint256 legacyAmount) external returns (uint256) {
        return _migrate(legacyAmount);
    }

    /// @inheritdoc ITokenMigration
    function migrateWithPermit(
        uint256 legacyAmount,
        uint256 deadline_,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external returns (uint256) {
        // A front-run permit reverts here but has already set the allowance; the transfer then decides.
        try
            IERC20Permit(address(_LEGACY)).permit(msg.sender, address(this), legacyAmount, deadline_, v, r, s)
        {} catch {} // solhint-disable-line no-empty-blocks
        return _migrate(legacyAmount);
    }

    /// @inheritdoc ITokenMigration
    function sweep() external returns (uint256 amount) {
        require(block.timestamp > _DEADLINE, MigrationNotEnded(_DEADLINE));
        amount = _TOKEN.balanceOf(address(this));
        _TOKEN.safeTransfer(_TREASURY, amount);
        emit RemainderSwept(_TREASURY, amount);
    }

    /// @inheritdoc ITokenMigration
    function quote(uint256 legacyAmount) public view returns (uint256) {
        // Round down: the reserve never pays out more than the rate allows.
        return Math.mulDiv(legacyAmount, _SCALED_NUMERATOR, _SCALED_DENOMINATOR);
    }

    /// @inheritdoc ITokenMigration
    function legacyToken() external view returns (address) {
        return address(_LEGACY);
    }

    /// @inheritdoc ITokenMigration
    function token() external view returns (address) {
        return address(_TOKEN);
    }

    /// @inheritdoc ITokenMigration
    function treasury() external view returns (address) {
        return _TREASURY;
    }

    /// @inheritdoc ITokenMigration
    function deadline() external view returns (uint256) {
        return _DEADLINE;
    }

    /// @inheritdoc ITokenMigration
    function rate() external view returns (uint256 numerator, uint256 denominator) {
        return (_RATE_NUMERATOR, _RATE_DENOMINATOR);
    }

    /// @inheritdoc ITokenMigration
    function burnsLegacy() external view returns (bool) {
        return _BURNS_LEGACY;
    }

    function _migrate(uint256 legacyAmount) internal returns (uint256 amount) {
        require(block.timestamp <= _DEADLINE, MigrationEnded(_DEADLINE));
        amount = quote(legacyAmount);
        require(amount != 0, MigrationAmountTooSmall(legacyAmount));
        uint256 available = _TOKEN.balanceOf(address(this));
        require(amount <= available, MigrationReserveExhausted(amount, available));
        if (_BURNS_LEGACY) {
            ERC20Burnable(address(_LEGACY)).burnFrom(msg.sender, legacyAmount);
        } else {
            _LEGACY.safeTransferFrom(msg.sender, address(this), legacyAmount);
        }
        _TOKEN.safeTransfer(msg.sender, amount);
        emit Migrated(msg.sender, legacyAmount, amount);
    }
}
