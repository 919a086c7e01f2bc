/**
 * The request token of protocol v1, one per request.
 *
 * Every request gets a fresh P-256 key pair from WebCrypto. Its public half travels in the token
 * as `epk`; the server encrypts its answer to it, and the private half is created
 * non-extractable and never leaves this object. A recorded request replayed by someone else
 * therefore yields an answer nobody else can open.
 */
import { CompactSign } from "jose";

import { encode } from "./b64.js";
import type { ClientConfig } from "./config.js";
import { ID_RE } from "./config.js";
import { UsageError } from "./errors.js";
import { repr } from "./repr.js";

export const INSTALL_ID_RE = /^[A-Za-z0-9_-]{8,64}$/;
// Semantic Versioning 2.0.0, the grammar the server compares app versions with.
export const SEMVER_RE =
  /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$/;

/** What the app says about itself in every token. */
export interface Identity {
  /** The app's semantic version, e.g. "5.2.0". */
  readonly appVersion: string;
  /** Made once per install (see {@link newInstallId}) and stored: it picks the rollout bucket. */
  readonly installId: string;
  /** The credential id the app holds now, if any (adoption telemetry). */
  readonly held?: string | null;
}

const shown = (value: unknown): string => (typeof value === "string" ? repr(value) : String(value));

/** Throws {@link UsageError} unless the identity is one the server accepts. */
export function checkIdentity(identity: Identity): Identity {
  const { appVersion, installId, held } = identity;
  if (typeof appVersion !== "string" || !SEMVER_RE.test(appVersion)) {
    throw new UsageError(
      `app version ${shown(appVersion)} is not a semantic version`,
      "Use MAJOR.MINOR.PATCH, e.g. 5.2.0.",
    );
  }
  if (typeof installId !== "string" || !INSTALL_ID_RE.test(installId)) {
    throw new UsageError(
      "the install id must be 8-64 characters of A-Z a-z 0-9 _ -",
      "Generate it once per install, e.g. with newInstallId().",
    );
  }
  if (held !== undefined && held !== null && (typeof held !== "string" || !ID_RE.test(held))) {
    throw new UsageError(`held credential id ${shown(held)} is not a credential id`);
  }
  return identity;
}

// The reference client's JSON escapes every non-ASCII character; so does this one.
const ASCII_ESCAPE = /[\u0080-\uffff]/g;
const escapeChar = (c: string): string => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0");

function randomId(): string {
  return encode(globalThis.crypto.getRandomValues(new Uint8Array(16)));
}

/** A fresh install id (22 characters of base64url from 16 CSPRNG bytes), to store once. */
export function newInstallId(): string {
  return randomId();
}

export interface SignedRequest {
  readonly token: string;
  /** The private half of `epk`: the only key that opens the answer to this request. */
  readonly ephemeral: CryptoKey;
  readonly jti: string;
}

/** Fixed inputs, for test vectors only: an app never passes these. */
export interface MintFixture {
  readonly ephemeral?: CryptoKeyPair;
  readonly jti?: string;
}

/**
 * A signed token for one request, issued at `now` (seconds since the epoch; the caller adds
 * any clock skew it learned).
 */
export async function mintToken(
  config: ClientConfig,
  identity: Identity,
  now: number,
  fixture: MintFixture = {},
): Promise<SignedRequest> {
  const pair =
    fixture.ephemeral ??
    ((await globalThis.crypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, false, [
      "deriveBits",
    ])) as CryptoKeyPair);
  const publicJwk = await globalThis.crypto.subtle.exportKey("jwk", pair.publicKey);
  const jti = fixture.jti ?? randomId();
  // Member order matches the reference client's, so both produce the same bytes.
  const claims: Record<string, unknown> = {
    sub: config.client,
    aud: config.stack,
    iat: Math.floor(now),
    jti,
    app_version: identity.appVersion,
    install_id: identity.installId,
    epk: { kty: "EC", crv: "P-256", x: publicJwk.x, y: publicJwk.y },
  };
  if (identity.held !== undefined && identity.held !== null) claims["held"] = identity.held;
  const text = JSON.stringify(claims).replace(ASCII_ESCAPE, escapeChar);
  const token = await new CompactSign(new TextEncoder().encode(text))
    .setProtectedHeader({ typ: "JWT", alg: "HS256", kid: config.kid })
    .sign(config.secret);
  return { token, ephemeral: pair.privateKey, jti };
}
