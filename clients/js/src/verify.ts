/**
 * Opening and checking a protocol v1 answer. Two layers, checked in this order:
 *
 * 1. the JWE (`ECDH-ES+A256KW` / `A256GCM`) must open with this request's ephemeral key;
 *    nothing else is accepted, so an answer meant for another request cannot be used;
 * 2. the JWS inside must be `ES256`, name a pinned `kid` and verify with that key. Its payload
 *    must be for this stack and this client, not be expired, and not carry a `bundle_version`
 *    lower than the highest this install has already accepted (a rollback is refused).
 *
 * The algorithms are ours: headers are read before any key is used, and the library is told
 * exactly which algorithms it may run. The reason codes are the reference client's.
 */
import { compactDecrypt, compactVerify, importJWK } from "jose";

import { decodeJson } from "./b64.js";
import type { ClientConfig } from "./config.js";
import { ID_RE, KEY_RE, onCurve } from "./config.js";
import { VerifyError } from "./errors.js";
import { repr } from "./repr.js";

const JWE_ALG = "ECDH-ES+A256KW";
const JWE_ENC = "A256GCM";
const EPK_MESSAGE = "the JWE header's epk is not a P-256 public key";

/** A credential from a signed payload that passed every check. */
export interface Verified {
  readonly stack: string;
  readonly client: string;
  readonly credentialId: string;
  readonly key: string;
  readonly cluster: string;
  readonly bundleVersion: number;
  readonly iat: number;
  readonly exp: number;
  readonly refreshAfter: number;
  /** The compact JWS itself, kept so the cache can be verified again when it is read back. */
  readonly signed: string;
}

type Json = Record<string, unknown>;

const importedKeys = new WeakMap<ClientConfig, Map<string, Promise<CryptoKey | Uint8Array>>>();

function pinnedKey(config: ClientConfig, kid: string): Promise<CryptoKey | Uint8Array> | null {
  const jwk = config.pinned.get(kid);
  if (!jwk) return null;
  let byKid = importedKeys.get(config);
  if (!byKid) importedKeys.set(config, (byKid = new Map()));
  let key = byKid.get(kid);
  if (!key) byKid.set(kid, (key = importJWK({ ...jwk }, "ES256")));
  return key;
}

// Whitespace the reference client strips around a body: ASCII whitespace and \x1c-\x1f.
const EDGE_SPACE = /^[\s\x1c-\x1f]+|[\s\x1c-\x1f]+$/g;

function ascii(bytes: Uint8Array): string | null {
  for (const byte of bytes) if (byte > 0x7f) return null;
  return new TextDecoder().decode(bytes);
}

function peekHeader(compact: string, parts: number, what: "JWE" | "JWS"): Json {
  const reason = `not-${what.toLowerCase()}`;
  const pieces = compact.split(".");
  if (pieces.length !== parts) throw new VerifyError(reason, `the answer is not a compact ${what}`);
  let header: unknown;
  try {
    header = decodeJson(pieces[0]!);
  } catch {
    throw new VerifyError(reason, `the ${what} header is not base64url JSON`);
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) {
    throw new VerifyError(reason, `the ${what} header is not a JSON object`);
  }
  return header as Json;
}

/**
 * The sender's ephemeral key must be a P-256 public key, and only that, before any key is used:
 * an `epk` that discloses its private `d`, or a point off the curve, is no honest answer.
 */
function checkEpk(epk: unknown): void {
  const object = typeof epk === "object" && epk !== null && !Array.isArray(epk);
  if (object && "d" in epk) throw new VerifyError("not-jwe", "the JWE header's epk holds a private key ('d')");
  const json = epk as Json;
  if (!object || json["kty"] !== "EC" || json["crv"] !== "P-256" || !onCurve(json)) {
    throw new VerifyError("not-jwe", EPK_MESSAGE);
  }
}

/** Decrypt an answer with the request's ephemeral key, then {@link verifySigned} it. */
export async function openResponse(
  body: Uint8Array,
  ephemeral: CryptoKey,
  config: ClientConfig,
  now: number,
  minBundleVersion: number,
): Promise<Verified> {
  const text = ascii(body)?.replace(EDGE_SPACE, "");
  if (text === undefined) throw new VerifyError("not-jwe", "the answer is not a compact JWE");
  const header = peekHeader(text, 5, "JWE");
  if (header["alg"] !== JWE_ALG || header["enc"] !== JWE_ENC) {
    throw new VerifyError("wrong-alg", `the answer is not encrypted with ${JWE_ALG} / ${JWE_ENC}`);
  }
  checkEpk(header["epk"]);
  let plaintext: Uint8Array;
  try {
    plaintext = (
      await compactDecrypt(text, ephemeral, {
        keyManagementAlgorithms: [JWE_ALG],
        contentEncryptionAlgorithms: [JWE_ENC],
      })
    ).plaintext;
  } catch {
    throw new VerifyError("decrypt-failed", "the answer does not decrypt with this request's key");
  }
  const signed = ascii(plaintext);
  if (signed === null) throw new VerifyError("not-jws", "the decrypted answer is not a compact JWS");
  return verifySigned(signed, config, now, minBundleVersion);
}

/** Check a compact JWS against the pinned keys and the payload rules. */
export async function verifySigned(
  signed: string,
  config: ClientConfig,
  now: number,
  minBundleVersion: number,
): Promise<Verified> {
  const header = peekHeader(signed, 3, "JWS");
  if (header["alg"] !== "ES256") {
    throw new VerifyError("wrong-alg", `the payload is signed with ${show(header["alg"])}, not ES256`);
  }
  const kid = header["kid"];
  const key = typeof kid === "string" ? pinnedKey(config, kid) : null;
  if (key === null) {
    throw new VerifyError("unknown-kid", `the payload is signed by ${show(kid)}, not a pinned key`);
  }
  let payloadBytes: Uint8Array;
  try {
    payloadBytes = (await compactVerify(signed, await key, { algorithms: ["ES256"] })).payload;
  } catch {
    throw new VerifyError("bad-signature", `the signature does not verify with pinned key ${show(kid)}`);
  }
  let payload: unknown;
  try {
    payload = JSON.parse(markFloats(new TextDecoder("utf-8", { fatal: true }).decode(payloadBytes)));
  } catch {
    throw new VerifyError("bad-payload", "the signed payload is not JSON");
  }
  return checkPayload(payload, signed, config, now, minBundleVersion);
}

function show(value: unknown): string {
  return value === undefined ? "None" : typeof value === "string" ? repr(value) : JSON.stringify(value);
}

/**
 * JSON has one number type; the payload rules want integers. `17.0` or `1e3` must not pass as
 * an integer (the reference client reads them as floats and refuses them), so every number
 * literal with a fraction or an exponent is replaced, before parsing, by a value that is
 * neither a number nor a string.
 */
function markFloats(text: string): string {
  return text.replace(/"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/g, (token) =>
    token[0] !== '"' && /[.eE]/.test(token) ? "[]" : token,
  );
}

function int(payload: Json, name: string): number {
  const value = payload[name];
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0) {
    throw new VerifyError("bad-payload", `the payload's '${name}' is not a non-negative integer`);
  }
  return value;
}

function str(payload: Json, name: string): string {
  const value = payload[name];
  if (typeof value !== "string" || !value) {
    throw new VerifyError("bad-payload", `the payload's '${name}' is not a non-empty string`);
  }
  return value;
}

function checkPayload(
  payload: unknown,
  signed: string,
  config: ClientConfig,
  now: number,
  minBundleVersion: number,
): Verified {
  if (typeof payload !== "object" || payload === null || Array.isArray(payload)) {
    throw new VerifyError("bad-payload", "the signed payload is not a JSON object");
  }
  const p = payload as Json;
  const stack = str(p, "stack");
  const client = str(p, "client");
  if (stack !== config.stack) {
    throw new VerifyError("wrong-stack", `the payload is for stack ${repr(stack)}, not ${repr(config.stack)}`);
  }
  if (client !== config.client) {
    throw new VerifyError("wrong-client", `the payload is for client ${repr(client)}, not ${repr(config.client)}`);
  }
  const credentialId = str(p, "credential_id");
  const key = str(p, "key");
  if (!ID_RE.test(credentialId)) {
    throw new VerifyError("bad-payload", "the payload's 'credential_id' is not a credential id");
  }
  if (!KEY_RE.test(key)) {
    throw new VerifyError("bad-payload", "the payload's 'key' is not 20 lowercase hex characters");
  }
  const exp = int(p, "exp");
  if (exp <= now) throw new VerifyError("expired", `the payload expired at ${exp} (now ${Math.floor(now)})`);
  const bundleVersion = int(p, "bundle_version");
  if (bundleVersion < minBundleVersion) {
    throw new VerifyError(
      "rollback",
      `bundle_version ${bundleVersion} is older than ${minBundleVersion}, already accepted`,
    );
  }
  return {
    stack,
    client,
    credentialId,
    key,
    cluster: str(p, "cluster"),
    bundleVersion,
    iat: int(p, "iat"),
    exp,
    refreshAfter: int(p, "refresh_after"),
    signed,
  };
}
