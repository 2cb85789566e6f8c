import { expect } from "chai";
import hre from "hardhat";

import * as abis from "../../../offchain/common/generated/abis";

describe("offchain/common/generated/abis", function () {
  it("matches the compiled contracts (run `npm run abis` after an interface change)", async function () {
    for (const name of ["EdgeToken", "StakeManager", "RewardsManager", "PaymentVault", "ConfigRegistry"]) {
      const { abi } = await hre.artifacts.readArtifact(name);
      const generated = (abis as Record<string, unknown>)[name[0].toLowerCase() + name.slice(1) + "Abi"];
      expect(generated, name).to.deep.equal(abi);
    }
  });
});
