import { expect } from "chai";
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Fastify from "fastify";

import { Outbox, type OutboxItem, postJson } from "../../node/outbox";

const quiet = { warn: () => undefined, error: () => undefined };

/** A heartbeat item numbered `n` (the outbox never looks inside a body). */
const heartbeat = (id: string, n: number, key?: string): OutboxItem => ({
  id,
  key,
  target: "oracle",
  path: "/heartbeats",
  body: { stargate: `0x${"1".repeat(40)}`, epoch: String(n), timestamp: String(n), signature: `0x${"2".repeat(130)}` },
});

describe("edge-node outbox", function () {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), "edge-outbox-"))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("keeps pending items across a restart, forgets acknowledged ones, replaces by key", async function () {
    const file = join(dir, "sub", "outbox.jsonl");
    const a = new Outbox(file, quiet);
    a.put(heartbeat("1", 1, "report:7"));
    a.put(heartbeat("2", 2, "report:7")); // supersedes 1
    a.put(heartbeat("3", 3));
    a.ack("3");
    appendFileSync(file, '{"put": {"id": "torn'); // a crash mid-write
    const b = new Outbox(file, quiet);
    expect(b.items().map((i) => i.id)).to.deep.equal(["2"]);
    expect(readFileSync(file, "utf8").trim().split("\n")).to.have.length(1); // compacted on load
  });

  it("delivers in order, stops at an unreachable receiver and drops rejected items", async function () {
    const file = join(dir, "outbox.jsonl");
    const box = new Outbox(file, quiet);
    for (const id of ["a", "b", "c", "d"]) box.put(heartbeat(id, 0));
    const seen: string[] = [];
    const delivered = await box.flush(async (item) => {
      seen.push(item.id);
      return item.id === "b" ? "rejected" : item.id === "c" ? "retry" : "sent";
    });
    expect(delivered).to.equal(1);
    expect(seen).to.deep.equal(["a", "b", "c"]);
    expect(box.items().map((i) => i.id)).to.deep.equal(["c", "d"]);
  });

  it("never runs two flushes at once", async function () {
    const box = new Outbox(join(dir, "outbox.jsonl"), quiet);
    for (const id of ["a", "b"]) box.put(heartbeat(id, 0));
    const sent: string[] = [];
    const send = async (item: { id: string }) => {
      sent.push(item.id);
      await new Promise((r) => setTimeout(r, 10));
      return "sent" as const;
    };
    const [one, two] = await Promise.all([box.flush(send), box.flush(send)]);
    expect(sent).to.deep.equal(["a", "b"]);
    expect([one, two]).to.deep.equal([2, 2]);
  });

  it("sends an item put while a flush runs before a flush called after it returns", async function () {
    const box = new Outbox(join(dir, "outbox.jsonl"), quiet);
    box.put(heartbeat("a", 0));
    const sent: string[] = [];
    const send = async (item: { id: string }) => {
      sent.push(item.id);
      await new Promise((r) => setTimeout(r, 10));
      return "sent" as const;
    };
    const running = box.flush(send); // took its list: just "a"
    box.put(heartbeat("b", 1));
    const [first, second] = await Promise.all([running, box.flush(send)]);
    expect(sent).to.deep.equal(["a", "b"]);
    expect([first, second]).to.deep.equal([1, 2]);
    expect(box.size).to.equal(0);
  });

  it("classifies HTTP outcomes", async function () {
    const app = Fastify();
    app.post("/ok", async () => ({}));
    app.post("/dup", async (_r, reply) => reply.code(409).send({ code: "BILLING_RECORD_CONFLICT" }));
    app.post("/closed", async (_r, reply) => reply.code(409).send({ code: "BILLING_PERIOD_CLOSED" }));
    app.post("/stale", async (_r, reply) => reply.code(503).send({ code: "BILLING_VIEW_STALE" }));
    app.post("/bad", async (_r, reply) => reply.code(400).send({}));
    app.post("/busy", async (_r, reply) => reply.code(503).send({}));
    app.post("/slow", async (_r, reply) => reply.code(429).send({}));
    const url = await app.listen({ host: "127.0.0.1", port: 0 });
    try {
      const outcome = (path: string) => postJson(`${url}${path}`, {});
      expect(await outcome("/ok")).to.equal("sent");
      expect(await outcome("/dup")).to.equal("conflict");
      expect(await outcome("/closed")).to.equal("rejected");
      expect(await outcome("/stale")).to.equal("retry");
      expect(await outcome("/bad")).to.equal("rejected");
      expect(await outcome("/busy")).to.equal("retry");
      expect(await outcome("/slow")).to.equal("retry");
      expect(await postJson("http://127.0.0.1:9/none", {})).to.equal("retry");
    } finally {
      await app.close();
    }
  });

  it("F2: a conflict is not delivered: the item stays, is logged and counted once, and does not block the rest", async function () {
    const errors: object[] = [];
    const box = new Outbox(join(dir, "outbox.jsonl"), { warn: () => undefined, error: (obj) => errors.push(obj) });
    for (const id of ["a", "b", "c"]) box.put(heartbeat(id, 0));
    const send = async (item: { id: string }) => (item.id === "a" ? ("conflict" as const) : ("sent" as const));
    expect(await box.flush(send)).to.equal(2);
    expect(box.items().map((i) => i.id)).to.deep.equal(["a"]);
    expect(box.conflicts).to.equal(1);
    expect(await box.flush(send)).to.equal(0);
    expect(errors).to.have.length(1);
    expect(errors[0]).to.include({ id: "a" });
    // Kept across a restart; delivered once the receiver takes it.
    const again = new Outbox(join(dir, "outbox.jsonl"), quiet);
    expect(again.items().map((i) => i.id)).to.deep.equal(["a"]);
    expect(await again.flush(async () => "sent")).to.equal(1);
    expect([again.size, again.conflicts]).to.deep.equal([0, 0]);
  });
});
