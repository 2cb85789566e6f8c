/**
 * Checks an uploaded certificate (PUT /certificates/:domain) with node:crypto's X509Certificate before it is
 * stored: PEM certificates, leaf first; the leaf names the domain (checkHost); the private key parses and matches
 * the leaf (checkPrivateKey); each certificate is issued and signed by the next; every one is valid now; and the
 * last one is a trusted root or is signed by one (always, R19-1: Node's public roots, `tls.rootCertificates`, plus
 * the --trust file's), so a lone self-signed leaf or a chain to an unknown root is refused. An unusual key or
 * signature algorithm that node:crypto cannot check is refused as bad (422), never a 500 (R19-10). No network, no
 * OCSP.
 */
import { X509Certificate, createHash, createPrivateKey } from "node:crypto";
import { rootCertificates } from "node:tls";

import { EdgeError } from "../common/errors";
import { certsError } from "./errors";

/** How far in the future a certificate's start of validity may be (clocks differ between the CA and here). */
export const NOT_BEFORE_SKEW_MS = 5 * 60_000;

/** The most certificates an uploaded chain may hold (leaf, intermediates, a root). */
export const MAX_CHAIN_LENGTH = 8;

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+?-----END CERTIFICATE-----/g;

export interface CheckedCertificate {
  /** The certificates as PEM, leaf first, one after another. */
  chain: string;
  /** The private key as PKCS#8 PEM. */
  keyPem: string;
  /** SHA-256 of the leaf's DER, lower-case hex. */
  fingerprint: string;
  notBefore: number;
  notAfter: number;
}

/** The trusted roots of a PEM file's text (every certificate in it); throws when there is none. */
export function parseRoots(pem: string, source: string): X509Certificate[] {
  const blocks = pem.match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0) throw new Error(`${source} holds no PEM certificate`);
  return blocks.map((block, i) => {
    try {
      return new X509Certificate(block);
    } catch (error) {
      throw new Error(`${source}: certificate ${i + 1} does not parse: ${(error as Error).message}`);
    }
  });
}

let publicRoots: X509Certificate[] | undefined;

/** Node's bundled public roots (`tls.rootCertificates`), parsed once; one that does not parse is left out. */
export function nodeRoots(): X509Certificate[] {
  return (publicRoots ??= rootCertificates.flatMap((pem) => {
    try {
      return [new X509Certificate(pem)];
    } catch {
      return [];
    }
  }));
}

/** Runs a node:crypto check that may throw on a key or algorithm it does not support: false then. */
function attempt(check: () => boolean): boolean {
  try {
    return check();
  } catch {
    return false;
  }
}

export const leafFingerprint = (leaf: X509Certificate): string => createHash("sha256").update(leaf.raw).digest("hex");

function parseChain(text: string): X509Certificate[] {
  const blocks = text.match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0) throw certsError("CERTS_BAD_CHAIN", "the chain holds no PEM certificate");
  if (blocks.length > MAX_CHAIN_LENGTH)
    throw certsError("CERTS_BAD_CHAIN", `the chain holds ${blocks.length} certificates, more than ${MAX_CHAIN_LENGTH}`);
  return blocks.map((block, i) => {
    try {
      return new X509Certificate(block);
    } catch {
      throw certsError("CERTS_BAD_CHAIN", `certificate ${i + 1} of the chain does not parse`);
    }
  });
}

function parseKey(pem: string) {
  try {
    return createPrivateKey({ key: pem, format: "pem" });
  } catch {
    // Nothing of the key in the message.
    throw certsError("CERTS_BAD_KEY", "the private key is not a PEM private key");
  }
}

/**
 * The uploaded chain and key checked for `domain` at `now`, or a CERTS_* EdgeError (422) saying what is wrong.
 * `roots`: the trusted roots (nodeRoots() and --trust's); with none, every chain is refused as untrusted.
 */
export function checkCertificate(
  domain: string,
  chainText: string,
  keyText: string,
  now: number,
  roots: readonly X509Certificate[],
): CheckedCertificate {
  try {
    return check(domain, chainText, keyText, now, roots);
  } catch (error) {
    if (error instanceof EdgeError) throw error;
    // Whatever node:crypto could not handle (an algorithm, an extension) is the upload's fault: 422, not 500.
    throw certsError("CERTS_BAD_CHAIN", "the chain or key uses something that cannot be checked");
  }
}

function check(
  domain: string,
  chainText: string,
  keyText: string,
  now: number,
  roots: readonly X509Certificate[],
): CheckedCertificate {
  const chain = parseChain(chainText);
  const leaf = chain[0];
  if (leaf.checkHost(domain) === undefined)
    throw certsError("CERTS_WRONG_DOMAIN", `the certificate does not name ${domain}`, {
      details: { subjectAltName: leaf.subjectAltName ?? null },
    });
  const key = parseKey(keyText);
  if (key.asymmetricKeyType === undefined || !attempt(() => leaf.checkPrivateKey(key)))
    throw certsError("CERTS_KEY_MISMATCH", "the private key does not match the certificate");
  for (let i = 0; i + 1 < chain.length; i++) {
    if (!attempt(() => chain[i].checkIssued(chain[i + 1]) && chain[i].verify(chain[i + 1].publicKey)))
      throw certsError("CERTS_BAD_CHAIN", `certificate ${i + 1} of the chain is not signed by certificate ${i + 2}`);
  }
  for (const [i, cert] of chain.entries()) {
    const from = Date.parse(cert.validFrom);
    const to = Date.parse(cert.validTo);
    if (!(from <= now + NOT_BEFORE_SKEW_MS && now <= to))
      throw certsError(
        "CERTS_NOT_VALID_NOW",
        `certificate ${i + 1} of the chain is valid from ${cert.validFrom} to ${cert.validTo}`,
        {
          details: { validFrom: cert.validFrom, validTo: cert.validTo },
        },
      );
  }
  if (!anchored(chain[chain.length - 1], roots, now))
    throw certsError("CERTS_UNTRUSTED", "the chain does not verify to a trusted root (public roots or --trust)");
  let keyPem: string;
  try {
    keyPem = key.export({ type: "pkcs8", format: "pem" }).toString();
  } catch {
    throw certsError("CERTS_BAD_KEY", "the private key cannot be exported as PKCS#8");
  }
  return {
    chain: chain.map((c) => c.toString().trim()).join("\n") + "\n",
    keyPem,
    fingerprint: leafFingerprint(leaf),
    notBefore: Date.parse(leaf.validFrom),
    notAfter: Date.parse(leaf.validTo),
  };
}

/** Whether `last` is one of the roots, or issued and signed by a root valid now. */
function anchored(last: X509Certificate, roots: readonly X509Certificate[], now: number): boolean {
  const fingerprint = last.fingerprint256;
  return roots.some(
    (root) =>
      root.fingerprint256 === fingerprint ||
      (attempt(() => last.checkIssued(root) && last.verify(root.publicKey)) &&
        Date.parse(root.validFrom) <= now &&
        now <= Date.parse(root.validTo)),
  );
}
