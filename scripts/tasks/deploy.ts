/**
 * deploy:protocol: deploys the contracts with their Ignition modules and writes the address book.
 *
 *   npx hardhat deploy:protocol --network localhost
 *   EDGE_RPC_URL=… EDGE_PRIVATE_KEYS=… npx hardhat deploy:protocol --network rpc --parameters params.json
 */
import { task } from "hardhat/config";

import { deployProtocol, requiredConfirmations } from "../deploy/deployProtocol";
import { loadNetworkParameters } from "../deploy/parameters";
import { fail } from "./lib";

task("deploy:protocol", "Deploys EdgeToken, StakeManager and (when configured) TokenMigration")
  .addOptionalParam("parameters", "parameter file (default: scripts/deploy/parameters/<network>.json)")
  .addOptionalParam("deploymentId", "Ignition deployment id (default: chain-<chainId>)")
  .setAction(async (args: { parameters?: string; deploymentId?: string }, hre) => {
    let parameters;
    try {
      parameters = loadNetworkParameters(hre.network.name, args.parameters);
      requiredConfirmations(process.env);
    } catch (error) {
      fail((error as Error).message);
    }
    await hre.run("compile", { quiet: true });
    const { file } = await deployProtocol(hre, {
      parameters,
      deploymentId: args.deploymentId,
      log: (line) => console.log(line),
    });
    console.log(`done; tasks and daemons read ${file}`);
  });
