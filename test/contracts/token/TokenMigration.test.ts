import { expect } from "chai";
import { ethers } from "hardhat";
import fc from "fast-check";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";

import { deployMigrationFixture, latestTimestamp, MIGRATION_RESERVE, signPermit } from "../../shared/fixtures";
import { TOKEN_SUPPLY } from "../../shared/constants";
import { FC_SEED, fcRuns } from "../../shared/fastcheck";

const E18 = 10n ** 18n;

describe("TokenMigration", function () {
  describe("deployment", function () {
    it("exposes its fixed configuration", async function () {
      const { lockingMigration, burningMigration, legacy, legacyPermit, token, treasury, deadline } =
        await loadFixture(deployMigrationFixture);
      expect(await lockingMigration.legacyToken()).to.equal(await legacy.getAddress());
      expect(await lockingMigration.token()).to.equal(await token.getAddress());
      expect(await lockingMigration.treasury()).to.equal(treasury.address);
      expect(await lockingMigration.deadline()).to.equal(deadline);
      expect(await lockingMigration.rate()).to.deep.equal([1n, 1n]);
      expect(await lockingMigration.burnsLegacy()).to.equal(false);
      expect(await burningMigration.legacyToken()).to.equal(await legacyPermit.getAddress());
      expect(await burningMigration.rate()).to.deep.equal([3n, 2n]);
      expect(await burningMigration.burnsLegacy()).to.equal(true);
    });

    it("rejects an invalid configuration", async function () {
      const { legacy, token, treasury, deadline } = await loadFixture(deployMigrationFixture);
      const factory = await ethers.getContractFactory("TokenMigration");
      const good = [await legacy.getAddress(), await token.getAddress(), treasury.address, deadline, 1n, 1n, false];
      const bad: unknown[][] = [
        [good[1], good[1], ...good.slice(2)], // same token twice
        [good[0], good[1], ethers.ZeroAddress, ...good.slice(3)],
        [...good.slice(0, 3), await latestTimestamp(), ...good.slice(4)], // deadline not in the future
        [...good.slice(0, 4), 0n, 1n, false],
        [...good.slice(0, 4), 1n, 0n, false],
        [...good.slice(0, 4), 2n ** 128n, 1n, false],
        [...good.slice(0, 4), 1n, 2n ** 128n, false],
      ];
      for (const args of bad) {
        await expect(factory.deploy(...(args as Parameters<typeof factory.deploy>))).to.be.revertedWithCustomError(
          factory,
          "MigrationInvalidConfig",
        );
      }
      const tooManyDecimals = await ethers.deployContract("LegacyTokenMock", [37, treasury.address, 1n]);
      await expect(
        factory.deploy(
          await tooManyDecimals.getAddress(),
          ...(good.slice(1) as [string, string, bigint, bigint, bigint, boolean]),
        ),
      ).to.be.revertedWithCustomError(factory, "MigrationInvalidConfig");
    });
  });

  describe("#quote", function () {
    it("scales by the rate and both tokens' decimals, rounding down", async function () {
      const { lockingMigration, burningMigration } = await loadFixture(deployMigrationFixture);
      // 0-decimal legacy, 1:1 whole tokens -> 10^18 base units each.
      expect(await lockingMigration.quote(7n)).to.equal(7n * E18);
      // 18-decimal legacy, 3 new per 2 legacy.
      expect(await burningMigration.quote(2n * E18)).to.equal(3n * E18);
      expect(await burningMigration.quote(1n)).to.equal(1n); // 1.5 rounds down
      expect(await burningMigration.quote(3n)).to.equal(4n); // 4.5 rounds down
    });

    it("handles a legacy token with more decimals than the new one", async function () {
      const [, treasury] = await ethers.getSigners();
      const token = await ethers.deployContract("EdgeToken", [treasury.address, TOKEN_SUPPLY]);
      const legacy = await ethers.deployContract("LegacyTokenMock", [24, treasury.address, 10n ** 30n]);
      const migration = await ethers.deployContract("TokenMigration", [
        await legacy.getAddress(),
        await token.getAddress(),
        treasury.address,
        (await latestTimestamp()) + 1000n,
        1n,
        10n,
        false,
      ]);
      expect(await migration.quote(10n ** 25n)).to.equal(E18); // 10 legacy -> 1 new
      expect(await migration.quote(10n ** 7n - 1n)).to.equal(0n);
    });

    it("matches exact integer arithmetic for random amounts and rates", async function () {
      const [, treasury] = await ethers.getSigners();
      const token = await ethers.deployContract("EdgeToken", [treasury.address, TOKEN_SUPPLY]);
      const legacyCache = new Map<number, string>();
      await fc.assert(
        fc.asyncProperty(
          fc.integer({ min: 0, max: 30 }),
          fc.bigInt({ min: 1n, max: 10n ** 12n }),
          fc.bigInt({ min: 1n, max: 10n ** 12n }),
          fc.bigInt({ min: 0n, max: 10n ** 40n }),
          async (decimals, numerator, denominator, amount) => {
            if (!legacyCache.has(decimals)) {
              const legacy = await ethers.deployContract("LegacyTokenMock", [decimals, treasury.address, 1n]);
              legacyCache.set(decimals, await legacy.getAddress());
            }
            const migration = await ethers.deployContract("TokenMigration", [
              legacyCache.get(decimals)!,
              await token.getAddress(),
              treasury.address,
              (await latestTimestamp()) + 1000n,
              numerator,
              denominator,
              false,
            ]);
            const expected = (amount * numerator * E18) / (denominator * 10n ** BigInt(decimals));
            expect(await migration.quote(amount)).to.equal(expected);
          },
        ),
        { seed: FC_SEED, numRuns: fcRuns(25) },
      );
    });
  });

  describe("#migrate", function () {
    it("locks legacy tokens and pays new ones", async function () {
      const { lockingMigration, legacy, token, alice } = await loadFixture(deployMigrationFixture);
      const address = await lockingMigration.getAddress();
      await legacy.connect(alice).approve(address, 1000n);
      const tx = lockingMigration.connect(alice).migrate(1000n);
      await expect(tx)
        .to.emit(lockingMigration, "Migrated")
        .withArgs(alice.address, 1000n, 1000n * E18);
      await expect(tx).to.changeTokenBalances(legacy, [alice, lockingMigration], [-1000n, 1000n]);
      await expect(tx).to.changeTokenBalances(token, [alice, lockingMigration], [1000n * E18, -1000n * E18]);
    });

    it("burns legacy tokens when the legacy token is burnable", async function () {
      const { burningMigration, legacyPermit, token, alice } = await loadFixture(deployMigrationFixture);
      const supply = await legacyPermit.totalSupply();
      await legacyPermit.connect(alice).approve(await burningMigration.getAddress(), 2n * E18);
      const tx = burningMigration.connect(alice).migrate(2n * E18);
      await expect(tx)
        .to.emit(burningMigration, "Migrated")
        .withArgs(alice.address, 2n * E18, 3n * E18);
      await expect(tx).to.changeTokenBalance(token, alice, 3n * E18);
      expect(await legacyPermit.totalSupply()).to.equal(supply - 2n * E18);
      expect(await legacyPermit.balanceOf(await burningMigration.getAddress())).to.equal(0n);
    });

    it("reverts for an amount worth nothing, without allowance, and past the deadline", async function () {
      const { burningMigration, lockingMigration, legacy, alice, deadline } = await loadFixture(deployMigrationFixture);
      await expect(burningMigration.connect(alice).migrate(0n))
        .to.be.revertedWithCustomError(burningMigration, "MigrationAmountTooSmall")
        .withArgs(0n);
      await expect(lockingMigration.connect(alice).migrate(5n))
        .to.be.revertedWithCustomError(legacy, "ERC20InsufficientAllowance")
        .withArgs(await lockingMigration.getAddress(), 0n, 5n);
      await legacy.connect(alice).approve(await lockingMigration.getAddress(), 5n);
      await time.setNextBlockTimestamp(deadline);
      await expect(lockingMigration.connect(alice).migrate(1n)).to.emit(lockingMigration, "Migrated");
      await expect(lockingMigration.connect(alice).migrate(1n))
        .to.be.revertedWithCustomError(lockingMigration, "MigrationEnded")
        .withArgs(deadline);
    });

    it("reverts when the reserve cannot cover the swap", async function () {
      const { lockingMigration, legacy, alice } = await loadFixture(deployMigrationFixture);
      const tooMany = MIGRATION_RESERVE / E18 + 1n;
      await legacy.connect(alice).approve(await lockingMigration.getAddress(), tooMany);
      await expect(lockingMigration.connect(alice).migrate(tooMany))
        .to.be.revertedWithCustomError(lockingMigration, "MigrationReserveExhausted")
        .withArgs(tooMany * E18, MIGRATION_RESERVE);
    });
  });

  describe("#migrateWithPermit", function () {
    it("swaps in one transaction with the legacy token's permit", async function () {
      const { burningMigration, legacyPermit, token, alice } = await loadFixture(deployMigrationFixture);
      const deadline = (await latestTimestamp()) + 600n;
      const sig = await signPermit(legacyPermit, alice, await burningMigration.getAddress(), 4n * E18, deadline);
      const tx = burningMigration.connect(alice).migrateWithPermit(4n * E18, deadline, sig.v, sig.r, sig.s);
      await expect(tx)
        .to.emit(burningMigration, "Migrated")
        .withArgs(alice.address, 4n * E18, 6n * E18);
      await expect(tx).to.changeTokenBalance(token, alice, 6n * E18);
    });

    it("still works when the permit was front-run", async function () {
      const { burningMigration, legacyPermit, alice, bob } = await loadFixture(deployMigrationFixture);
      const spender = await burningMigration.getAddress();
      const deadline = (await latestTimestamp()) + 600n;
      const sig = await signPermit(legacyPermit, alice, spender, E18, deadline);
      await legacyPermit.connect(bob).permit(alice.address, spender, E18, deadline, sig.v, sig.r, sig.s);
      await expect(burningMigration.connect(alice).migrateWithPermit(E18, deadline, sig.v, sig.r, sig.s)).to.emit(
        burningMigration,
        "Migrated",
      );
    });

    it("falls back to the allowance error for a legacy token without permit", async function () {
      const { lockingMigration, legacy, alice } = await loadFixture(deployMigrationFixture);
      await expect(lockingMigration.connect(alice).migrateWithPermit(5n, 0n, 27, ethers.ZeroHash, ethers.ZeroHash))
        .to.be.revertedWithCustomError(legacy, "ERC20InsufficientAllowance")
        .withArgs(await lockingMigration.getAddress(), 0n, 5n);
    });
  });

  describe("#sweep", function () {
    it("sends the remainder to the treasury after the deadline, once", async function () {
      const { lockingMigration, legacy, token, alice, bob, treasury, deadline } =
        await loadFixture(deployMigrationFixture);
      await legacy.connect(alice).approve(await lockingMigration.getAddress(), 10n);
      await lockingMigration.connect(alice).migrate(10n);
      await expect(lockingMigration.connect(bob).sweep())
        .to.be.revertedWithCustomError(lockingMigration, "MigrationNotEnded")
        .withArgs(deadline);
      await time.increaseTo(deadline + 1n);
      const remainder = MIGRATION_RESERVE - 10n * E18;
      const tx = lockingMigration.connect(bob).sweep();
      await expect(tx).to.emit(lockingMigration, "RemainderSwept").withArgs(treasury.address, remainder);
      await expect(tx).to.changeTokenBalances(token, [lockingMigration, treasury], [-remainder, remainder]);
      await expect(lockingMigration.connect(bob).sweep())
        .to.emit(lockingMigration, "RemainderSwept")
        .withArgs(treasury.address, 0n);
      // The swapped legacy tokens stay locked for good.
      expect(await legacy.balanceOf(await lockingMigration.getAddress())).to.equal(10n);
    });
  });
});
