import { spawnSync } from "node:child_process";
import { join } from "node:path";

import { expect } from "chai";

import { ConfigError } from "../../../offchain/common/config";
import {
  MAX_TRACEPARENT_LENGTH,
  SAMPLED,
  type Tracing,
  formatTraceparent,
  initTracing,
  newTraceContext,
  otlpTracesUrl,
  parseTraceparent,
  traceLogFields,
} from "../../../offchain/common/tracing";
import { type OtlpReceiver, startOtlpReceiver } from "../../../scripts/lib/otlpReceiver";

const ROOT = join(__dirname, "..", "..", "..");
// The spec's examples (https://www.w3.org/TR/trace-context/#examples-of-http-traceparent-headers).
const TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID = "00f067aa0ba902b7";
const SPEC_EXAMPLE = `00-${TRACE_ID}-${PARENT_ID}-01`;
const VALID = /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/;

describe("offchain/common/tracing", function () {
  describe("#parseTraceparent", function () {
    it("reads the spec's examples: version 00, trace id, parent id, flags", function () {
      expect(parseTraceparent(SPEC_EXAMPLE)).to.deep.equal({ traceId: TRACE_ID, spanId: PARENT_ID, flags: 1 });
      expect(parseTraceparent(`00-${TRACE_ID}-${PARENT_ID}-00`)).to.deep.equal({
        traceId: TRACE_ID,
        spanId: PARENT_ID,
        flags: 0,
      });
      expect(parseTraceparent(`00-${TRACE_ID}-${PARENT_ID}-ff`)?.flags).to.equal(0xff);
    });

    it("refuses upper-case hex anywhere (the ABNF allows lower-case only)", function () {
      expect(parseTraceparent(`00-${TRACE_ID.toUpperCase()}-${PARENT_ID}-01`)).to.equal(undefined);
      expect(parseTraceparent(`00-${TRACE_ID}-00F067AA0BA902B7-01`)).to.equal(undefined);
      expect(parseTraceparent(`00-${TRACE_ID}-${PARENT_ID}-0A`)).to.equal(undefined);
      expect(parseTraceparent(`0A-${TRACE_ID}-${PARENT_ID}-01`)).to.equal(undefined);
    });

    it("refuses an all-zero trace id or parent id", function () {
      expect(parseTraceparent(`00-${"0".repeat(32)}-${PARENT_ID}-01`)).to.equal(undefined);
      expect(parseTraceparent(`00-${TRACE_ID}-${"0".repeat(16)}-01`)).to.equal(undefined);
    });

    it("refuses wrong lengths, wrong separators, non-hex, whitespace, empty and over-long values", function () {
      for (const bad of [
        undefined,
        "",
        `00-${TRACE_ID.slice(1)}-${PARENT_ID}-01`,
        `00-${TRACE_ID}0-${PARENT_ID}-01`,
        `00-${TRACE_ID}-${PARENT_ID.slice(1)}-01`,
        `00-${TRACE_ID}-${PARENT_ID}-1`,
        `0-${TRACE_ID}-${PARENT_ID}-01`,
        `00_${TRACE_ID}_${PARENT_ID}_01`,
        `00-${TRACE_ID.slice(0, 31)}g-${PARENT_ID}-01`,
        ` ${SPEC_EXAMPLE}`,
        `${SPEC_EXAMPLE} `,
        `01-${TRACE_ID}-${PARENT_ID}-01-${"a".repeat(MAX_TRACEPARENT_LENGTH)}`,
      ])
        expect(parseTraceparent(bad), String(bad)).to.equal(undefined);
    });

    it("refuses version ff, and any field after the flags in version 00", function () {
      expect(parseTraceparent(`ff-${TRACE_ID}-${PARENT_ID}-01`)).to.equal(undefined);
      expect(parseTraceparent(`00-${TRACE_ID}-${PARENT_ID}-01-what-the-future-will-be-like`)).to.equal(undefined);
    });

    it("reads a future version by the version-00 layout, its extra fields ignored, and only if a dash follows the flags", function () {
      const expected = { traceId: TRACE_ID, spanId: PARENT_ID, flags: 1 };
      expect(parseTraceparent(`cc-${TRACE_ID}-${PARENT_ID}-01`)).to.deep.equal(expected);
      expect(parseTraceparent(`cc-${TRACE_ID}-${PARENT_ID}-01-what-the-future-will-be-like`)).to.deep.equal(expected);
      expect(parseTraceparent(`cc-${TRACE_ID}-${PARENT_ID}-01.what-the-future-will-be-like`)).to.equal(undefined);
      expect(parseTraceparent(`cc-${TRACE_ID}-${PARENT_ID}-012`)).to.equal(undefined);
    });

    it("reads one header line and refuses several (a vendor cannot tell which one is meant)", function () {
      expect(parseTraceparent([SPEC_EXAMPLE])?.traceId).to.equal(TRACE_ID);
      expect(parseTraceparent([SPEC_EXAMPLE, SPEC_EXAMPLE])).to.equal(undefined);
      // node:http joins repeated unknown headers with ", ", which no longer parses either.
      expect(parseTraceparent(`${SPEC_EXAMPLE}, ${SPEC_EXAMPLE}`)).to.equal(undefined);
    });
  });

  describe("#formatTraceparent and #newTraceContext", function () {
    it("formats a context as version 00 and reads back the same context", function () {
      expect(formatTraceparent({ traceId: TRACE_ID, spanId: PARENT_ID, flags: 1 })).to.equal(SPEC_EXAMPLE);
      expect(formatTraceparent({ traceId: TRACE_ID, spanId: PARENT_ID, flags: 0xab })).to.equal(
        `00-${TRACE_ID}-${PARENT_ID}-ab`,
      );
      expect(formatTraceparent(parseTraceparent(`cc-${TRACE_ID}-${PARENT_ID}-01-x`)!)).to.equal(SPEC_EXAMPLE);
    });

    it("a child keeps the trace id with a new span id and only the sampled flag; no parent starts a sampled trace", function () {
      const parent = parseTraceparent(`00-${TRACE_ID}-${PARENT_ID}-ff`)!;
      const children = Array.from({ length: 2000 }, () => newTraceContext(parent));
      expect(children.filter((child) => child.traceId !== TRACE_ID || child.flags !== SAMPLED)).to.deep.equal([]);
      expect(children.filter((child) => !VALID.test(formatTraceparent(child)))).to.deep.equal([]);
      expect(new Set(children.map((child) => child.spanId)).size).to.equal(2000);
      expect(newTraceContext({ ...parent, flags: 0 }).flags).to.equal(0);
      const root = newTraceContext();
      expect(root.flags).to.equal(SAMPLED);
      expect(root.traceId)
        .to.match(/^[0-9a-f]{32}$/)
        .and.not.equal(newTraceContext().traceId);
    });
  });

  describe("when no OTLP endpoint is configured", function () {
    it("is off, and its spans carry valid traceparents: the caller's trace with a new span id, else a new trace", function () {
      const tracing = initTracing({ serviceName: "edge-gateway", env: {} });
      expect(tracing.enabled).to.equal(false);
      const child = tracing.startSpan("gateway.request", { parent: SPEC_EXAMPLE, attributes: { site: "a" } });
      expect(child.traceparent).to.match(VALID).and.not.equal(SPEC_EXAMPLE);
      expect(parseTraceparent(child.traceparent)).to.deep.include({ traceId: TRACE_ID, spanId: child.spanId });
      expect(traceLogFields(child)).to.deep.equal({ trace_id: TRACE_ID, span_id: child.spanId });
      child.setAttributes({ bytes: 3 });
      child.addEvent("queued");
      child.end({ error: "origin refused" });
      const grandchild = tracing.startSpan("host.job", { parent: child.traceparent });
      expect(grandchild.traceId).to.equal(TRACE_ID);
      const fresh = tracing.startSpan("gateway.request", { parent: `00-${"0".repeat(32)}-${PARENT_ID}-01` });
      expect(fresh.traceparent).to.match(VALID);
      expect(fresh.traceId).to.not.equal(TRACE_ID);
    });

    it("loads no OpenTelemetry module and opens no connection (checked in a process of its own)", function () {
      this.timeout(60_000);
      const script = `
        const net = require("node:net");
        let connects = 0;
        const connect = net.Socket.prototype.connect;
        net.Socket.prototype.connect = function (...args) { connects += 1; return connect.apply(this, args); };
        const { initTracing } = require("./offchain/common/tracing");
        const tracing = initTracing({ serviceName: "edge-host" });
        for (let i = 0; i < 1000; i += 1) tracing.startSpan("host.job", { parent: "${SPEC_EXAMPLE}" }).end();
        tracing.flush().then(() => tracing.shutdown()).then(() => setTimeout(() => {
          const otel = Object.keys(require.cache).filter((file) => file.includes("@opentelemetry"));
          console.log(JSON.stringify({ enabled: tracing.enabled, otel, connects }));
        }, 100));`;
      const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith("OTEL_")));
      const child = spawnSync(process.execPath, ["-r", "ts-node/register/transpile-only", "-e", script], {
        cwd: ROOT,
        env,
        encoding: "utf8",
      });
      expect(child.status, child.stderr).to.equal(0);
      expect(JSON.parse(child.stdout.trim().split("\n").pop()!)).to.deep.equal({
        enabled: false,
        otel: [],
        connects: 0,
      });
    });

    it("measures what a span costs when off (micro-benchmark, printed; not a timed assertion)", function () {
      const tracing = initTracing({ serviceName: "edge-gateway", env: {} });
      const rounds = 200_000;
      const measure = (parent: string | undefined) => {
        for (let i = 0; i < 10_000; i += 1) tracing.startSpan("warm", { parent }).end();
        const started = process.hrtime.bigint();
        let last = "";
        for (let i = 0; i < rounds; i += 1) {
          const span = tracing.startSpan("gateway.request", { parent });
          span.end();
          last = span.traceparent;
        }
        expect(last).to.match(VALID);
        return Number(process.hrtime.bigint() - started) / rounds / 1000;
      };
      const withParent = measure(SPEC_EXAMPLE);
      const fresh = measure(undefined);
      console.log(
        `      tracing off: ${withParent.toFixed(3)} µs per span with a parent to parse, ` +
          `${fresh.toFixed(3)} µs per new trace (startSpan + end, ${rounds} each)`,
      );
    });

    it("OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none keep it off; a value that is no http(s) URL is a ConfigError", function () {
      const base = { OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318" };
      expect(otlpTracesUrl(undefined, { ...base, OTEL_SDK_DISABLED: "true" })).to.equal(undefined);
      expect(otlpTracesUrl("http://collector:4318", { OTEL_TRACES_EXPORTER: "none" })).to.equal(undefined);
      expect(initTracing({ serviceName: "x", env: { ...base, OTEL_SDK_DISABLED: "TRUE" } }).enabled).to.equal(false);
      expect(() => otlpTracesUrl("collector:4318", {})).to.throw(ConfigError, "tracing endpoint");
      expect(() => otlpTracesUrl(undefined, { OTEL_EXPORTER_OTLP_ENDPOINT: "not a url" })).to.throw(
        ConfigError,
        "OTEL_EXPORTER_OTLP_ENDPOINT: an http(s) URL expected",
      );
    });

    it("takes the option, else OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as is, else OTEL_EXPORTER_OTLP_ENDPOINT plus /v1/traces", function () {
      const env = {
        OTEL_EXPORTER_OTLP_ENDPOINT: "http://base:4318/otlp/",
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "https://traces:4318/custom",
      };
      expect(otlpTracesUrl("http://option:4318", env)).to.equal("http://option:4318/v1/traces");
      expect(otlpTracesUrl("http://option:4318/v1/traces", env)).to.equal("http://option:4318/v1/traces");
      expect(otlpTracesUrl(undefined, env)).to.equal("https://traces:4318/custom");
      expect(otlpTracesUrl(undefined, { ...env, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "" })).to.equal(
        "http://base:4318/otlp/v1/traces",
      );
      expect(otlpTracesUrl(undefined, {})).to.equal(undefined);
    });
  });

  describe("when an OTLP endpoint is configured", function () {
    let receiver: OtlpReceiver;
    const started: Tracing[] = [];
    const tracingFor = (serviceName: string) => {
      const tracing = initTracing({ serviceName, endpoint: receiver.endpoint, env: {} });
      started.push(tracing);
      return tracing;
    };

    beforeEach(async function () {
      receiver = await startOtlpReceiver();
    });
    afterEach(async function () {
      await Promise.all(started.splice(0).map((tracing) => tracing.shutdown()));
      await receiver.close();
    });

    it("exports a parent and a child started from its traceparent: one trace, the right parent, attributes, events, error status", async function () {
      const gateway = tracingFor("edge-gateway");
      const host = tracingFor("edge-host");
      expect(gateway.enabled).to.equal(true);
      expect(gateway.url).to.equal(`${receiver.endpoint}/v1/traces`);

      const request = gateway.startSpan("gateway.request", {
        parent: SPEC_EXAMPLE,
        kind: "server",
        attributes: { "http.request.method": "GET", "edge.site": "site-1" },
      });
      expect(request.traceId).to.equal(TRACE_ID);
      expect(request.traceparent).to.equal(`00-${TRACE_ID}-${request.spanId}-01`);
      const job = host.startSpan("host.job", { parent: request.traceparent, attributes: { "edge.cache": "miss" } });
      job.addEvent("origin.response", { "http.response.status_code": 502 });
      job.setAttributes({ "edge.bytes": 1234, "edge.retried": false });
      job.end({ error: "origin answered 502" });
      request.setAttributes({ "http.response.status_code": 502 });
      request.end();
      request.end({ error: "a second end changes nothing" });

      await Promise.all([gateway.shutdown(), host.shutdown()]);
      expect(receiver.spans).to.have.length(2);
      const gatewaySpan = receiver.spans.find((span) => span.name === "gateway.request")!;
      const hostSpan = receiver.spans.find((span) => span.name === "host.job")!;
      expect(gatewaySpan).to.deep.include({
        service: "edge-gateway",
        traceId: TRACE_ID,
        spanId: request.spanId,
        parentSpanId: PARENT_ID,
        kind: 2,
        status: { code: 0, message: "" },
      });
      expect(gatewaySpan.attributes).to.deep.equal({
        "http.request.method": "GET",
        "edge.site": "site-1",
        "http.response.status_code": 502,
      });
      expect(hostSpan).to.deep.include({
        service: "edge-host",
        traceId: TRACE_ID,
        spanId: job.spanId,
        parentSpanId: request.spanId,
        kind: 1,
        status: { code: 2, message: "origin answered 502" },
      });
      expect(hostSpan.attributes).to.deep.equal({ "edge.cache": "miss", "edge.bytes": 1234, "edge.retried": false });
      expect(hostSpan.events).to.deep.equal([
        { name: "origin.response", attributes: { "http.response.status_code": 502 } },
      ]);
      expect(hostSpan.endNs >= hostSpan.startNs).to.equal(true);
    });

    it("starts a new trace for a missing or invalid traceparent; an unsampled caller is propagated but not exported", async function () {
      const gateway = tracingFor("edge-gateway");
      const fresh = gateway.startSpan("gateway.request", { parent: `00-${TRACE_ID.toUpperCase()}-${PARENT_ID}-01` });
      expect(fresh.traceId).to.not.equal(TRACE_ID);
      expect(fresh.traceparent).to.match(VALID);
      fresh.end();
      const unsampled = gateway.startSpan("gateway.request", { parent: `00-${TRACE_ID}-${PARENT_ID}-00` });
      expect(unsampled.traceparent).to.equal(`00-${TRACE_ID}-${unsampled.spanId}-00`);
      expect(unsampled.spanId).to.not.equal(PARENT_ID);
      unsampled.end();
      await gateway.shutdown();
      expect(receiver.spans.map((span) => [span.traceId, span.parentSpanId])).to.deep.equal([[fresh.traceId, ""]]);
    });

    it("holds ended spans in its batch until flush or shutdown sends them", async function () {
      const gateway = tracingFor("edge-gateway");
      for (let i = 0; i < 3; i += 1) gateway.startSpan(`span-${i}`).end();
      // The batch processor waits OTEL_BSP_SCHEDULE_DELAY (5 s) before sending: nothing has left yet.
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(receiver.requests).to.equal(0);
      await gateway.flush();
      expect(receiver.spans.map((span) => span.name)).to.deep.equal(["span-0", "span-1", "span-2"]);
      gateway.startSpan("span-3").end();
      await gateway.shutdown();
      expect(receiver.spans.map((span) => span.name)).to.include("span-3");
    });
  });
});
