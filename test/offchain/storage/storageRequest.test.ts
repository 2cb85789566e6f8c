import { expect } from "chai";
import fc from "fast-check";
import { Value } from "typebox/value";
import type { Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";

import {
  NO_OBJECT,
  STORAGE_MAX_MANIFEST_BYTES,
  type StorageManifest,
  StorageFrameError,
  StorageRequestHeadersSchema,
  checkStorageRequest,
  decodeObjectDownload,
  decodeObjectUpload,
  encodeObjectDownload,
  encodeObjectUpload,
  messageDigest,
  signStorageRequest,
  signatureProblem,
  storageBodyHash,
} from "../../../offchain/common/protocol";
import { StorageKey } from "../../../offchain/storage/keys";
import { openObject, sealObject } from "../../../offchain/storage/object";
import { FC_SEED, fcRuns } from "../../shared/fastcheck";
import { CHAIN_ID, objectBytes } from "./helpers";
import { twins } from "../../shared/signatures";

const owner = privateKeyToAccount(`0x${"a1".repeat(32)}`);
const mallory = privateKeyToAccount(`0x${"b2".repeat(32)}`);
const gateway = privateKeyToAccount(`0x${"c3".repeat(32)}`).address;
const otherGateway = privateKeyToAccount(`0x${"d4".repeat(32)}`).address;
const key = new StorageKey(Buffer.alloc(32, 7), "key-file");
const OBJECT: Hex = `0x${"5a".repeat(32)}`;
const NONCE: Hex = `0x${"6b".repeat(32)}`;
const TIME = 1_700_000_000n;

/** A frame's u32 BE length prefix and `json` (any text). */
const framed = (json: string | Buffer, rest: Buffer = Buffer.alloc(0)) => {
  const body = Buffer.isBuffer(json) ? json : Buffer.from(json, "utf8");
  const head = Buffer.alloc(4);
  head.writeUInt32BE(body.length);
  return Buffer.concat([head, body, rest]);
};

/** Runs `decode` and checks it throws a StorageFrameError matching `message`. */
function refused(decode: () => unknown, message: RegExp): void {
  let thrown: unknown;
  try {
    decode();
  } catch (error) {
    thrown = error;
  }
  expect(thrown, `expected a StorageFrameError matching ${message}`).to.be.instanceOf(StorageFrameError);
  expect((thrown as Error).message).to.match(message);
}

describe("offchain/common/protocol storageRequest: signed requests", function () {
  const body = Buffer.from("an upload frame");
  const request = { gateway, action: "put" as const, objectId: OBJECT, body };
  let headers: Awaited<ReturnType<typeof signStorageRequest>>;
  before(async function () {
    headers = await signStorageRequest(owner, CHAIN_ID, request, TIME, NONCE);
  });

  it("signs four headers the schema accepts, and the gateway's check returns the signed digest", async function () {
    expect(headers).to.include({
      "x-edge-owner": owner.address,
      "x-edge-timestamp": "1700000000",
      "x-edge-nonce": NONCE,
    });
    expect(Value.Check(StorageRequestHeadersSchema, headers)).to.equal(true);
    expect(signatureProblem(headers["x-edge-signature"])).to.equal(undefined);
    const check = await checkStorageRequest(CHAIN_ID, gateway, headers, request);
    const digest = messageDigest(CHAIN_ID, "StorageRequest", {
      owner: owner.address,
      gateway,
      action: "put",
      objectId: OBJECT,
      bodyHash: storageBodyHash(body),
      nonce: NONCE,
      timestamp: TIME,
    });
    expect(check).to.deep.equal({ ok: true, digest });
    // Fresh nonces by default: two requests in one second are two requests.
    const [a, b] = await Promise.all([1, 2].map(() => signStorageRequest(owner, CHAIN_ID, request, TIME)));
    expect(a["x-edge-nonce"]).to.match(/^0x[0-9a-f]{64}$/);
    expect(a["x-edge-nonce"]).to.not.equal(b["x-edge-nonce"]);
  });

  it("a list is signed over no object and no body: the zero id and sha256 of nothing", async function () {
    const list = await signStorageRequest(owner, CHAIN_ID, { gateway, action: "list" }, TIME, NONCE);
    expect(storageBodyHash()).to.equal("0xe3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    expect(await checkStorageRequest(CHAIN_ID, gateway, list, { action: "list", objectId: NO_OBJECT })).to.include({
      ok: true,
    });
    const empty = { action: "list" as const, body: new Uint8Array(0) };
    expect(await checkStorageRequest(CHAIN_ID, gateway, list, empty)).to.include({ ok: true });
    const withBody = { action: "list" as const, body: Buffer.from("x") };
    expect(await checkStorageRequest(CHAIN_ID, gateway, list, withBody)).to.deep.include({ reason: "wrong-signer" });
  });

  it("the digest is the request's, however its headers and object id are spelled", async function () {
    const respelled = {
      "x-edge-owner": owner.address.toLowerCase(),
      "x-edge-timestamp": "01700000000",
      "x-edge-nonce": `0x${NONCE.slice(2).toUpperCase()}`,
      "x-edge-signature": `0x${headers["x-edge-signature"].slice(2).toUpperCase()}`,
    };
    expect(Value.Check(StorageRequestHeadersSchema, respelled)).to.equal(true);
    const first = await checkStorageRequest(CHAIN_ID, gateway, headers, request);
    const again = await checkStorageRequest(CHAIN_ID, gateway, respelled, {
      ...request,
      objectId: `0x${OBJECT.slice(2).toUpperCase()}` as Hex,
    });
    expect(first.ok && again.ok && first.digest === again.digest).to.equal(true);
  });

  it("refuses the non-canonical encodings of the owner's own signature: v 0/1 and the high-s twin", async function () {
    const [v01, highS] = twins(headers["x-edge-signature"]);
    for (const signature of [v01, highS]) {
      const check = await checkStorageRequest(
        CHAIN_ID,
        gateway,
        { ...headers, "x-edge-signature": signature },
        request,
      );
      expect(check, signature).to.deep.include({ ok: false, reason: "non-canonical" });
    }
  });

  it("refuses a request signed for another gateway, action, object, body, nonce, time, chain or owner", async function () {
    const cases: Array<[string, Promise<unknown>]> = [
      ["gateway", checkStorageRequest(CHAIN_ID, otherGateway, headers, request)],
      ["action", checkStorageRequest(CHAIN_ID, gateway, headers, { ...request, action: "delete" })],
      ["objectId", checkStorageRequest(CHAIN_ID, gateway, headers, { ...request, objectId: NO_OBJECT })],
      ["body", checkStorageRequest(CHAIN_ID, gateway, headers, { ...request, body: Buffer.from("an upload framE") })],
      ["no body", checkStorageRequest(CHAIN_ID, gateway, headers, { ...request, body: undefined })],
      [
        "nonce",
        checkStorageRequest(CHAIN_ID, gateway, { ...headers, "x-edge-nonce": `0x${"6c".repeat(32)}` }, request),
      ],
      ["timestamp", checkStorageRequest(CHAIN_ID, gateway, { ...headers, "x-edge-timestamp": "1700000001" }, request)],
      ["chain", checkStorageRequest(CHAIN_ID + 1, gateway, headers, request)],
      ["owner", checkStorageRequest(CHAIN_ID, gateway, { ...headers, "x-edge-owner": mallory.address }, request)],
    ];
    for (const [what, check] of cases) expect(await check, what).to.deep.include({ ok: false, reason: "wrong-signer" });
    // Mallory's own signature over the owner's request (naming the owner) is not the owner's.
    const forged = await signStorageRequest(mallory, CHAIN_ID, request, TIME, NONCE);
    const claimed = { ...forged, "x-edge-owner": owner.address };
    expect(await checkStorageRequest(CHAIN_ID, gateway, claimed, request)).to.deep.include({ reason: "wrong-signer" });
  });

  it("the header schema refuses malformed headers", function () {
    const bad: Array<Record<string, string>> = [
      { "x-edge-owner": "0x1234" },
      { "x-edge-timestamp": "-1" },
      { "x-edge-timestamp": "1234567890123" },
      { "x-edge-nonce": "0x00" },
      { "x-edge-signature": "0x1234" },
    ];
    for (const change of bad)
      expect(Value.Check(StorageRequestHeadersSchema, { ...headers, ...change })).to.equal(false);
  });
});

describe("offchain/common/protocol storageRequest: object frames", function () {
  let manifest: StorageManifest;
  let fragments: Buffer[];
  let small: { manifest: StorageManifest; fragments: Buffer[] };
  before(async function () {
    ({ manifest, fragments } = await sealObject(key, owner, CHAIN_ID, objectBytes(5000, 1), {
      now: 1_700_000_000_000,
    }));
    small = await sealObject(key, owner, CHAIN_ID, objectBytes(100, 2), { k: 2, n: 4, now: 1_700_000_000_000 });
  });

  it("an upload round-trips: the manifest and all n fragments, in index order", function () {
    const frame = encodeObjectUpload(manifest, fragments);
    const manifestBytes = Buffer.byteLength(JSON.stringify(manifest));
    expect(frame.length).to.equal(4 + manifestBytes + manifest.n * manifest.fragmentSize);
    const decoded = decodeObjectUpload(frame);
    expect(decoded.manifest).to.deep.equal(manifest);
    expect([...decoded.fragments.keys()]).to.deep.equal([...Array(16).keys()]);
    fragments.forEach((f, i) => expect(decoded.fragments.get(i)!.equals(f), `fragment ${i}`).to.equal(true));
  });

  it("a download round-trips any subset of fragments, and the client rebuilds the object from parity", async function () {
    const parity = new Map(fragments.map((f, i) => [i, f] as const).filter(([i]) => i >= 6));
    const placed = { ...manifest, placement: [{ fragment: 6, host: `0x${"44".repeat(20)}` }] };
    const decoded = decodeObjectDownload(encodeObjectDownload(placed, parity));
    expect(decoded.manifest).to.deep.equal(placed);
    expect([...decoded.fragments.keys()]).to.deep.equal([6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
    const slots = Array.from({ length: manifest.n }, (_, i) => decoded.fragments.get(i));
    const { plaintext } = await openObject(key, CHAIN_ID, decoded.manifest, slots);
    expect(plaintext.equals(objectBytes(5000, 1))).to.equal(true);
    // Given out of order, encoded in index order; none at all is a frame too.
    const shuffled = new Map([
      [3, fragments[3]],
      [1, fragments[1]],
    ]);
    expect([...decodeObjectDownload(encodeObjectDownload(manifest, shuffled)).fragments.keys()]).to.deep.equal([1, 3]);
    expect(decodeObjectDownload(encodeObjectDownload(manifest, new Map())).fragments.size).to.equal(0);
  });

  it("the encoders refuse fragments that do not fit the manifest, and a manifest too long to frame", function () {
    refused(() => encodeObjectUpload(manifest, fragments.slice(1)), /15 fragments, not n = 16/);
    refused(() => encodeObjectUpload(manifest, [...fragments.slice(1), Buffer.alloc(1)]), /not fragmentSize/);
    refused(() => encodeObjectDownload(manifest, new Map([[16, fragments[0]]])), /fragment 16 does not fit/);
    refused(() => encodeObjectDownload(manifest, new Map([[0, Buffer.alloc(3)]])), /fragment 0 does not fit/);
    const long = { ...manifest, signature: `0x${"ab".repeat(STORAGE_MAX_MANIFEST_BYTES)}` };
    refused(() => encodeObjectUpload(long, fragments), /too long to frame/);
  });

  it("every malformed manifest part is a StorageFrameError", function () {
    const json = JSON.stringify(manifest);
    for (const decode of [decodeObjectUpload, decodeObjectDownload]) {
      refused(() => decode(Buffer.alloc(0)), /shorter than its length prefix/);
      refused(() => decode(Buffer.from([0, 0, 1])), /shorter than its length prefix/);
      const over = Buffer.alloc(8);
      over.writeUInt32BE(STORAGE_MAX_MANIFEST_BYTES + 1);
      refused(() => decode(over), /length 16385 is over 16384 bytes/);
      refused(() => decode(Buffer.from([0xff, 0xff, 0xff, 0xff])), /is over 16384 bytes/);
      refused(() => decode(framed(json).subarray(0, 100)), /ends inside the manifest/);
      refused(() => decode(framed("{not json")), /not JSON/);
      refused(() => decode(framed(Buffer.from([0xc3, 0x28]))), /not JSON/);
      refused(() => decode(framed("{}")), /manifest is malformed: the manifest/);
      refused(() => decode(framed("null")), /manifest is malformed/);
      refused(() => decode(framed(JSON.stringify({ ...manifest, extra: 1 }))), /manifest is malformed/);
      refused(() => decode(framed(JSON.stringify({ ...manifest, n: 17 }))), /malformed: n - k is 7/);
      refused(() => decode(framed(JSON.stringify({ ...manifest, fragmentSize: 1 << 30 }))), /malformed/);
    }
  });

  it("an upload with missing or trailing bytes is refused", function () {
    const frame = encodeObjectUpload(manifest, fragments);
    refused(() => decodeObjectUpload(frame.subarray(0, frame.length - 1)), /the upload is \d+ bytes; its manifest/);
    refused(() => decodeObjectUpload(Buffer.concat([frame, Buffer.from([0])])), /the upload is \d+ bytes/);
    refused(() => decodeObjectUpload(framed(JSON.stringify(manifest))), /the upload is \d+ bytes/);
    // A download frame is not an upload.
    refused(() => decodeObjectUpload(encodeObjectDownload(manifest, new Map([[0, fragments[0]]]))), /the upload is/);
  });

  it("a download with a missing count, missing or trailing bytes, a repeated or out-of-range index, or count > n", function () {
    const m = small.manifest;
    const head = framed(JSON.stringify(m));
    const entry = (index: number, fill = 1) =>
      Buffer.concat([Buffer.from([index]), Buffer.alloc(m.fragmentSize, fill)]);
    const frame = (count: number, ...entries: Buffer[]) => Buffer.concat([head, Buffer.from([count]), ...entries]);
    expect(decodeObjectDownload(frame(2, entry(0), entry(3))).fragments.size).to.equal(2);
    refused(() => decodeObjectDownload(head), /ends before its fragment count/);
    refused(() => decodeObjectDownload(frame(2, entry(0))), /the download is \d+ bytes; its count/);
    refused(() => decodeObjectDownload(frame(1, entry(0), entry(1))), /the download is \d+ bytes/);
    refused(() => decodeObjectDownload(frame(1, entry(0).subarray(1))), /the download is \d+ bytes/);
    refused(() => decodeObjectDownload(Buffer.concat([frame(1, entry(0)), Buffer.from([0])])), /the download is/);
    refused(() => decodeObjectDownload(frame(2, entry(1), entry(1, 2))), /index 1 is out of range or repeated/);
    refused(() => decodeObjectDownload(frame(1, entry(4))), /index 4 is out of range/);
    refused(() => decodeObjectDownload(frame(1, entry(255))), /index 255 is out of range/);
    refused(
      () => decodeObjectDownload(frame(5, entry(0), entry(1), entry(2), entry(3), entry(0))),
      /5 fragments, more than n = 4/,
    );
    refused(() => decodeObjectDownload(frame(255)), /255 fragments, more than n = 4/);
  });

  it("property: no mutation or truncation of a valid frame throws anything but a StorageFrameError", function () {
    const m = small.manifest;
    const upload = encodeObjectUpload(m, small.fragments);
    const download = encodeObjectDownload(
      m,
      new Map([
        [1, small.fragments[1]],
        [2, small.fragments[2]],
      ]),
    );
    const manifestEnd = 4 + Buffer.byteLength(JSON.stringify(m));
    const edit = fc.record({
      at: fc.nat(),
      byte: fc.integer({ min: 0, max: 255 }),
      // Mostly edits past the manifest (the counts, indexes and fragments), where the structure is.
      tail: fc.boolean(),
    });
    let decodedCount = 0;
    fc.assert(
      fc.property(
        fc.boolean(),
        fc.array(edit, { minLength: 0, maxLength: 4 }),
        fc.option(fc.nat(), { nil: undefined }),
        fc.uint8Array({ maxLength: 40 }),
        (isUpload, edits, cut, extra) => {
          let frame = Buffer.from(isUpload ? upload : download);
          for (const { at, byte, tail } of edits) {
            const span = tail ? frame.length - manifestEnd : manifestEnd;
            if (span > 0) frame[(tail ? manifestEnd : 0) + (at % span)] = byte;
          }
          if (cut !== undefined) frame = frame.subarray(0, cut % (frame.length + 1));
          if (cut === undefined && extra.length > 0) frame = Buffer.concat([frame, extra]);
          try {
            const decoded = (isUpload ? decodeObjectUpload : decodeObjectDownload)(frame);
            decodedCount++;
            const { n, fragmentSize } = decoded.manifest;
            expect(decoded.fragments.size).to.be.at.most(n);
            if (isUpload) expect(decoded.fragments.size).to.equal(n);
            for (const [index, bytes] of decoded.fragments) {
              expect(index).to.be.within(0, n - 1);
              expect(bytes.length).to.equal(fragmentSize);
            }
          } catch (error) {
            if (!(error instanceof StorageFrameError)) throw error;
          }
        },
      ),
      { seed: FC_SEED, numRuns: fcRuns(400) },
    );
    // The property saw frames that still decode (edits inside fragments), not only refusals.
    expect(decodedCount).to.be.greaterThan(0);
  });
});
