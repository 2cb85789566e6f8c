/** bench:dns helpers (D60): one UDP query, and waiting until a DNS server answers. */
import { createSocket } from "node:dgram";
import * as dnsPacket from "dns-packet";

/** One UDP query; the decoded answer or undefined after `timeoutMs`. */
export async function queryUdp(
  port: number,
  name: string,
  type: dnsPacket.RecordType,
  { host = "127.0.0.1", timeoutMs = 500 } = {},
): Promise<dnsPacket.Packet | undefined> {
  const socket = createSocket("udp4");
  try {
    return await new Promise((resolve) => {
      const id = Math.floor(Math.random() * 65535);
      const timer = setTimeout(() => resolve(undefined), timeoutMs);
      socket.on("message", (message) => {
        const packet = dnsPacket.decode(message);
        if (packet.id !== id) return;
        clearTimeout(timer);
        resolve(packet);
      });
      socket.send(dnsPacket.encode({ id, type: "query", questions: [{ name, type }] }), port, host);
    });
  } finally {
    socket.close();
  }
}

/** Resolves when `name` SOA gets an answer on `port`; `failed()` returning a message stops the wait. */
export async function waitForDns(
  port: number,
  name: string,
  failed: () => string | false,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const problem = failed();
    if (problem !== false) throw new Error(`the DNS server exited: ${problem}`);
    if (await queryUdp(port, name.replace(/\.$/, ""), "SOA", { timeoutMs: 300 })) return;
  }
  throw new Error(`no DNS answer on port ${port} within ${timeoutMs} ms`);
}
