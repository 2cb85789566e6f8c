/** deploy:protocol's floor of unbonding periods (L-2): a day off the development chain, short periods on it. */
import { expect } from "chai";

import {
  DEVELOPMENT_CHAIN_ID,
  DEVELOPMENT_UNBONDING_FLOOR,
  PRODUCTION_UNBONDING_FLOOR,
  withUnbondingFloor,
} from "../../scripts/deploy/unbondingFloor";

const DAY = 86_400n;
const MAINNET = 1;
const typeParams = (seconds: bigint) => [0, 1, 2].map(() => ({ minimumStake: 100n, unbondingPeriod: seconds }));

describe("deploy: unbonding floor", function () {
  it("L-2: refuses a floor below a day, or a period below the floor, off the development chain", function () {
    expect(() => withUnbondingFloor(MAINNET, { minUnbondingPeriod: DAY - 1n })).to.throw(
      "StakeManager.minUnbondingPeriod 86399 s is below 1 day (86400 s): only the development chain (31337) may unbond faster",
    );
    expect(() => withUnbondingFloor(MAINNET, { minUnbondingPeriod: 0n })).to.throw("below 1 day");
    expect(() => withUnbondingFloor(MAINNET, { typeParams: typeParams(60n) })).to.throw(
      "StakeManager.typeParams[0].unbondingPeriod 60 s is below the floor of 86400 s (minUnbondingPeriod)",
    );
  });

  it("defaults the floor to a day off the development chain and keeps larger ones", function () {
    expect(withUnbondingFloor(MAINNET, undefined)).to.deep.equal({ minUnbondingPeriod: PRODUCTION_UNBONDING_FLOOR });
    const params = { adminDelay: 0n, minUnbondingPeriod: "172800n", typeParams: typeParams(90n * DAY) };
    expect(withUnbondingFloor(MAINNET, params)).to.deep.equal({ ...params, minUnbondingPeriod: 2n * DAY });
  });

  it("keeps the devnet's and the tests' short periods on the development chain (floor 1 s unless given)", function () {
    expect(withUnbondingFloor(DEVELOPMENT_CHAIN_ID, { typeParams: typeParams(60n) })).to.deep.equal({
      typeParams: typeParams(60n),
      minUnbondingPeriod: DEVELOPMENT_UNBONDING_FLOOR,
    });
    expect(withUnbondingFloor(DEVELOPMENT_CHAIN_ID, { minUnbondingPeriod: 300 }).minUnbondingPeriod).to.equal(300n);
    expect(() => withUnbondingFloor(DEVELOPMENT_CHAIN_ID, { typeParams: typeParams(0n) })).to.throw(
      "unbondingPeriod 0 s is below the floor of 1 s",
    );
  });

  it("names a value that is not a number of seconds", function () {
    expect(() => withUnbondingFloor(MAINNET, { minUnbondingPeriod: "a day" })).to.throw(
      'StakeManager.minUnbondingPeriod must be a whole number of seconds ("86400n"), not a day',
    );
    expect(() => withUnbondingFloor(MAINNET, { typeParams: [{ minimumStake: 1n }] })).to.throw(
      "StakeManager.typeParams.unbondingPeriod must be a whole number of seconds",
    );
  });
});
