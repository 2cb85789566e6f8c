/** Newton's test servers (fixed, stall, status, reset, hang): scripts/lib/httpTestServer.ts, shared with its benchmark. */
export * from "../../../scripts/lib/httpTestServer";
