/**
 * Connecting to a deployment: the address book, and one check that the RPC serves the chain the book is for.
 * Every chain-connected process (the services and the daemon) starts here.
 */
import { http, type PublicClient, createPublicClient } from "viem";

import { type AddressBook, readAddressBook } from "../addressBook";
import { errorFactory } from "../errors";

export const DEPLOYMENT_ERRORS = { DEPLOYMENT_CHAIN_MISMATCH: 502 } as const;
const deploymentError = errorFactory(DEPLOYMENT_ERRORS);

export interface Deployment {
  book: AddressBook;
  chainId: number;
  /** A client for start-up reads (two retries, 10 s timeout); long-running work makes its own. */
  client: PublicClient;
}

/** Reads the address book at `addresses` and checks that `rpc` serves its chain. */
export async function connectDeployment(rpc: string, addresses: string): Promise<Deployment> {
  const book = readAddressBook(addresses);
  const client = createPublicClient({ transport: http(rpc, { retryCount: 2, timeout: 10_000 }) }) as PublicClient;
  const chainId = await client.getChainId();
  if (chainId !== book.chainId) {
    throw deploymentError(
      "DEPLOYMENT_CHAIN_MISMATCH",
      `the RPC serves chain ${chainId} but ${addresses} is for chain ${book.chainId}`,
      { details: { rpcChainId: chainId, bookChainId: book.chainId } },
    );
  }
  return { book, chainId, client };
}
