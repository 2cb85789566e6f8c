/** edge-node's Edge Storage options (issue 21): the hosts' fragment store, the gateways' quotas and repair. */
import { Type } from "@fastify/type-provider-typebox";

import type { OptionSpec } from "../offchain/common/config";

export const STORAGE_SCHEMA = {
  storageMemoryMb: Type.Integer({ minimum: 0, maximum: 65_536, default: 256 }),
  storageQuotaMb: Type.Integer({ minimum: 0, maximum: 1_048_576, default: 256 }),
  storageRepairGraceMs: Type.Integer({ minimum: 0, maximum: 86_400_000, default: 60_000 }),
  storageRepairMs: Type.Integer({ minimum: 100, maximum: 3_600_000, default: 5_000 }),
};

export const STORAGE_OPTIONS: OptionSpec[] = [
  {
    flag: "storage-memory-mb",
    key: "storageMemoryMb",
    help: "host: Edge Storage fragments kept in memory (and mirrored under --data-dir) in MiB; full: puts refused (default 256; 0: none)",
    kind: "number",
  },
  {
    flag: "storage-quota-mb",
    key: "storageQuotaMb",
    help: "gateway: Edge Storage bytes one owner may keep (fragments, n x fragment size) in MiB (default 256)",
    kind: "number",
  },
  {
    flag: "storage-repair-grace-ms",
    key: "storageRepairGraceMs",
    help: "gateway: a host unlinked this long has its Edge Storage fragments rebuilt elsewhere (default 60000)",
    kind: "number",
  },
  {
    flag: "storage-repair-ms",
    key: "storageRepairMs",
    help: "gateway: how often Edge Storage repair looks for lost fragments (default 5000)",
    kind: "number",
  },
];
