// SPDX-License-Identifier: MIT
pragma solidity ^0.8.27;

/**
 * @title IConfigRegistry
 * @notice The chain's anchor for the network configuration (issue 17, docs/control-plane.md "Anchoring"). Each
 * version of the NetworkConfig document is published as (version, hash): the hash is keccak-256 of the
 * document's canonical bytes (offchain/common/protocol/netConfig.ts `documentHash`). A node applies a snapshot
 * only if its hash equals {hashOf} of its version, so no stargate can feed a forged or an old configuration.
 *
 * Versions are consecutive from 1: each publication is exactly the latest version + 1, which keeps the history
 * gap-free (every version a node may hold is anchored) and makes two publishers racing for the same number fail
 * loudly instead of silently skipping one. Between anchored versions, stargates push deltas signed by a key
 * that holds {DELTA_SIGNER_ROLE} ({isDeltaSigner}); the next anchored version folds them in.
 */
interface IConfigRegistry {
    // ---------------------------------------------------------------- events

    /// @notice Version `version` of the configuration, whose canonical document hashes to `hash`, was anchored
    /// by `publisher`.
    event ConfigPublished(uint64 indexed version, bytes32 hash, address indexed publisher);

    // ---------------------------------------------------------------- errors

    /// @notice `version` is not the next version: the latest anchored version + 1 is `expected`.
    error ConfigVersionNotNext(uint64 version, uint64 expected);

    /// @notice The zero hash cannot be anchored: {hashOf} answers zero for "not anchored".
    error ConfigHashZero();

    // ---------------------------------------------------------------- publishing

    /**
     * @notice Anchors version `version` of the configuration with the hash of its canonical document.
     * @dev Only PUBLISHER_ROLE. Reverts with {ConfigVersionNotNext} unless `version` is the latest + 1 (1 for the
     * first) and with {ConfigHashZero} for a zero hash. Emits {ConfigPublished}.
     * @param version The document's version.
     * @param hash keccak-256 of the document's canonical bytes.
     */
    function publish(uint64 version, bytes32 hash) external;

    // ---------------------------------------------------------------- views

    /// @notice The role that may {publish} versions.
    // solhint-disable-next-line func-name-mixedcase
    function PUBLISHER_ROLE() external view returns (bytes32);

    /// @notice The role whose holders' signatures make a configuration delta valid between anchored versions.
    // solhint-disable-next-line func-name-mixedcase
    function DELTA_SIGNER_ROLE() external view returns (bytes32);

    /**
     * @notice The latest anchored version and its hash.
     * @return version The latest version, 0 when nothing is published yet.
     * @return hash Its hash, zero when nothing is published yet.
     */
    function latest() external view returns (uint64 version, bytes32 hash);

    /// @notice The hash anchored for `version`, zero when that version is not anchored.
    function hashOf(uint64 version) external view returns (bytes32);

    /// @notice Whether `account` holds {DELTA_SIGNER_ROLE}, i.e. may sign configuration deltas.
    function isDeltaSigner(address account) external view returns (bool);
}
