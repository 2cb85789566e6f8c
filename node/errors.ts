/**
 * The daemon's HTTP errors: one class with a stable code (listed in docs/errors.md), a status and a short
 * message. Codes are never reused for another meaning.
 */
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

export class NodeError extends Error {
  override readonly name = "NodeError";
  readonly status: number;

  constructor(
    readonly code: NodeErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.status = NODE_ERRORS[code];
  }
}
