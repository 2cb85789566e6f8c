// SPDX-License-Identifier: MIT
pragma solidity ^0.8.27;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";

import {IEdgeToken} from "../interfaces/IEdgeToken.sol";

/**
 * @title EdgeToken
 * @notice The reissued Edge token (EDGE, 18 decimals). See {IEdgeToken}.
 */
contract EdgeToken is IEdgeToken, ERC20Permit {
    /// @param recipient Receives the whole supply (the treasury, which funds the migration reserve).
    /// @param supply The fixed total supply in base units.
    constructor(address recipient, uint256 supply) ERC20("Edge", "EDGE") ERC20Permit("Edge") {
        // Staking and payments pack amounts into 96 bits; a supply that fits makes every amount fit.
        require(supply <= type(uint96).max, EdgeTokenSupplyTooLarge(supply, type(uint96).max));
        _mint(recipient, supply);
    }
}
