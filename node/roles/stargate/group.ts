/**
 * The stargate's membership of the serving group (issue 18, D59): leaving withdraws its DNS announcement and
 * sends its configuration subscribers to the other stargates, while it still answers what arrives; joining undoes
 * it. STUB: the rollout helper replaces this file.
 */
import type { DnsServer } from "./dns";

export interface GroupSeams {
  dns: DnsServer | undefined;
  /** The configuration server's subscribers (to move away on leave). */
  server: { subscribers(): unknown[] };
}

export interface Group {
  leave(): Promise<Record<string, unknown>>;
  join(): Promise<Record<string, unknown>>;
  status(): Record<string, unknown>;
}

export function createGroup(seams: GroupSeams): Group {
  const status = () => ({ inGroup: true, subscribers: seams.server.subscribers().length });
  return { leave: async () => status(), join: async () => status(), status };
}
