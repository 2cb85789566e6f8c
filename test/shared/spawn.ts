/**
 * Child processes in tests: a service's CLI as its own process (spawnServe, shared with the benchmarks in
 * scripts/lib/spawnServe.ts), and dropping a crashed sender's pending transactions from the node's mempool.
 */
import { network } from "hardhat";
import Database from "better-sqlite3";

export { type Child, spawnServe } from "../../scripts/lib/spawnServe";

/**
 * Drops from the node's mempool every transaction TxSender recorded as pending in `dbFile`, as if the node had lost
 * them: the next instance must rebroadcast its persisted bytes. Returns how many were dropped (a transaction mined
 * meanwhile is not).
 */
export async function dropPendingTransactions(dbFile: string): Promise<number> {
  const reader = new Database(dbFile, { readonly: true });
  const pending = reader.prepare("select hashes from txs where status = 'pending'").all() as Array<{ hashes: string }>;
  reader.close();
  let dropped = 0;
  for (const { hashes } of pending) {
    for (const hash of JSON.parse(hashes) as string[]) {
      const drop = network.provider.send("hardhat_dropTransaction", [hash]);
      if (await drop.catch((e: Error) => (/already mined/.test(e.message) ? false : Promise.reject(e)))) dropped += 1;
    }
  }
  return dropped;
}
