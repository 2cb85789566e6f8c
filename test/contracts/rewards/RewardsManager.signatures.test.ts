/** RewardsManager: a score batch needs the threshold of the current committee's signatures over its EIP-712 digest. */
import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { anyValue } from "@nomicfoundation/hardhat-chai-matchers/withArgs";

import { committeeWallets, deployRewards, postBatch, signBatch } from "../../shared/fixtures";
import { DAY, StakeType } from "../../shared/constants";
import { packEntries } from "../../../offchain/common/scoreBatch";
import { HOST } from "./helpers";

describe("RewardsManager", function () {
  describe("#postScores", function () {
    describe("signatures", function () {
      async function thresholdTwo() {
        const f = await deployRewards({ threshold: 2, epochDuration: DAY });
        await f.token.connect(f.alice).approve(await f.staking.getAddress(), HOST);
        await f.staking.connect(f.alice).stake(StakeType.Host, HOST);
        await time.increaseTo(f.genesis + 2n * DAY);
        return f;
      }
      const entries = [{ stakeId: 1n, score: 10_000n }];

      it("accepts threshold signatures in any order, and more than the threshold", async function () {
        const f = await loadFixture(thresholdTwo);
        const [a, b, c] = f.committee;
        await expect(postBatch(f, 1n, entries, { signers: [b, a] })).to.emit(f.rewards, "ScoresPosted");
        await expect(postBatch(f, 1n, entries, { batchIndex: 1n, signers: [c, a, b] })).to.emit(
          f.rewards,
          "ScoresPosted",
        );
      });

      it("rejects threshold - 1 signatures", async function () {
        const f = await loadFixture(thresholdTwo);
        await expect(postBatch(f, 1n, entries, { signers: [f.committee[0]] }))
          .to.be.revertedWithCustomError(f.rewards, "NotEnoughSignatures")
          .withArgs(1n, 2n);
      });

      it("rejects a duplicated signer", async function () {
        const f = await loadFixture(thresholdTwo);
        const a = f.committee[0];
        await expect(postBatch(f, 1n, entries, { signers: [a, a] }))
          .to.be.revertedWithCustomError(f.rewards, "DuplicateSigner")
          .withArgs(a.address);
      });

      it("rejects a non-member and a malformed signature", async function () {
        const f = await loadFixture(thresholdTwo);
        const outsider = committeeWallets()[3];
        await expect(postBatch(f, 1n, entries, { signers: [f.committee[0], outsider] }))
          .to.be.revertedWithCustomError(f.rewards, "SignerNotInCommittee")
          .withArgs(outsider.address);
        const { packed, signatures } = await signBatch(f.rewards, f.committee.slice(0, 2), 1n, 0n, entries);
        await expect(f.rewards.postScores(1n, 0n, packed, [signatures[0], "0x1234"]))
          .to.be.revertedWithCustomError(f.rewards, "SignerNotInCommittee")
          .withArgs(ethers.ZeroAddress);
      });

      it("rejects signatures for another chain, contract, epoch, batch or entries", async function () {
        const f = await loadFixture(thresholdTwo);
        const signers = f.committee.slice(0, 2);
        for (const domain of [{ chainId: 1n }, { verifyingContract: await f.staking.getAddress() }]) {
          const { packed, signatures } = await signBatch(f.rewards, signers, 1n, 0n, entries, { domain });
          await expect(f.rewards.postScores(1n, 0n, packed, signatures))
            .to.be.revertedWithCustomError(f.rewards, "SignerNotInCommittee")
            .withArgs(anyValue);
        }
        const { packed, signatures } = await signBatch(f.rewards, signers, 1n, 0n, entries);
        await expect(f.rewards.postScores(0n, 0n, packed, signatures)).to.be.revertedWithCustomError(
          f.rewards,
          "SignerNotInCommittee",
        );
        await expect(f.rewards.postScores(1n, 1n, packed, signatures)).to.be.revertedWithCustomError(
          f.rewards,
          "SignerNotInCommittee",
        );
        const other = packEntries([{ stakeId: 1n, score: 20_000n }]);
        await expect(f.rewards.postScores(1n, 0n, other, signatures)).to.be.revertedWithCustomError(
          f.rewards,
          "SignerNotInCommittee",
        );
      });

      it("rejects signatures made for an earlier committee", async function () {
        const f = await loadFixture(thresholdTwo);
        const [a, b, c] = f.committee;
        const old = await signBatch(f.rewards, [a, b], 1n, 0n, entries);
        await expect(f.rewards.connect(f.parameterAdmin).setCommittee([a.address, c.address], 2))
          .to.emit(f.rewards, "CommitteeSet")
          .withArgs(2n, [a.address, c.address], 2n);
        expect(await f.rewards.isCommitteeMember(b.address)).to.equal(false);
        expect(await f.rewards.isCommitteeMember(c.address)).to.equal(true);
        // Same members a and b, but signed for version 1.
        await expect(f.rewards.postScores(1n, 0n, old.packed, old.signatures)).to.be.revertedWithCustomError(
          f.rewards,
          "SignerNotInCommittee",
        );
        // b signing for version 2 is no longer a member.
        await expect(postBatch(f, 1n, entries, { signers: [a, b] }))
          .to.be.revertedWithCustomError(f.rewards, "SignerNotInCommittee")
          .withArgs(b.address);
        await expect(postBatch(f, 1n, entries, { signers: [c, a] })).to.emit(f.rewards, "ScoresPosted");
      });

      it("digest is the EIP-712 typed data hash", async function () {
        const f = await loadFixture(thresholdTwo);
        const [, name, version, chainId, verifyingContract] = await f.rewards.eip712Domain();
        expect(name).to.equal("Edge RewardsManager");
        const hash = ethers.keccak256("0x1234");
        const expectedDigest = ethers.TypedDataEncoder.hash(
          { name, version, chainId, verifyingContract },
          {
            ScoreBatch: [
              { name: "epoch", type: "uint256" },
              { name: "batchIndex", type: "uint256" },
              { name: "entriesHash", type: "bytes32" },
              { name: "committeeVersion", type: "uint256" },
            ],
          },
          { epoch: 5n, batchIndex: 2n, entriesHash: hash, committeeVersion: 9n },
        );
        expect(await f.rewards.batchDigest(5n, 2n, hash, 9n)).to.equal(expectedDigest);
      });
    });
  });
});
