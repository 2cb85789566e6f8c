/**
 * edge-node's checks across options (node/config.ts holds the options): what one option's schema cannot say
 * alone. Each problem names the flag it is about, as ConfigError lists them.
 */
import { type Region, parseRegion } from "../offchain/common/protocol";

interface Checked {
  role: string;
  gateway?: string;
  tlsPort?: number;
  acmeDirectory?: string;
  certs?: string;
  region?: string;
}

const LOOPBACK_HOST = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/i;

/** Every problem of the loaded configuration (none: it is good). */
export function optionProblems(config: Checked): string[] {
  const problems: string[] = [];
  if (config.role === "host" && !config.gateway) problems.push("--gateway: a host needs the URL of its gateway");
  problems.push(...certOptionProblems(config));
  if (config.region !== undefined) {
    try {
      parseRegion(config.region);
    } catch (error) {
      problems.push(`--region: ${(error as Error).message}`);
    }
  }
  return problems;
}

/** `--region`'s value as a Region (D68); call after `optionProblems` found none. */
export function regionOption(text: string): Region {
  return parseRegion(text);
}

/** The certificate options (D65): TLS and orders need the service, whose URL is https unless on loopback. */
function certOptionProblems(config: Checked): string[] {
  const problems: string[] = [];
  if (config.tlsPort !== undefined && !config.certs)
    problems.push(
      "--tls-port: the HTTPS front door needs --certs (the certificate service its certificates come from)",
    );
  if (config.acmeDirectory && !config.certs)
    problems.push("--acme-directory: orders need --certs (the certificate service holds their challenges and leases)");
  if (config.certs) {
    const url = URL.canParse(config.certs) ? new URL(config.certs) : undefined;
    if (!url) problems.push(`--certs: ${config.certs} is not a URL`);
    else if (url.protocol !== "https:" && !LOOPBACK_HOST.test(url.hostname))
      problems.push(`--certs: ${config.certs} must be https (plain http only on a loopback address)`);
  }
  return problems;
}
