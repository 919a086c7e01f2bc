/**
 * The HTTP seam of the client: one request in, one response out.
 *
 * A transport is any async function `(Request) => Response` that throws {@link TransportError}
 * when no HTTP answer arrived (refused, reset, DNS, TLS, deadline). Tests pass a function that
 * answers from memory; apps use {@link fetchTransport}, built on the platform's `fetch`.
 */
import { TransportError } from "./errors.js";

/** Larger answers are refused: a v1 credential response is about 1.5 KB. */
export const MAX_BODY = 64 * 1024;

export interface Request {
  readonly method: "GET";
  readonly url: string;
  /** Holds the bearer token: never log it. */
  readonly headers: Readonly<Record<string, string>>;
  /** Seconds the whole attempt may take: connect, send, and read the full body. */
  readonly timeout: number;
}

export interface Response {
  readonly status: number;
  /** Header names in lower case. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Uint8Array;
}

export type Transport = (request: Request) => Promise<Response>;

/** A response header by case-insensitive name, or null. */
export function header(response: Response, name: string): string | null {
  const wanted = name.toLowerCase();
  for (const [key, value] of Object.entries(response.headers)) {
    if (key.toLowerCase() === wanted) return value;
  }
  return null;
}

function describe(error: unknown): string {
  const cause = (error as { cause?: { code?: unknown } } | null)?.cause;
  const code = typeof cause === "object" && cause !== null ? cause.code : undefined;
  if (code === "ECONNREFUSED") return "connection refused";
  if (code === "ECONNRESET") return "connection reset";
  if (code === "ENOTFOUND" || code === "EAI_AGAIN") return "host name not resolved";
  const name = error instanceof Error ? error.name : typeof error;
  return `network error (${typeof code === "string" ? code : name})`;
}

async function readBody(response: globalThis.Response): Promise<Uint8Array> {
  const declared = Number(response.headers.get("content-length"));
  if (declared > MAX_BODY) throw new TransportError(`answer larger than ${MAX_BODY} bytes`);
  const reader = response.body?.getReader();
  if (!reader) {
    // React Native's fetch has no streams: the deadline still bounds the whole read.
    const bytes = new Uint8Array(await response.arrayBuffer());
    if (bytes.length > MAX_BODY) throw new TransportError(`answer larger than ${MAX_BODY} bytes`);
    return bytes;
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > MAX_BODY) {
      void reader.cancel().catch(() => undefined);
      throw new TransportError(`answer larger than ${MAX_BODY} bytes`);
    }
    chunks.push(value);
  }
  const body = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.length;
  }
  return body;
}

/**
 * Send a request with the platform's `fetch`. One deadline (an AbortController) covers the
 * whole exchange: connecting, sending, and reading the full body, so a server that trickles
 * one byte a second still ends the attempt on time. Redirects are not followed, cookies are
 * not sent, and nothing is cached.
 */
export const fetchTransport: Transport = async (request) => {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), request.timeout * 1000);
  try {
    const response = await globalThis.fetch(request.url, {
      method: request.method,
      headers: request.headers,
      redirect: "manual",
      credentials: "omit",
      cache: "no-store",
      signal: controller.signal,
    });
    const headers: Record<string, string> = {};
    response.headers.forEach((value, name) => {
      headers[name.toLowerCase()] = value;
    });
    // A browser hides a redirect it did not follow behind status 0: report it as a 3xx.
    const status = response.type === "opaqueredirect" ? 300 : response.status;
    return { status, headers, body: await readBody(response) };
  } catch (error) {
    if (controller.signal.aborted) throw new TransportError(`timed out after ${request.timeout} s`);
    if (error instanceof TransportError) throw error;
    throw new TransportError(describe(error));
  } finally {
    clearTimeout(timer);
  }
};
