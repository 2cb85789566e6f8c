// SPDX-License-Identifier: MIT
pragma solidity ^0.8.27;

import {AccessControlDefaultAdminRules} from "@openzeppelin/contracts/access/extensions/AccessControlDefaultAdminRules.sol";

import {IConfigRegistry} from "../interfaces/IConfigRegistry.sol";

/**
 * @title ConfigRegistry
 * @notice Anchors the network configuration's versions on-chain. See {IConfigRegistry}.
 *
 * A contract of its own rather than a role on an existing one: the configuration's publishers and delta signers
 * are operational keys that change more often than the staking or payment parameters, and the registry holds no
 * tokens, so its admin (the timelock in production) can grant and revoke them without touching anything that
 * does. Publishing writes one new slot (the version's hash) and updates the latest version.
 */
contract ConfigRegistry is IConfigRegistry, AccessControlDefaultAdminRules {
    // ---------------------------------------------------------------- constants

    /// @inheritdoc IConfigRegistry
    bytes32 public constant PUBLISHER_ROLE = keccak256("PUBLISHER_ROLE");
    /// @inheritdoc IConfigRegistry
    bytes32 public constant DELTA_SIGNER_ROLE = keccak256("DELTA_SIGNER_ROLE");

    // ---------------------------------------------------------------- storage

    uint64 private _latestVersion;
    mapping(uint64 version => bytes32 hash) private _hashes;

    // ---------------------------------------------------------------- constructor

    /**
     * @param admin The default admin (can be a timelock): grants and revokes the publisher and delta-signer roles;
     * transfers are two-step with `adminDelay`.
     * @param publisher Gets PUBLISHER_ROLE and DELTA_SIGNER_ROLE at once (the zero address: none; the admin grants
     * them later), so a deployment whose admin is a timelock can publish without waiting for its delay.
     */
    constructor(address admin, uint48 adminDelay, address publisher) AccessControlDefaultAdminRules(adminDelay, admin) {
        if (publisher != address(0)) {
            _grantRole(PUBLISHER_ROLE, publisher);
            _grantRole(DELTA_SIGNER_ROLE, publisher);
        }
    }

    // ---------------------------------------------------------------- external

    /// @inheritdoc IConfigRegistry
    function publish(uint64 version, bytes32 hash) external onlyRole(PUBLISHER_ROLE) {
        // Cannot overflow: reaching type(uint64).max takes 2^64 transactions.
        uint64 expected = _latestVersion + 1;
        require(version == expected, ConfigVersionNotNext(version, expected));
        require(hash != bytes32(0), ConfigHashZero());
        _publish(version, hash);
    }

    /// @inheritdoc IConfigRegistry
    function latest() external view returns (uint64 version, bytes32 hash) {
        version = _latestVersion;
        hash = _hashes[version];
    }

    /// @inheritdoc IConfigRegistry
    function hashOf(uint64 version) external view returns (bytes32) {
        return _hashes[version];
    }

    /// @inheritdoc IConfigRegistry
    function isDeltaSigner(address account) external view returns (bool) {
        return hasRole(DELTA_SIGNER_ROLE, account);
    }

    // ---------------------------------------------------------------- internal

    function _publish(uint64 version, bytes32 hash) internal {
        _latestVersion = version;
        _hashes[version] = hash;
        emit ConfigPublished(version, hash, msg.sender);
    }
}
