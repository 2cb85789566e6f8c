/**
 * Hardhat's chain (id 31337) for viem clients in tests and benchmarks. Not `viem/chains`: its types pull in ox's
 * TypeScript sources, which do not compile under this project's settings.
 */
import { defineChain } from "viem";

export const hardhat = defineChain({
  id: 31337,
  name: "Hardhat",
  nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
  rpcUrls: { default: { http: ["http://127.0.0.1:8545"] } },
});
