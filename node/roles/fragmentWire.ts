/**
 * The wire of Edge Storage fragments over a host's link (issue 21, docs/storage.md "Fragments over the link"),
 * shared by the host's handler (host/fragmentJobs.ts) and the gateway's client (gateway/fragmentClient.ts), which
 * may not import each other. One HTTP/2 stream per operation, `x-edge-kind: fragment`:
 *
 *   PUT    /fragments/<objectId>/<index>   body = the bytes, `x-edge-fragment-sha256`: 201 stored, 200 exists
 *   GET    /fragments/<objectId>/<index>   200, the bytes, `x-edge-fragment-sha256`
 *   DELETE /fragments/<objectId>/<index>   200 {deleted: boolean}
 *   GET    /fragments/<objectId>           200 {indices, lost}: the indices held, and those found lost
 *   GET    /fragments/lost                 200 {lost: ["<objectId>/<index>", ...], total}: the oldest LOST_PAGE
 *
 * Errors: the status of the EdgeError, `x-edge-error: <code>`, a JSON body {error, code}.
 */

export const FRAGMENT_KIND = "fragment";
export const FRAGMENT_SHA256_HEADER = "x-edge-fragment-sha256";
/** Largest fragment on the wire: the host store's DEFAULT_MAX_FRAGMENT_BYTES (a test pins them equal). */
export const FRAGMENT_WIRE_MAX_BYTES = 1024 * 1024;
/** Lost keys per answer at most: ~70 bytes each, so an answer stays under LIST_ANSWER_MAX_BYTES. */
export const LOST_PAGE = 500;
/** Largest JSON answer (a list, a put's or delete's result, an error) the gateway reads. */
export const LIST_ANSWER_MAX_BYTES = 64 * 1024;

export type FragmentRoute =
  { what: "fragment"; objectId: string; index: number } | { what: "object"; objectId: string } | { what: "lost" };

const FRAGMENT_PATH = /^\/fragments\/([^/]{1,80})\/([^/]{1,8})$/;
const OBJECT_PATH = /^\/fragments\/([^/]{1,80})$/;
/** A canonical decimal index: no sign, no leading zeros, at most 3 digits (the range is checked by the store). */
const INDEX = /^(0|[1-9][0-9]{0,2})$/;

/**
 * The route a request path names, or undefined when it names none. The object id and index are returned as
 * given (a non-canonical index as NaN); their form is the store's to check (checkFragmentKey: 400).
 */
export function parseFragmentRoute(path: string): FragmentRoute | undefined {
  if (path === "/fragments/lost") return { what: "lost" };
  const fragment = FRAGMENT_PATH.exec(path);
  if (fragment) {
    return { what: "fragment", objectId: fragment[1], index: INDEX.test(fragment[2]) ? Number(fragment[2]) : NaN };
  }
  const object = OBJECT_PATH.exec(path);
  return object ? { what: "object", objectId: object[1] } : undefined;
}

export function fragmentPath(objectId: string, index?: number): string {
  return index === undefined ? `/fragments/${objectId}` : `/fragments/${objectId}/${index}`;
}
