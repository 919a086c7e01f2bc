/**
 * The client: get a verified Pusher key, from the endpoints, the cache or the app.
 *
 *     get(): cached payload still fresh (fetched_at <= now < min(fetched_at + refresh_after, exp))?
 *            yes -> use it; otherwise refresh():
 *     refresh(): round 0..maxRounds-1 (a full-jitter backoff sleep before each round but the
 *            first), each endpoint in order, one attempt each (one deadline per attempt):
 *              200 + JWE opens + JWS verifies + payload checks  -> store in the cache, use it
 *              no answer / 408 / 425 / 429 / 5xx                -> next endpoint; retry next round
 *                (503 replay-cache-full too: Retry-After is not waited for)
 *              401 stale-token with a Date header              -> learn the clock skew, resend once
 *              401 replayed-token                              -> resend once with a new token
 *              other 4xx / non-JOSE 200 / verification failure -> next endpoint; not retried
 *            every endpoint failed: unexpired cached payload -> bundled key -> NothingUsable
 *     onPusherError(code): 4001/4003/4009 refetch once per credential; 4004/41xx back off.
 *
 * Calls are queued: two overlapping get() calls run one after the other, never interleaved.
 */
import type { Backoff } from "./backoff.js";
import { delay as backoffDelay } from "./backoff.js";
import type { CacheEntry, CacheStore } from "./cache.js";
import { Cache } from "./cache.js";
import type { ClientConfig } from "./config.js";
import { isParsedConfig, parseConfig } from "./config.js";
import { CacheError, NothingUsable, TransportError, VerifyError } from "./errors.js";
import { repr } from "./repr.js";
import type { Identity } from "./token.js";
import { checkIdentity, mintToken } from "./token.js";
import type { Response, Transport } from "./transport.js";
import { fetchTransport, header } from "./transport.js";
import type { Verified } from "./verify.js";
import { openResponse, verifySigned } from "./verify.js";

export const PATH = "/v1/credentials";
/** Statuses after which the same endpoint may well answer differently a moment later. */
const RETRYABLE = [408, 425, 429];
/** Pusher close codes meaning "this key is not valid": refetch the key once. */
const REFETCH_CODES = [4001, 4003, 4009];
const QUOTA_BACKOFF: Backoff = { base: 30, cap: 900 };
const RECONNECT_BACKOFF: Backoff = { base: 1, cap: 60 };
/** Answers that a new token may cure: the same endpoint is asked once more, within the attempt. */
const STALE = "http-401:stale-token";
const REPLAYED = "http-401:replayed-token";

/** An endpoint base URL, "cache" or "bundled". */
export type Source = string;

export interface Attempt {
  readonly url: string;
  readonly ok: boolean;
  /** "ok", "unreachable", "http-<status>[:<problem code>]" or "verify:<reason>". */
  readonly outcome: string;
  readonly detail: string;
  readonly retryable: boolean;
}

export interface Result {
  readonly credentialId: string;
  /** The Pusher app key: public by nature (it is in every WebSocket URL). */
  readonly key: string;
  readonly cluster: string;
  /** null for the bundled key, which carries no signed payload. */
  readonly bundleVersion: number | null;
  readonly source: Source;
  /** True when served from the cache or the app because every endpoint failed. */
  readonly stale: boolean;
  readonly attempts: readonly Attempt[];
  readonly notes: readonly string[];
}

/** What to do after Pusher closed the connection with a code. */
export interface Reaction {
  readonly action: "reconnect" | "wait" | "stop";
  /** Seconds to wait before reconnecting (0 for an immediate reconnect). */
  readonly delay: number;
  /** The key to connect with next (null with "stop"). */
  readonly result: Result | null;
  readonly reason: string;
}

/** Timing knobs. The defaults suit an app start-up: at most ~3 s per endpoint per round. */
export interface Policy {
  readonly attemptTimeout: number;
  readonly maxRounds: number;
  readonly roundBackoff: Backoff;
}

export const DEFAULT_POLICY: Policy = {
  attemptTimeout: 3,
  maxRounds: 3,
  roundBackoff: { base: 0.25, cap: 4 },
};

export interface FetcherOptions {
  /** Where the last-known-good payload is kept. Without one, nothing survives a restart. */
  readonly cache?: CacheStore;
  readonly transport?: Transport;
  readonly policy?: Partial<Policy>;
  /** Seconds since the epoch. */
  readonly clock?: () => number;
  /** Waits `seconds`. */
  readonly sleep?: (seconds: number) => Promise<void>;
  /** Uniform in [0, 1). */
  readonly random?: () => number;
}

const realSleep = (seconds: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, seconds * 1000));

type Outcome = { verified: Verified | null; attempt: Attempt; response: Response | null };

/** One per app process. */
export class Fetcher {
  readonly config: ClientConfig;
  readonly identity: Identity;
  readonly policy: Policy;
  private readonly cache: Cache | null;
  private readonly transport: Transport;
  private readonly clock: () => number;
  private readonly sleep: (seconds: number) => Promise<void>;
  private readonly random: () => number;
  private current: Verified | null = null;
  private fetchedAt = 0;
  private source: Source = "cache";
  /** Highest bundle_version accepted so far (the rollback watermark). */
  private highWater = 0;
  /** Seconds to add to the local clock for `iat` (learned from a stale-token answer). */
  private skew = 0;
  private notes: string[] = [];
  private refetchedFor: string | null = null;
  private pusherFailures = 0;
  /** True while the app runs on the bundled key (then it is the held one). */
  private holdingBundled = false;
  private queue: Promise<unknown>;

  constructor(config: ClientConfig | unknown, identity: Identity, options: FetcherOptions = {}) {
    this.config = isParsedConfig(config) ? config : parseConfig(config);
    this.identity = checkIdentity(identity);
    this.policy = { ...DEFAULT_POLICY, ...options.policy };
    this.cache = options.cache ? new Cache(options.cache) : null;
    this.transport = options.transport ?? fetchTransport;
    this.clock = options.clock ?? (() => Date.now() / 1000);
    this.sleep = options.sleep ?? realSleep;
    this.random = options.random ?? Math.random;
    const loading = this.loadCache();
    loading.catch(() => undefined); // reported by the first call instead
    this.queue = loading;
  }

  private run<T>(task: () => Promise<T>): Promise<T> {
    const next = this.queue.then(task);
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** The key to connect with: the cached one while fresh, else a fetch (with fallbacks). */
  get(): Promise<Result> {
    return this.run(async () => {
      const now = this.clock();
      const current = this.current;
      // A fetch time in the future means the device clock was set back: treat it as stale.
      if (current && this.fetchedAt <= now && now < Math.min(this.fetchedAt + current.refreshAfter, current.exp)) {
        return this.result(current, this.source);
      }
      return this.refreshNow();
    });
  }

  /** Fetch now, whatever `refresh_after` says; fall back to the cache, then the bundled key. */
  refresh(): Promise<Result> {
    return this.run(() => this.refreshNow());
  }

  /** React to a Pusher WebSocket close code (or a `pusher:error` code). */
  onPusherError(code: number): Promise<Reaction> {
    return this.run(async (): Promise<Reaction> => {
      if (REFETCH_CODES.includes(code)) {
        const held = this.inUse();
        if (held !== null && this.refetchedFor === held) {
          return stop(`Pusher refused ${held} again after a refetch (${code})`);
        }
        this.refetchedFor = held;
        try {
          const result = await this.refreshNow();
          return { action: "reconnect", delay: 0, result, reason: `refetched after close code ${code}` };
        } catch (error) {
          if (error instanceof NothingUsable) return stop(`Pusher refused the key (${code}), no other`);
          throw error;
        }
      }
      let backoff: Backoff | null = code === 4004 ? QUOTA_BACKOFF : null;
      if (code >= 4100 && code <= 4199) backoff = RECONNECT_BACKOFF;
      if (backoff) return this.wait(backoff, `backing off after ${code}`);
      if (code >= 4200 && code <= 4299) {
        return { action: "reconnect", delay: 0, result: this.lastResult(), reason: `reconnect now after ${code}` };
      }
      if (code >= 4000 && code <= 4099) return stop(`Pusher close code ${code}: do not reconnect`);
      // Not a Pusher code (e.g. 1006, network lost): reconnect with backoff.
      return this.wait(RECONNECT_BACKOFF, `connection closed (${code})`);
    });
  }

  /** Call once Pusher reports the connection established: resets the error state. */
  onConnected(): void {
    this.pusherFailures = 0;
    this.refetchedFor = null;
  }

  // -- internals ------------------------------------------------------------------------------
  private wait(backoff: Backoff, reason: string): Reaction {
    const seconds = backoffDelay(backoff, this.pusherFailures, this.random);
    this.pusherFailures += 1;
    return { action: "wait", delay: seconds, result: this.lastResult(), reason };
  }

  private async refreshNow(): Promise<Result> {
    const attempts: Attempt[] = [];
    const fetched = await this.fetch(attempts);
    if (fetched) {
      const [verified, url] = fetched;
      await this.accept(verified, url);
      return this.result(verified, url, false, attempts);
    }
    const current = this.current;
    if (current && current.exp > this.clock()) return this.result(current, "cache", true, attempts);
    const bundled = this.config.bundled;
    if (bundled) {
      this.holdingBundled = true;
      return {
        credentialId: bundled.credentialId,
        key: bundled.key,
        cluster: bundled.cluster,
        bundleVersion: null,
        source: "bundled",
        stale: true,
        attempts,
        notes: this.takeNotes(),
      };
    }
    throw new NothingUsable(attempts, this.takeNotes());
  }

  /** Notes since the last result: each is reported once, so they never pile up. */
  private takeNotes(): string[] {
    const notes = this.notes;
    this.notes = [];
    return notes;
  }

  /** The id of the credential the app runs on now: the bundled one, or the verified one. */
  private inUse(): string | null {
    if (this.holdingBundled && this.config.bundled) return this.config.bundled.credentialId;
    return this.current ? this.current.credentialId : null;
  }

  private lastResult(): Result | null {
    return this.current ? this.result(this.current, this.source) : null;
  }

  private result(v: Verified, source: Source, stale = false, attempts: Attempt[] = []): Result {
    return {
      credentialId: v.credentialId,
      key: v.key,
      cluster: v.cluster,
      bundleVersion: v.bundleVersion,
      source,
      stale,
      attempts,
      notes: this.takeNotes(),
    };
  }

  private async loadCache(): Promise<void> {
    if (!this.cache) return;
    const entry = await this.cache.load();
    if (this.cache.problem) this.notes.push(this.cache.problem);
    if (!entry) return;
    const { stack, client } = this.config;
    if (entry.stack !== stack || entry.client !== client) {
      this.notes.push(`the cache holds ${entry.stack}/${entry.client}, not ${stack}/${client}; ignoring it`);
      return;
    }
    this.highWater = Math.max(0, entry.highWater);
    let verified: Verified;
    try {
      verified = await verifySigned(entry.signed, this.config, this.clock(), 0);
    } catch (error) {
      if (!(error instanceof VerifyError)) throw error;
      this.notes.push(`the cached payload is not usable: ${error.message}`);
      return;
    }
    this.highWater = Math.max(this.highWater, verified.bundleVersion);
    this.current = verified;
    this.fetchedAt = entry.fetchedAt;
    this.source = "cache";
  }

  private async accept(verified: Verified, url: string): Promise<void> {
    this.holdingBundled = false;
    this.current = verified;
    this.fetchedAt = this.clock();
    this.source = url;
    this.highWater = Math.max(this.highWater, verified.bundleVersion);
    if (!this.cache) return;
    const entry: CacheEntry = {
      stack: verified.stack,
      client: verified.client,
      signed: verified.signed,
      fetchedAt: this.fetchedAt,
      source: url,
      highWater: this.highWater,
    };
    try {
      await this.cache.save(entry);
    } catch (error) {
      if (!(error instanceof CacheError)) throw error;
      this.notes.push(error.message);
    }
  }

  private async fetch(attempts: Attempt[]): Promise<[Verified, string] | null> {
    const givenUp = new Set<string>();
    for (let round = 0; round < this.policy.maxRounds; round++) {
      if (round > 0) await this.sleep(backoffDelay(this.policy.roundBackoff, round - 1, this.random));
      let retry = false;
      for (const url of this.config.endpoints) {
        if (givenUp.has(url)) continue;
        const { verified, attempt } = await this.attempt(url);
        attempts.push(attempt);
        if (verified) return [verified, url];
        if (attempt.retryable) retry = true;
        else givenUp.add(url);
      }
      if (!retry) break;
    }
    return null;
  }

  /**
   * One attempt at `url`. Each answer a new token may cure is resent once, to the same endpoint
   * (every send mints a new token); the last answer is the attempt.
   */
  private async attempt(url: string): Promise<Outcome> {
    const resent = new Set<string>();
    for (;;) {
      const outcome = await this.send(url);
      const code = outcome.attempt.outcome;
      if (resent.has(code) || !this.curable(code, outcome.response)) return outcome;
      resent.add(code);
    }
  }

  private curable(code: string, response: Response | null): boolean {
    if (!response) return false;
    // The server accepted this very token before: something on the way resent the request.
    // A new token (new jti and epk) is one it has not seen.
    if (code === REPLAYED) return true;
    // The device clock is off. The server's Date says by how much; only the token's iat uses
    // it (exp is still checked on the local clock, so a forged Date gains nothing).
    return code === STALE && this.learnSkew(response);
  }

  private learnSkew(response: Response): boolean {
    const date = header(response, "date");
    if (!date) return false;
    const server = Date.parse(date) / 1000;
    if (!Number.isFinite(server)) return false;
    this.skew = server - this.clock();
    return true;
  }

  private async send(url: string): Promise<Outcome> {
    const held = this.identity.held ?? this.inUse();
    const identity = { ...this.identity, held };
    const signed = await mintToken(this.config, identity, this.clock() + this.skew);
    let response: Response;
    try {
      response = await this.transport({
        method: "GET",
        url: url + PATH,
        headers: { Authorization: `Bearer ${signed.token}`, Accept: "application/jose" },
        timeout: this.policy.attemptTimeout,
      });
    } catch (error) {
      if (!(error instanceof TransportError)) throw error;
      return { verified: null, attempt: failed(url, "unreachable", error.message, true), response: null };
    }
    if (response.status !== 200) return { verified: null, attempt: httpFailure(url, response), response };
    const media = (header(response, "content-type") ?? "").split(";")[0]!.trim().toLowerCase();
    if (media !== "application/jose") {
      const detail = `200 with Content-Type ${repr(media || "none")}, not application/jose`;
      return { verified: null, attempt: failed(url, "http-200:wrong-type", detail, false), response };
    }
    try {
      const verified = await openResponse(
        response.body,
        signed.ephemeral,
        this.config,
        this.clock(),
        this.highWater,
      );
      return { verified, attempt: { url, ok: true, outcome: "ok", detail: verified.credentialId, retryable: false }, response };
    } catch (error) {
      if (error instanceof VerifyError) {
        return { verified: null, attempt: failed(url, `verify:${error.reason}`, error.message, false), response };
      }
      // The last resort, as in the reference client: no answer may crash the app.
      const detail = `the answer could not be read (${error instanceof Error ? error.name : typeof error})`;
      return { verified: null, attempt: failed(url, "verify:unreadable", detail, false), response };
    }
  }
}

function stop(reason: string): Reaction {
  return { action: "stop", delay: 0, result: null, reason };
}

function failed(url: string, outcome: string, detail: string, retryable: boolean): Attempt {
  return { url, ok: false, outcome, detail, retryable };
}

function httpFailure(url: string, response: Response): Attempt {
  let code = "";
  let title = "";
  try {
    const problem: unknown = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(response.body));
    if (typeof problem === "object" && problem !== null && !Array.isArray(problem)) {
      const p = problem as Record<string, unknown>;
      code = printable(p["code"] ? String(p["code"]) : "", 40);
      title = printable(p["title"] ? String(p["title"]) : "", 120);
    }
  } catch {
    // not a problem document: the status alone says it
  }
  const { status } = response;
  const outcome = `http-${status}` + (code ? `:${code}` : "");
  const detail = `HTTP ${status}` + (code ? ` ${code}` : "") + (title ? `: ${title}` : "");
  return failed(url, outcome, detail, RETRYABLE.includes(status) || status >= 500);
}

/** Server-chosen text, made safe to show: no control or invisible characters, bounded length. */
function printable(text: string, limit: number): string {
  return Array.from(text)
    .slice(0, limit)
    .map((ch) => (/[\p{C}\p{Zl}\p{Zp}]/u.test(ch) || (ch !== " " && /\p{Zs}/u.test(ch)) ? "?" : ch))
    .join("");
}
