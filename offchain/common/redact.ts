/**
 * Secrets out of logs (N2). An RPC URL often carries an API key in its path, query or user info
 * (`https://mainnet.example/v3/<key>`), and viem puts the URL into its errors' messages and a `url` field, so a
 * failed sync used to print the key to every log line and to stderr. Every logger of the daemon and the services
 * serializes errors through `serializeError`, and messages that may hold a URL go through `redactUrls`.
 */

/** scheme://[userinfo@]host[/path?query#fragment] up to the next space or quote. */
const URL_IN_TEXT = /\b([a-z][a-z0-9+.-]*:\/\/)(?:[^\s/?#@"'<>]*@)?([^\s/?#"'<>]+)([^\s"'<>]*)/gi;

/** `text` with every URL cut to its scheme and host: credentials, path, query and fragment become `/…`. */
export function redactUrls(text: string): string {
  return text.replace(URL_IN_TEXT, (_match, scheme: string, host: string, rest: string) =>
    rest && rest !== "/" ? `${scheme}${host}/…` : `${scheme}${host}${rest}`,
  );
}

/**
 * pino's `err` serializer, redacted: type, message, stack and code, with URLs cut; a `url` field (viem's
 * HttpRequestError) is cut the same way. Other enumerable fields are left out: they may hold request bodies and
 * headers.
 */
export interface SerializedError {
  type: string;
  message: string;
  stack: string;
  [field: string]: unknown;
}

export function serializeError(error: unknown): SerializedError {
  if (!(error instanceof Error)) return { type: typeof error, message: redactUrls(String(error)), stack: "" };
  const out: SerializedError = {
    type: error.name,
    message: redactUrls(error.message),
    stack: redactUrls(error.stack ?? ""),
  };
  const { code, url, status } = error as Error & { code?: unknown; url?: unknown; status?: unknown };
  if (code !== undefined) out.code = code;
  if (status !== undefined) out.status = status;
  if (typeof url === "string") out.url = redactUrls(url);
  if (error.cause !== undefined) out.cause = serializeError(error.cause);
  return out;
}

/** The serializers every pino logger of the project takes. */
export const logSerializers = { err: serializeError, error: serializeError };
