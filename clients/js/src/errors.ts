/**
 * The errors of the client, one class per error of the reference client (same names), so an
 * app can branch on `error.name` or `instanceof` the same way on every platform.
 *
 * No message ever contains the HMAC secret, a token or a request header.
 */
import type { Attempt } from "./fetcher.js";

const REGENERATE = "Regenerate it with 'keyops client-config --stack S --client C --out FILE'.";

/** Base of every error the client reports. `fix` says what to do about it, when known. */
export class KeyopsError extends Error {
  override name = "KeyopsError";
  readonly fix: string;

  constructor(what: string, fix = "") {
    super(what);
    this.fix = fix;
  }
}

/** The bootstrap config is unusable. `where` is the JSON path of the problem, e.g. `$.endpoints`. */
export class ClientConfigError extends KeyopsError {
  override name = "ClientConfigError";
  readonly where: string;

  constructor(where: string, problem: string, fix = REGENERATE) {
    super(`client config ${where}: ${problem}`, fix);
    this.where = where;
  }
}

/** A bad argument from the app: an app version that is not semver, a malformed install id... */
export class UsageError extends KeyopsError {
  override name = "UsageError";
}

/** An answer (or a cached payload) that must not be used. `reason` is a stable short code. */
export class VerifyError extends KeyopsError {
  override name = "VerifyError";
  readonly reason: string;

  constructor(reason: string, what: string) {
    super(what);
    this.reason = reason;
  }
}

/** No HTTP answer arrived (refused, reset, DNS, TLS, deadline): worth trying another endpoint. */
export class TransportError extends KeyopsError {
  override name = "TransportError";
}

/** The cache could not be written (the fetch itself still succeeded; it becomes a note). */
export class CacheError extends KeyopsError {
  override name = "CacheError";
}

/** Every endpoint failed and there is neither a usable cache nor a bundled key. */
export class NothingUsable extends KeyopsError {
  override name = "NothingUsable";
  readonly attempts: readonly Attempt[];
  readonly notes: readonly string[];

  constructor(attempts: readonly Attempt[], notes: readonly string[]) {
    super(
      "no usable Pusher key: every endpoint failed, and there is no cached or bundled key",
      "See the attempts; check the network and the endpoints' /healthz.",
    );
    this.attempts = attempts;
    this.notes = notes;
  }
}
