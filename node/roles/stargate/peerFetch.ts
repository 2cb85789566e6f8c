/** Fetching a peer stargate's JSON (its verdicts, D55): bounded in time and size, since a peer is not trusted. */
import { type Agent, request } from "undici";

/** Destroys a response body nobody reads; its "aborted" error has nobody to go to. */
function discard(body: NodeJS.ReadableStream & { destroy(): void }): void {
  body.on("error", () => {});
  body.destroy();
}

/** GETs `url` as JSON through `agent`, within `timeoutMs` and `maxBodyBytes` (a peer's answer is not trusted). */
export async function getJson(agent: Agent, url: string, timeoutMs: number, maxBodyBytes: number): Promise<unknown> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
  try {
    const response = await request(url, { dispatcher: agent, signal: abort.signal });
    const declared = Number(response.headers["content-length"] ?? 0);
    if (response.statusCode !== 200 || declared > maxBodyBytes) {
      discard(response.body);
      throw new Error(
        response.statusCode !== 200
          ? `answered ${response.statusCode}`
          : `its answer is ${declared} bytes, over the ${maxBodyBytes} allowed`,
      );
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of response.body) {
      size += (chunk as Buffer).length;
      if (size > maxBodyBytes) {
        discard(response.body);
        throw new Error(`its answer is over the ${maxBodyBytes} bytes allowed`);
      }
      chunks.push(chunk as Buffer);
    }
    return JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } finally {
    clearTimeout(timer);
  }
}
