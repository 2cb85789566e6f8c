/** Clients for the gateway's certificate tests (D65): plain HTTP with any Host, TLS handshakes by SNI, HTTPS GETs. */
import { createHash } from "node:crypto";
import { writeFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { join } from "node:path";
import { connect } from "node:tls";

const OWNER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";

/** GET over plain HTTP with any Host header: status and body. */
export function httpGet(front: string, path: string, host: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${front}${path}`, { headers: { host } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
    });
    req.on("error", reject);
    req.end();
  });
}

/** A TLS handshake to `url` naming `servername`: the leaf's sha256 fingerprint, or the error. */
export function handshake(url: string, servername: string | undefined, ca: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port), servername, ca }, () => {
      const raw = socket.getPeerX509Certificate()!.raw;
      socket.end();
      resolve(createHash("sha256").update(raw).digest("hex"));
    });
    socket.on("error", reject);
  });
}

/** A sites file in `dir` with one site per hostname (origin unreachable: the tests never need it). */
export function sitesFile(dir: string, hostnames: string[]): string {
  const file = join(dir, "sites.json");
  const sites = hostnames.map((hostname, i) => ({ id: `s${i}`, hostname, owner: OWNER, origin: "http://127.0.0.1:9" }));
  writeFileSync(file, JSON.stringify({ sites }));
  return file;
}

/** GET over HTTPS naming `servername`, trusting `ca`. */
export function fetchTls(
  url: string,
  servername: string,
  path: string,
  ca: string,
): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      { host: hostname, port: Number(port), path, servername, ca, headers: { host: servername }, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      },
    );
    req.on("error", reject);
    req.end();
  });
}
