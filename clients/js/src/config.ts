/**
 * The bootstrap config an app build carries (`keyops client-config` writes it).
 *
 * Parsing is strict, with the same checks as the reference client: an app that ships a broken
 * config should fail in its first test run, not in the field. Every problem names the JSON path
 * that is wrong; the HMAC secret itself never appears in a message, nor when the config is printed.
 */
import { decode } from "./b64.js";
import { ClientConfigError } from "./errors.js";
import { repr } from "./repr.js";

export const KEY_RE = /^[0-9a-f]{20}$/;
export const ID_RE = /^[a-z0-9][a-z0-9-]{2,62}$/;
/** Shortest HMAC key accepted, in bytes. */
export const MIN_SECRET_BYTES = 32;

/** The optional key compiled into the app, used only when there is neither network nor cache. */
export interface BundledKey {
  readonly credentialId: string;
  readonly key: string;
  readonly cluster: string;
}

/** A public ES256 key, reduced to the members that define it. */
export interface PinnedKey {
  readonly kty: "EC";
  readonly crv: "P-256";
  readonly x: string;
  readonly y: string;
}

export interface ClientConfig {
  readonly stack: string;
  readonly client: string;
  /** Base URLs without a trailing slash, in the order to try them. */
  readonly endpoints: readonly string[];
  /** The request_auth kid. */
  readonly kid: string;
  /** The raw HMAC key bytes, decoded from base64url. Not enumerable, so never printed. */
  readonly secret: Uint8Array;
  /** The only keys a payload may be signed with, by kid. */
  readonly pinned: ReadonlyMap<string, PinnedKey>;
  readonly bundled: BundledKey | null;
}

type Json = Record<string, unknown>;

const parsed = new WeakSet<object>();

/** True for a config returned by {@link parseConfig}. */
export function isParsedConfig(value: unknown): value is ClientConfig {
  return typeof value === "object" && value !== null && parsed.has(value);
}

function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function string(data: Json, name: string, where: string): string {
  const value = data[name];
  if (typeof value !== "string" || !value) {
    throw new ClientConfigError(`${where}.${name}`, "missing or not a non-empty string");
  }
  return value;
}

// An http(s) URL with a host: scheme, optional userinfo, then a host name or [IPv6] literal.
const BASE_URL = /^https?:\/\/(?:[^/?#@]*@)?(?:\[[0-9A-Fa-f:.]+\]|[^/?#@:[\]]+)(?::\d*)?(?:[/?#]|$)/i;

function endpoints(data: Json): string[] {
  const value = data["endpoints"];
  if (!Array.isArray(value) || value.length === 0) {
    throw new ClientConfigError("$.endpoints", "must be a non-empty list of base URLs");
  }
  return value.map((url: unknown, i) => {
    if (typeof url !== "string" || !BASE_URL.test(url)) {
      throw new ClientConfigError(`$.endpoints[${i}]`, "not an http(s) base URL");
    }
    return url.replace(/\/+$/, "");
  });
}

function requestAuth(data: Json): [string, Uint8Array] {
  const auth = data["request_auth"];
  if (!isObject(auth)) throw new ClientConfigError("$.request_auth", "missing or not an object");
  const kid = string(auth, "kid", "$.request_auth");
  if (auth["alg"] !== "HS256") throw new ClientConfigError("$.request_auth.alg", 'must be "HS256"');
  const raw = string(auth, "secret", "$.request_auth");
  let secret: Uint8Array;
  try {
    secret = decode(raw);
  } catch {
    throw new ClientConfigError("$.request_auth.secret", "is not base64url");
  }
  if (secret.length < MIN_SECRET_BYTES) {
    throw new ClientConfigError(
      "$.request_auth.secret",
      `decodes to fewer than ${MIN_SECRET_BYTES} bytes`,
    );
  }
  return [kid, secret];
}

// P-256 (secp256r1): y^2 = x^3 - 3x + b over the prime field p.
const P = 2n ** 256n - 2n ** 224n + 2n ** 192n + 2n ** 96n - 1n;
const B = 0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604bn;

function coordinate(text: unknown): bigint | null {
  if (typeof text !== "string") return null;
  let bytes: Uint8Array;
  try {
    bytes = decode(text);
  } catch {
    return null;
  }
  if (bytes.length !== 32) return null;
  let n = 0n;
  for (const byte of bytes) n = (n << 8n) | BigInt(byte);
  return n < P ? n : null;
}

/** True when `item`'s `x` and `y` are a point of P-256 (32-byte base64url coordinates). */
export function onCurve(item: Json): boolean {
  const x = coordinate(item["x"]);
  const y = coordinate(item["y"]);
  if (x === null || y === null) return false;
  return (y * y - (x * x * x - 3n * x + B)) % P === 0n;
}

function pinnedKeys(data: Json): Map<string, PinnedKey> {
  const jwks = data["pinned_keys"];
  const keys = isObject(jwks) ? jwks["keys"] : undefined;
  if (!Array.isArray(keys) || keys.length === 0) {
    throw new ClientConfigError("$.pinned_keys", "must be a JWKS with at least one key");
  }
  const pinned = new Map<string, PinnedKey>();
  keys.forEach((item: unknown, i) => {
    const where = `$.pinned_keys.keys[${i}]`;
    if (!isObject(item) || item["kty"] !== "EC" || item["crv"] !== "P-256") {
      throw new ClientConfigError(where, "must be an EC P-256 public key (ES256)");
    }
    if ("d" in item) {
      // A private signing key in an app build would let anyone who unpacks the app sign.
      throw new ClientConfigError(where, "holds a private key ('d'); pin public keys only");
    }
    const kid = string(item, "kid", where);
    if (pinned.has(kid)) throw new ClientConfigError(`${where}.kid`, `${repr(kid)} is pinned twice`);
    if (!onCurve(item)) throw new ClientConfigError(where, "is not a valid P-256 public key");
    pinned.set(kid, { kty: "EC", crv: "P-256", x: item["x"] as string, y: item["y"] as string });
  });
  return pinned;
}

function bundledKey(data: Json): BundledKey | null {
  const value = data["bundled_fallback"];
  if (value === undefined || value === null) return null;
  const where = "$.bundled_fallback";
  if (!isObject(value)) {
    throw new ClientConfigError(where, "must be an object {credential_id, key, cluster}");
  }
  const credentialId = string(value, "credential_id", where);
  const key = string(value, "key", where);
  const cluster = string(value, "cluster", where);
  if (!ID_RE.test(credentialId)) {
    throw new ClientConfigError(`${where}.credential_id`, "is not a credential id");
  }
  if (!KEY_RE.test(key)) throw new ClientConfigError(`${where}.key`, "is not 20 lowercase hex characters");
  return Object.freeze({ credentialId, key, cluster });
}

/**
 * Validate a bootstrap config (the decoded JSON document, or its text) into a
 * {@link ClientConfig}. Throws {@link ClientConfigError} naming the first problem found.
 */
export function parseConfig(input: unknown): ClientConfig {
  let data = input;
  if (typeof input === "string") {
    try {
      data = JSON.parse(input);
    } catch {
      throw new ClientConfigError("$", "not JSON");
    }
  }
  if (!isObject(data)) throw new ClientConfigError("$", "must be a JSON object");
  const [kid, secret] = requestAuth(data);
  const pinned = pinnedKeys(data);
  const config = {
    stack: string(data, "stack", "$"),
    client: string(data, "client", "$"),
    endpoints: Object.freeze(endpoints(data)),
    kid,
    pinned,
    bundled: bundledKey(data),
  };
  Object.defineProperty(config, "secret", { value: secret, enumerable: false });
  parsed.add(config);
  return Object.freeze(config) as unknown as ClientConfig;
}
