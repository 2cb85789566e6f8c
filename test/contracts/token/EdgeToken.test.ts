import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";

import { latestTimestamp, signPermit } from "../../shared/fixtures";
import { TOKEN_SUPPLY } from "../../shared/constants";

async function tokenFixture() {
  const [treasury, alice, bob] = await ethers.getSigners();
  const token = await ethers.deployContract("EdgeToken", [treasury.address, TOKEN_SUPPLY]);
  return { token, treasury, alice, bob };
}

describe("EdgeToken", function () {
  it("mints the fixed supply once, to the recipient", async function () {
    const { token, treasury } = await loadFixture(tokenFixture);
    expect(await token.name()).to.equal("Edge");
    expect(await token.symbol()).to.equal("EDGE");
    expect(await token.decimals()).to.equal(18n);
    expect(await token.totalSupply()).to.equal(TOKEN_SUPPLY);
    expect(await token.balanceOf(treasury.address)).to.equal(TOKEN_SUPPLY);
    // No mint or burn entry point exists at all.
    const functions: string[] = [];
    token.interface.forEachFunction((f) => functions.push(f.name));
    for (const name of ["mint", "burn", "burnFrom"]) expect(functions).to.not.include(name);
    expect(functions).to.include("permit");
  });

  it("rejects a supply that does not fit 96 bits", async function () {
    const [treasury] = await ethers.getSigners();
    const factory = await ethers.getContractFactory("EdgeToken");
    const max = 2n ** 96n - 1n;
    await expect(factory.deploy(treasury.address, max + 1n))
      .to.be.revertedWithCustomError(factory, "EdgeTokenSupplyTooLarge")
      .withArgs(max + 1n, max);
    const largest = await factory.deploy(treasury.address, max);
    expect(await largest.totalSupply()).to.equal(max);
  });

  it("transfers and reverts with ERC-6093 errors", async function () {
    const { token, treasury, alice, bob } = await loadFixture(tokenFixture);
    await expect(token.connect(treasury).transfer(alice.address, 10n)).to.changeTokenBalances(
      token,
      [treasury, alice],
      [-10n, 10n],
    );
    await expect(token.connect(alice).transfer(bob.address, 11n))
      .to.be.revertedWithCustomError(token, "ERC20InsufficientBalance")
      .withArgs(alice.address, 10n, 11n);
  });

  describe("#permit", function () {
    it("sets an allowance from a signature", async function () {
      const { token, alice, bob } = await loadFixture(tokenFixture);
      const deadline = (await latestTimestamp()) + 600n;
      const sig = await signPermit(token, alice, bob.address, 123n, deadline);
      await expect(token.connect(bob).permit(alice.address, bob.address, 123n, deadline, sig.v, sig.r, sig.s))
        .to.emit(token, "Approval")
        .withArgs(alice.address, bob.address, 123n);
      expect(await token.nonces(alice.address)).to.equal(1n);
    });

    it("cannot be replayed and expires", async function () {
      const { token, alice, bob } = await loadFixture(tokenFixture);
      const deadline = (await latestTimestamp()) + 600n;
      const sig = await signPermit(token, alice, bob.address, 123n, deadline);
      await token.permit(alice.address, bob.address, 123n, deadline, sig.v, sig.r, sig.s);
      await expect(
        token.permit(alice.address, bob.address, 123n, deadline, sig.v, sig.r, sig.s),
      ).to.be.revertedWithCustomError(token, "ERC2612InvalidSigner");
      const past = await latestTimestamp();
      const old = await signPermit(token, alice, bob.address, 1n, past);
      await expect(token.permit(alice.address, bob.address, 1n, past, old.v, old.r, old.s))
        .to.be.revertedWithCustomError(token, "ERC2612ExpiredSignature")
        .withArgs(past);
    });
  });
});
