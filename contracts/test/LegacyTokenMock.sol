// SPDX-License-Identifier: MIT
pragma solidity ^0.8.27;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @dev A legacy token without permit or burn, with any number of decimals (the old EDG token had 0).
contract LegacyTokenMock is ERC20 {
    uint8 private immutable _DECIMALS;

    constructor(uint8 decimals_, address holder, uint256 supply) ERC20("Legacy Edge", "EDGL") {
        _DECIMALS = decimals_;
        _mint(holder, supply);
    }

    function decimals() public view override returns (uint8) {
        return _DECIMALS;
    }
}
