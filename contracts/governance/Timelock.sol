// SPDX-License-Identifier: MIT
pragma solidity ^0.8.27;

/**
 * @dev OpenZeppelin's TimelockController, unchanged: importing it here makes Hardhat compile it and write its
 * artifact, which the Timelock Ignition module (scripts/deploy/modules/Timelock.ts) and the gov:* tasks use.
 * deploy:protocol makes it the admin of StakeManager, RewardsManager and PaymentVault and the holder of their
 * parameter roles (docs/decisions.md D37).
 */
// solhint-disable-next-line no-unused-import
import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";
