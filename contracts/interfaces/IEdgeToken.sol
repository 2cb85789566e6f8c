// SPDX-License-Identifier: MIT
pragma solidity ^0.8.27;

/**
 * @title IEdgeToken
 * @notice The reissued Edge token: ERC-20 (IERC20Metadata) with ERC-2612 permit (IERC20Permit) and a fixed
 * supply minted once at deployment. Nothing can mint or burn afterwards, so balances always sum to totalSupply.
 */
interface IEdgeToken {
    /// @notice The supply does not fit the 96-bit amounts the protocol's contracts pack into storage.
    error EdgeTokenSupplyTooLarge(uint256 supply, uint256 maximum);
}
