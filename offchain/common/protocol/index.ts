/**
 * The wire protocol: every body that crosses a process boundary between nodes, services and customers, as one
 * TypeBox schema plus its static type, with a signer and a verifier per signed message. Senders, receivers, the
 * outbox and the tests import these same definitions.
 */
export * from "./patterns";
export * from "./primitives";
export * from "./eip712";
export * from "./hashes";
export * from "./jobReport";
export * from "./hostTally";
export * from "./heartbeat";
export * from "./usageBatch";
export * from "./hostRegistration";
export * from "./jobRequest";
export * from "./hostJob";
export * from "./scoreBatchSigning";
export * from "./zones";
export * from "./netConfig";
export * from "./configMessages";
export * from "./certs";
export * from "./regions";
export * from "./placement";
export * from "./storageManifest";
export * from "./storageRequest";
