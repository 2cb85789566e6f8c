/**
 * A small certificate authority for tests, made with the openssl command line: a root, an intermediate it signs,
 * and leaf certificates (ECDSA P-256, SAN DNS names, serverAuth) the intermediate signs for any domain. Real
 * X.509 that node:crypto's X509Certificate, TLS servers and curl check as they would a public CA's.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface IssuedCertificate {
  /** Leaf, then the intermediate (PEM). */
  chain: string;
  leaf: string;
  /** The leaf's private key (PKCS#8 PEM). */
  keyPem: string;
}

export interface TestCa {
  rootPem: string;
  intermediatePem: string;
  /** A leaf for `names` (the first is the subject's CN), valid `days` days from now. */
  issue(names: string | string[], days?: number): IssuedCertificate;
  close(): void;
}

const CA_EXTENSIONS = "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n";

export function createTestCa(name = "Edge Test"): TestCa {
  const dir = mkdtempSync(join(tmpdir(), "edge-test-ca-"));
  const path = (file: string) => join(dir, file);
  const openssl = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
  const ecKey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  let serial = 1;
  const sign = (csr: string, caCert: string, caKey: string, out: string, ext: string, days: number) => {
    writeFileSync(path(`${out}.ext`), ext);
    openssl(
      ...["x509", "-req", "-in", csr, "-CA", caCert, "-CAkey", caKey, "-set_serial", String(serial++)],
      ...["-days", String(days), "-sha256", "-extfile", path(`${out}.ext`), "-out", path(out)],
    );
  };
  openssl(
    ...["req", "-x509", ...ecKey, "-keyout", path("root.key"), "-out", path("root.pem"), "-days", "30"],
    ...["-subj", `/CN=${name} Root`, "-addext", "basicConstraints=critical,CA:TRUE"],
    ...["-addext", "keyUsage=critical,keyCertSign,cRLSign"],
  );
  openssl("req", ...ecKey, "-keyout", path("int.key"), "-out", path("int.csr"), "-subj", `/CN=${name} Intermediate`);
  sign(path("int.csr"), path("root.pem"), path("root.key"), "int.pem", CA_EXTENSIONS, 30);
  const rootPem = readFileSync(path("root.pem"), "utf8");
  const intermediatePem = readFileSync(path("int.pem"), "utf8");
  let leaves = 0;
  return {
    rootPem,
    intermediatePem,
    issue(names, days = 7) {
      const list = typeof names === "string" ? [names] : names;
      const n = ++leaves;
      openssl(
        "req",
        ...ecKey,
        "-keyout",
        path(`leaf${n}.key`),
        "-out",
        path(`leaf${n}.csr`),
        "-subj",
        `/CN=${list[0]}`,
      );
      const ext = [
        `subjectAltName=${list.map((d) => `DNS:${d}`).join(",")}`,
        "basicConstraints=CA:FALSE",
        "keyUsage=critical,digitalSignature",
        "extendedKeyUsage=serverAuth",
      ].join("\n");
      sign(path(`leaf${n}.csr`), path("int.pem"), path("int.key"), `leaf${n}.pem`, ext + "\n", days);
      const leaf = readFileSync(path(`leaf${n}.pem`), "utf8");
      return { chain: leaf + intermediatePem, leaf, keyPem: readFileSync(path(`leaf${n}.key`), "utf8") };
    },
    close: () => rmSync(dir, { recursive: true, force: true }),
  };
}
