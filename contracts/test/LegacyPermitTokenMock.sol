// SPDX-License-Identifier: MIT
pragma solidity ^0.8.27;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Burnable} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Burnable.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";

/// @dev A legacy token with ERC-2612 permit and burnFrom.
contract LegacyPermitTokenMock is ERC20Burnable, ERC20Permit {
    uint8 private immutable _DECIMALS;

    constructor(
        uint8 decimals_,
        address holder,
        uint256 supply
    ) ERC20("Legacy Edge Permit", "EDGP") ERC20Permit("Legacy Edge Permit") {
        _DECIMALS = decimals_;
        _mint(holder, supply);
    }

    function decimals() public view override returns (uint8) {
        return _DECIMALS;
    }
}
