// SPDX-License-Identifier: MIT
pragma solidity ^0.8.27;

/**
 * @title ITokenMigration
 * @notice Swaps the legacy Edge ERC-20 for the reissued EdgeToken at a fixed rate until a deadline. Legacy tokens
 * are burned when the legacy token is burnable, otherwise locked here for good. After the deadline, what is left
 * of the new-token reserve goes to the treasury.
 *
 * Rate: `amount = floor(legacyAmount * RATE_NUMERATOR * 10**decimals() / (RATE_DENOMINATOR * 10**legacyDecimals))`,
 * i.e. RATE_NUMERATOR / RATE_DENOMINATOR whole new tokens per whole legacy token, whatever the decimals.
 */
interface ITokenMigration {
    /// @notice `account` gave `legacyAmount` legacy tokens and received `amount` new tokens.
    event Migrated(address indexed account, uint256 legacyAmount, uint256 amount);

    /// @notice After the deadline, `amount` new tokens left in the reserve went to `treasury`.
    event RemainderSwept(address indexed treasury, uint256 amount);

    /// @notice The migration window closed at `deadline`.
    error MigrationEnded(uint256 deadline);

    /// @notice The remainder can only be swept after `deadline`.
    error MigrationNotEnded(uint256 deadline);

    /// @notice `legacyAmount` converts to zero new tokens.
    error MigrationAmountTooSmall(uint256 legacyAmount);

    /// @notice The reserve holds `available` new tokens, `needed` are required.
    error MigrationReserveExhausted(uint256 needed, uint256 available);

    /// @notice A constructor argument is invalid.
    error MigrationInvalidConfig();

    /// @notice Swaps `legacyAmount` legacy tokens (the caller needs to have approved them).
    function migrate(uint256 legacyAmount) external returns (uint256 amount);

    /// @notice {migrate} with the legacy token's ERC-2612 permit, in one transaction. A permit that was front-run
    /// is ignored when the allowance is already there.
    function migrateWithPermit(
        uint256 legacyAmount,
        uint256 deadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external returns (uint256 amount);

    /// @notice Sends the remaining new tokens to the treasury. Anyone may call it after the deadline.
    function sweep() external returns (uint256 amount);

    /// @notice How many new tokens `legacyAmount` legacy tokens buy.
    function quote(uint256 legacyAmount) external view returns (uint256);

    function legacyToken() external view returns (address);

    function token() external view returns (address);

    function treasury() external view returns (address);

    function deadline() external view returns (uint256);

    /// @notice The rate as a fraction: new whole tokens per legacy whole token.
    function rate() external view returns (uint256 numerator, uint256 denominator);

    /// @notice Whether legacy tokens are burned (true) or locked in this contract (false).
    function burnsLegacy() external view returns (bool);
}
