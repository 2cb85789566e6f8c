/** The daemon's error codes and their HTTP status (docs/errors.md); raised as EdgeErrors. */
import { errorFactory } from "../offchain/common/errors";

export const NODE_ERRORS = {
  EDGE_NODE_NOT_SERVING: 503,
  EDGE_NODE_VIEW_STALE: 503,
  EDGE_NODE_NO_HOSTS: 503,
  EDGE_NODE_HOST_FAILED: 502,
  EDGE_NODE_UNAUTHORIZED: 401,
  EDGE_NODE_BAD_SIGNATURE: 401,
  EDGE_NODE_SIGNATURE_EXPIRED: 401,
  EDGE_NODE_REPLAYED: 409,
  EDGE_NODE_HOST_NOT_ADMITTED: 403,
  EDGE_NODE_WRONG_GATEWAY: 400,
  EDGE_NODE_CUSTOMER_NOT_ALLOWED: 402,
  EDGE_NODE_JOB_TOO_LARGE: 413,
  EDGE_NODE_ADMIN_DISABLED: 403,
} as const;

export type NodeErrorCode = keyof typeof NODE_ERRORS;

export const nodeError = errorFactory(NODE_ERRORS);
