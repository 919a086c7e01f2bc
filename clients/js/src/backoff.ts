/**
 * Capped exponential backoff with full jitter: `delay(n) = random() * min(cap, base * 2**n)`.
 * Every retrier picks a uniformly random point below the bound, so a fleet of apps that lost
 * the same endpoint at the same moment spreads its retries out instead of coming back in waves.
 */
export interface Backoff {
  readonly base: number;
  readonly cap: number;
}

/** The upper bound of the `failures`-th delay (0-based), in seconds. */
export function bound(backoff: Backoff, failures: number): number {
  return Math.min(backoff.cap, backoff.base * 2 ** Math.min(failures, 60));
}

export function delay(backoff: Backoff, failures: number, random: () => number): number {
  return random() * bound(backoff, failures);
}
