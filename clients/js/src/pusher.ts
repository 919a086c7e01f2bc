/**
 * pusher-js integration: connect with the fetched key, and follow the close-code table of the
 * reference client when Pusher closes the connection.
 *
 * pusher-js is not a dependency: the app passes its `Pusher` constructor. Nothing here logs;
 * progress is reported through `onEvent`, which never carries the key or the token.
 */
import type { FetcherOptions, Reaction, Result } from "./fetcher.js";
import { Fetcher } from "./fetcher.js";

/** The part of a pusher-js `Pusher` instance used here. */
export interface PusherLike {
  readonly connection: { bind(event: string, callback: (data?: unknown) => void): unknown };
  connect(): void;
  disconnect(): void;
}

export type PusherConstructor<P extends PusherLike> = new (
  key: string,
  options: { cluster: string } & Record<string, unknown>,
) => P;

/** What connectPusher did, for the app's logs and UI. Never holds the key or the token. */
export interface ConnectEvent {
  readonly type: "connected" | "reconnecting" | "waiting" | "stopped";
  /** The Pusher close code that caused it, if any. */
  readonly code?: number;
  /** Seconds, with "waiting". */
  readonly delay?: number;
  readonly credentialId?: string;
  readonly source?: string;
  readonly reason: string;
}

export interface ConnectOptions<P extends PusherLike> extends FetcherOptions {
  /** The pusher-js constructor: `import Pusher from "pusher-js"`. */
  readonly Pusher: PusherConstructor<P>;
  readonly appVersion: string;
  /** Made once per install and stored (see newInstallId). */
  readonly installId: string;
  /** The credential id the app holds, if it knows better than the cache. */
  readonly held?: string;
  /** Passed to every Pusher instance (authorizer, forceTLS...); `cluster` is set from the key. */
  readonly pusherOptions?: Record<string, unknown>;
  /**
   * Called with each new Pusher instance: the first one, and one per key change after a
   * refetch. Subscribe to your channels here.
   */
  readonly onPusher?: (pusher: P, result: Result) => void;
  readonly onEvent?: (event: ConnectEvent) => void;
}

export interface PusherConnection<P extends PusherLike> {
  /** The current instance (a new one replaces it when the key changes). */
  readonly pusher: P;
  /** The credential the current instance connects with. */
  readonly result: Result;
  readonly fetcher: Fetcher;
  /** True after a "stop" reaction or disconnect(): nothing reconnects any more. */
  readonly stopped: boolean;
  disconnect(): void;
}

/** The close code of a pusher-js connection "error" event, or null for other errors. */
function closeCode(event: unknown): number | null {
  const e = event as { type?: unknown; error?: { type?: unknown; data?: { code?: unknown } } };
  if (e?.type !== "WebSocketError" || e.error?.type !== "PusherError") return null;
  const code = e.error.data?.code;
  return typeof code === "number" ? code : null;
}

/**
 * Fetch the key (endpoints, then cache, then bundled key), connect a Pusher instance with it,
 * and react to close codes: refetch once on 4001/4003/4009 and reconnect with the new key,
 * back off on 4004 and 4100-4199, reconnect on 4200-4299, stop on the other 4000-4099.
 * Rejects with NothingUsable when there is no key at all (do not connect then).
 */
export async function connectPusher<P extends PusherLike>(
  config: unknown,
  options: ConnectOptions<P>,
): Promise<PusherConnection<P>> {
  const fetcher = new Fetcher(
    config,
    { appVersion: options.appVersion, installId: options.installId, held: options.held ?? null },
    options,
  );
  const emit = (event: ConnectEvent) => options.onEvent?.(event);
  const sleep =
    options.sleep ?? ((s: number) => new Promise<void>((resolve) => setTimeout(resolve, s * 1000)));
  let result = await fetcher.get();
  let pusher: P;
  let stopped = false;
  let busy = false;

  const about = (r: Result | null) => (r ? { credentialId: r.credentialId, source: r.source } : {});

  const react = async (instance: P, code: number): Promise<void> => {
    let reaction: Reaction;
    try {
      reaction = await fetcher.onPusherError(code);
    } catch (error) {
      reaction = { action: "stop", delay: 0, result: null, reason: `refetch failed (${(error as Error).name})` };
    }
    if (stopped || pusher !== instance) return;
    // pusher-js may have scheduled a retry of its own: this table decides, not its defaults.
    instance.disconnect();
    if (reaction.action === "stop") {
      stopped = true;
      emit({ type: "stopped", code, reason: reaction.reason, ...about(result) });
      return;
    }
    if (reaction.action === "wait") {
      emit({ type: "waiting", code, delay: reaction.delay, reason: reaction.reason, ...about(result) });
      await sleep(reaction.delay);
      if (stopped || pusher !== instance) return;
    }
    const next = reaction.result;
    emit({ type: "reconnecting", code, reason: reaction.reason, ...about(next ?? result) });
    if (next && (next.key !== result.key || next.cluster !== result.cluster)) {
      open(next);
    } else {
      if (next) result = next;
      instance.connect();
    }
  };

  const open = (r: Result): void => {
    const instance = new options.Pusher(r.key, { ...options.pusherOptions, cluster: r.cluster });
    pusher = instance;
    result = r;
    instance.connection.bind("connected", () => {
      if (pusher !== instance || stopped) return;
      fetcher.onConnected();
      emit({ type: "connected", reason: "connection established", ...about(result) });
    });
    instance.connection.bind("error", (event) => {
      const code = closeCode(event);
      // One reaction at a time: pusher-js may report one close twice (pusher:error, then close).
      if (code === null || busy || stopped || pusher !== instance) return;
      busy = true;
      void react(instance, code).finally(() => {
        busy = false;
      });
    });
    options.onPusher?.(instance, r);
  };

  open(result);
  return {
    get pusher() {
      return pusher;
    },
    get result() {
      return result;
    },
    get stopped() {
      return stopped;
    },
    fetcher,
    disconnect() {
      stopped = true;
      pusher.disconnect();
    },
  };
}
