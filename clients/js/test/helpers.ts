// Shared by the unit tests: the vectors, a signing stack made in memory, and a fake endpoint
// behind the transport seam (the only fake: everything else is the real code and jose).
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";

import { CompactEncrypt, CompactSign, exportJWK, generateKeyPair, importJWK } from "jose";

import { decode, decodeJson } from "../src/b64.js";
import { parseConfig } from "../src/config.js";
import type { ClientConfig } from "../src/config.js";
import { TransportError } from "../src/errors.js";
import type { Request, Response, Transport } from "../src/transport.js";

export const VECTORS = process.env["KEYOPS_VECTORS"] ?? resolve(process.cwd(), "../../tests/vectors");

export function vectors(name: string): any {
  return JSON.parse(readFileSync(join(VECTORS, name), "utf8"));
}

/** Apply a vector patch (see tests/vectors/README.md). */
export function patched(doc: unknown, patch: { path: (string | number)[]; value?: unknown; delete?: boolean }[]): any {
  let out: any = structuredClone(doc);
  for (const op of patch) {
    if (op.path.length === 0) {
      out = structuredClone(op.value);
      continue;
    }
    let target = out;
    for (const step of op.path.slice(0, -1)) target = target[step];
    const last = op.path[op.path.length - 1]!;
    if (op.delete) delete target[last];
    else target[last] = structuredClone(op.value);
  }
  return out;
}

export async function ecdhPair(jwk: JsonWebKey): Promise<CryptoKeyPair> {
  const alg = { name: "ECDH", namedCurve: "P-256" };
  const { d: _d, ...pub } = jwk;
  return {
    privateKey: await crypto.subtle.importKey("jwk", jwk, alg, false, ["deriveBits"]),
    publicKey: await crypto.subtle.importKey("jwk", pub, alg, true, []),
  };
}

export const NOW = 1_795_630_400;
export const DAY = 86_400;
export const URL_A = "https://keys-a.example.invalid";
export const URL_B = "https://keys-b.example.invalid";

export interface Payload {
  stack?: string;
  client?: string;
  credential_id?: string;
  key?: string;
  cluster?: string;
  bundle_version?: number;
  iat?: number;
  exp?: number;
  refresh_after?: number;
}

/** A stack's signing key, made for one test, and a config that pins it. */
export class Stack {
  private constructor(
    readonly doc: any,
    readonly config: ClientConfig,
    private readonly signingKey: CryptoKey,
    readonly kid: string,
  ) {}

  static async create(extra: Record<string, unknown> = {}): Promise<Stack> {
    const { privateKey, publicKey } = await generateKeyPair("ES256");
    const jwk = await exportJWK(publicKey);
    const secret = new Uint8Array(32).fill(7);
    const doc = {
      stack: "dev",
      client: "web",
      endpoints: [URL_A, URL_B],
      request_auth: { kid: "web-test", alg: "HS256", secret: Buffer.from(secret).toString("base64url") },
      pinned_keys: { keys: [{ ...jwk, kid: "test-sign", use: "sig", alg: "ES256" }] },
      ...extra,
    };
    return new Stack(doc, parseConfig(doc), privateKey as CryptoKey, "test-sign");
  }

  payload(p: Payload = {}): Required<Payload> {
    return {
      stack: "dev",
      client: "web",
      credential_id: "web-2026-11",
      key: "0123456789abcdef0123",
      cluster: "eu",
      bundle_version: 5,
      iat: NOW - DAY,
      exp: NOW + 30 * DAY,
      refresh_after: 3600,
      ...p,
    };
  }

  async sign(p: Payload = {}): Promise<string> {
    return new CompactSign(new TextEncoder().encode(JSON.stringify(this.payload(p))))
      .setProtectedHeader({ alg: "ES256", kid: this.kid })
      .sign(this.signingKey);
  }
}

/** The claims of a request's bearer token (read, not verified: the server's job). */
export function claimsOf(request: Request): any {
  const token = request.headers["Authorization"]!.replace(/^Bearer /, "");
  return decodeJson(token.split(".")[1]!);
}

/** A 200 answer carrying `signed`, encrypted to the request's epk as the server does. */
export async function joseAnswer(request: Request, signed: string): Promise<Response> {
  const epk = await importJWK(claimsOf(request).epk, "ECDH-ES+A256KW");
  const body = await new CompactEncrypt(new TextEncoder().encode(signed))
    .setProtectedHeader({ alg: "ECDH-ES+A256KW", enc: "A256GCM" })
    .encrypt(epk);
  return { status: 200, headers: { "content-type": "application/jose" }, body: new TextEncoder().encode(body) };
}

export function problem(status: number, code: string, headers: Record<string, string> = {}): Response {
  const body = JSON.stringify({ type: `https://keyops.invalid/problems/${code}`, title: code, status, code });
  return {
    status,
    headers: { "content-type": "application/problem+json", ...headers },
    body: new TextEncoder().encode(body),
  };
}

export type Handler = (request: Request, claims: any) => Response | "down" | Promise<Response | "down">;

/** A transport answering from a handler, recording every request. "down": no answer. */
export function fakeTransport(handler: Handler): Transport & { requests: { url: string; claims: any; request: Request }[] } {
  const requests: { url: string; claims: any; request: Request }[] = [];
  const transport = async (request: Request): Promise<Response> => {
    const claims = claimsOf(request);
    requests.push({ url: request.url.replace(/\/v1\/credentials$/, ""), claims, request });
    const answer = await handler(request, claims);
    if (answer === "down") throw new TransportError("connection refused");
    return answer;
  };
  return Object.assign(transport, { requests });
}

/**
 * A transport in front of `inner` that sends the first request's token (its whole
 * Authorization header) again in request number `at` (0 is the first), as a proxy that retries
 * or someone who captured the request would: the server sees that token twice.
 */
export function resend(inner: Transport, at: number): Transport {
  let count = 0;
  let first = "";
  return (request: Request) => {
    const headers = { ...request.headers };
    if (count === 0) first = headers["Authorization"]!;
    if (count === at) headers["Authorization"] = first;
    count += 1;
    return inner({ ...request, headers });
  };
}

/** A clock the test moves by hand, and a sleep that records instead of waiting. */
export function fakeTime(start = NOW) {
  const slept: number[] = [];
  const time = {
    now: start,
    slept,
    clock: () => time.now,
    sleep: async (seconds: number) => {
      slept.push(seconds);
    },
  };
  return time;
}

export { decode };
