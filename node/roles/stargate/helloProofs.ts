/**
 * Hello proofs in the stargates' verdicts (R17-5, D55): a stargate probes, and a catalogue names, only URLs a
 * device itself signed. The hello a device signed over a stargate's challenge (proto/config.proto: node, role,
 * url, version, seq, nonce, stargate) is kept by the stargate that received it (ConfigServer.helloProofs) and
 * relayed inside that stargate's signed verdicts as `hello` (the fields the verdict does not already carry). A
 * peer keeps a verdict only when the hello recovers to the verdict's device over the verdict's role and URL, the
 * challenging stargate is admitted as one, and the chain admits the device for that role; a stargate checking an
 * endpoint learnt from a peer relays the peer's proof in its own verdicts.
 *
 * The device's region (D68) is part of what it signed, so it travels in the proof (`region`, absent when
 * undeclared) and is covered by the same recovery: a stargate relaying another region than the device signed
 * relays a proof that does not recover, and the verdict is dropped. The catalogue names an endpoint's region from
 * its proof. `helloProblem` is the shape check a stargate makes on a hello before any signature work.
 */
import { Type } from "@fastify/type-provider-typebox";
import type { Address, Hex } from "viem";

import {
  AddressSchema,
  type Region,
  RegionSchema,
  SignatureSchema,
  readRegionFields,
  recoverHelloSigner,
  regionFields,
  regionProblem,
} from "../../../offchain/common/protocol";
import type { HelloMsg } from "../../configWire";
import type { EndpointRole } from "./health";

const Ms = Type.Integer({ minimum: 0, maximum: 2 ** 52 });
export const HelloProofSchema = Type.Object(
  {
    stargate: AddressSchema,
    version: Ms,
    seq: Ms,
    nonce: Type.String({ pattern: "^0x[0-9a-fA-F]{64}$" }),
    signature: SignatureSchema,
    /** Where the device said it runs (D68); absent: undeclared. */
    region: Type.Optional(RegionSchema),
  },
  { additionalProperties: false },
);

/** A device's signed hello, less what its verdict carries (device, role, URL). */
export interface HelloProof {
  /** The stargate whose challenge it was signed over. */
  stargate: Address;
  version: number;
  seq: number;
  nonce: Hex;
  signature: Hex;
  region?: Region;
}

/** A proof with the role and URL it was signed for, by device (lower case). */
export type ProvenHellos = ReadonlyMap<string, { role: EndpointRole; url: string; hello: HelloProof }>;

interface ProofVerdict {
  device: Address;
  role: EndpointRole;
  url: string;
  hello?: HelloProof;
}

/** Proofs verified at most (past it the cache starts over). */
const MAX_CACHED = 100_000;

/** Checks hello proofs, remembering the signatures it recovered (a peer's verdicts repeat every interval). */
export class HelloProofChecker {
  private readonly recovered = new Map<string, boolean>();

  constructor(
    private readonly chainId: number,
    private readonly admits: (device: Address, role: EndpointRole) => boolean,
  ) {}

  /** The verdicts whose hello proves the device signed their role and URL; the others are dropped. */
  async proven<V extends ProofVerdict>(verdicts: readonly V[]): Promise<V[]> {
    const out: V[] = [];
    for (const v of verdicts) if (await this.proves(v)) out.push(v);
    return out;
  }

  private async proves(v: ProofVerdict): Promise<boolean> {
    const hello = v.hello;
    if (!hello || !this.admits(hello.stargate, "stargate") || !this.admits(v.device, v.role)) return false;
    if (hello.region && regionProblem(hello.region) !== undefined) return false;
    const key = JSON.stringify([v.device.toLowerCase(), v.role, v.url, hello]);
    let ok = this.recovered.get(key);
    if (ok === undefined) {
      const signer = await recoverHelloSigner(
        this.chainId,
        {
          node: v.device,
          role: v.role,
          url: v.url,
          ...regionFields(hello.region),
          version: hello.version,
          seq: hello.seq,
        },
        { stargate: hello.stargate, nonce: hello.nonce },
        hello.signature,
      ).catch(() => undefined);
      ok = signer !== undefined && signer.toLowerCase() === v.device.toLowerCase();
      if (this.recovered.size >= MAX_CACHED) this.recovered.clear();
      this.recovered.set(key, ok);
    }
    return ok;
  }
}

/** Gives each verdict the first proof (this stargate's hellos, then its peers' proven ones) of its role and URL. */
export function withProofs<V extends ProofVerdict>(verdicts: readonly V[], ...sources: ProvenHellos[]): V[] {
  return verdicts.map((v) => {
    const key = v.device.toLowerCase();
    for (const source of sources) {
      const proof = source.get(key);
      if (proof && proof.role === v.role && proof.url === v.url) return { ...v, hello: proof.hello };
    }
    return v;
  });
}

/** The proofs peers' (already proven) verdicts carry, by device. */
export function proofsIn(sets: readonly (readonly ProofVerdict[])[]): ProvenHellos {
  const proofs = new Map<string, { role: EndpointRole; url: string; hello: HelloProof }>();
  for (const verdicts of sets)
    for (const v of verdicts)
      if (v.hello) proofs.set(v.device.toLowerCase(), { role: v.role, url: v.url, hello: v.hello });
  return proofs;
}

const ROLES = new Set(["gateway", "host", "stargate"]);
const MAX_URL = 512;

/** Why a hello is malformed (checked before its device's admission and signature), or the region it declares. */
export function helloProblem(hello: HelloMsg): { problem: string } | { region?: Region } {
  if (!/^0x[0-9a-fA-F]{40}$/.test(hello.node)) return { problem: "hello.node is not an address" };
  if (!ROLES.has(hello.role))
    return { problem: `hello.role "${hello.role.slice(0, 32)}" is not gateway, host or stargate` };
  if (hello.url.length > MAX_URL || !/^https?:\/\/[^\s]+$/.test(hello.url))
    return { problem: `hello.url must be an http(s) URL of at most ${MAX_URL} characters` };
  if (!Number.isSafeInteger(hello.version) || !Number.isSafeInteger(hello.seq))
    return { problem: "hello.version and hello.seq must be safe integers" };
  if (!/^0x[0-9a-fA-F]{130}$/.test(hello.signature)) return { problem: "hello.signature is not 65 bytes of hex" };
  const region = readRegionFields({ country: hello.country ?? "", region: hello.region ?? "" });
  return "problem" in region ? { problem: `hello's region: ${region.problem}` } : region;
}
