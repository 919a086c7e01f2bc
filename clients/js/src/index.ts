/**
 * @keyops/client: fetch a Pusher Channels key from a keyops endpoint, the way the keyops
 * reference client does: a signed token with a fresh P-256 key per request, an encrypted and
 * signed answer checked against pinned keys, failover with jittered backoff, a last-known-good
 * cache and a bundled fallback. Runs on WebCrypto and fetch only (browsers, Node 20+, React
 * Native with a WebCrypto polyfill).
 */
export { rolloutBucket } from "./bucket.js";
export type { Backoff } from "./backoff.js";
export { Cache, FORMAT as CACHE_FORMAT, indexedDBStore, localStorageStore, memoryStore } from "./cache.js";
export type { CacheEntry, CacheStore, WebStorage } from "./cache.js";
export { isParsedConfig, parseConfig } from "./config.js";
export type { BundledKey, ClientConfig, PinnedKey } from "./config.js";
export {
  CacheError,
  ClientConfigError,
  KeyopsError,
  NothingUsable,
  TransportError,
  UsageError,
  VerifyError,
} from "./errors.js";
export { DEFAULT_POLICY, Fetcher } from "./fetcher.js";
export type { Attempt, FetcherOptions, Policy, Reaction, Result, Source } from "./fetcher.js";
export { connectPusher } from "./pusher.js";
export type { ConnectEvent, ConnectOptions, PusherConnection, PusherConstructor, PusherLike } from "./pusher.js";
export { checkIdentity, mintToken, newInstallId } from "./token.js";
export type { Identity, MintFixture, SignedRequest } from "./token.js";
export { fetchTransport, header, MAX_BODY } from "./transport.js";
export type { Request, Response, Transport } from "./transport.js";
export { openResponse, verifySigned } from "./verify.js";
export type { Verified } from "./verify.js";
