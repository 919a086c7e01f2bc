/**
 * The last-known-good cache: the newest accepted signed payload, kept on the device.
 *
 * What is stored is the signed JWS as the server's answer carried it, not a decoded key, so an
 * entry is verified against the pinned keys again every time it is read: storage edited by
 * another script or restored from elsewhere cannot inject a key. The entry also remembers the
 * highest `bundle_version` accepted (the rollback watermark). It never holds the HMAC secret.
 *
 * Where it is kept is up to the app, behind {@link CacheStore}: one slot of text. Included:
 * {@link memoryStore}, {@link localStorageStore} and {@link indexedDBStore}. The document is
 * the reference client's cache file format, so the two can read each other's entries.
 */
import { CacheError } from "./errors.js";

export const FORMAT = "keyops-client-cache/1";

/** One slot of text. Methods may return a value or a promise of it. */
export interface CacheStore {
  /** Shown in notes, e.g. `localStorage["keyops-cache"]`. */
  readonly name: string;
  /** The stored text, or null when there is none. */
  read(): string | null | Promise<string | null>;
  write(text: string): void | Promise<void>;
}

export interface CacheEntry {
  readonly stack: string;
  readonly client: string;
  /** The compact JWS of the accepted payload. */
  readonly signed: string;
  /** Local wall-clock time of the fetch, seconds since the epoch (for `refresh_after`). */
  readonly fetchedAt: number;
  /** The endpoint URL it came from. */
  readonly source: string;
  /** The highest bundle_version ever accepted: never lower than the payload's own. */
  readonly highWater: number;
}

/** Keeps the entry in memory only (tests, or an app that wants no persistence). */
export function memoryStore(initial: string | null = null): CacheStore & { text: string | null } {
  return {
    name: "memory",
    text: initial,
    read() {
      return this.text;
    },
    write(text: string) {
      this.text = text;
    },
  };
}

/** The subset of the Web Storage API used here (`localStorage`, `sessionStorage`, a fake). */
export interface WebStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
}

/** Keeps the entry in `localStorage` (or another Web Storage object) under `key`. */
export function localStorageStore(key = "keyops-cache", storage?: WebStorage): CacheStore {
  const target = (): WebStorage => {
    const found = storage ?? (globalThis as { localStorage?: WebStorage }).localStorage;
    if (!found) throw new Error("localStorage is not available here");
    return found;
  };
  return {
    name: `localStorage["${key}"]`,
    read: () => target().getItem(key),
    write: (text) => target().setItem(key, text),
  };
}

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

/**
 * Keeps the entry in IndexedDB: database `database`, object store `cache`, under `key`. Use it
 * where localStorage is unavailable (service workers) or cleared too eagerly.
 */
export function indexedDBStore(
  key = "keyops-cache",
  database = "keyops",
  factory?: IDBFactory,
): CacheStore {
  let opened: Promise<IDBDatabase> | undefined;
  const db = (): Promise<IDBDatabase> => {
    if (!opened) {
      const idb = factory ?? globalThis.indexedDB;
      if (!idb) return Promise.reject(new Error("IndexedDB is not available here"));
      const open = idb.open(database, 1);
      open.onupgradeneeded = () => open.result.createObjectStore("cache");
      opened = request(open);
      opened.catch(() => (opened = undefined));
    }
    return opened;
  };
  const run = async <T>(mode: IDBTransactionMode, op: (s: IDBObjectStore) => IDBRequest<T>) => {
    const tx = (await db()).transaction("cache", mode);
    const done = new Promise<void>((resolve, reject) => {
      tx.oncomplete = () => resolve();
      tx.onerror = tx.onabort = () => reject(tx.error);
    });
    done.catch(() => undefined); // the request's own error is the one reported
    const result = await request(op(tx.objectStore("cache")));
    await done;
    return result;
  };
  return {
    name: `IndexedDB ${database}/cache/${key}`,
    read: async () => {
      const value = await run("readonly", (s) => s.get(key));
      return typeof value === "string" ? value : null;
    },
    write: async (text) => {
      await run("readwrite", (s) => s.put(text, key));
    },
  };
}

function entry(data: unknown): CacheEntry | null {
  if (typeof data !== "object" || data === null) return null;
  const d = data as Record<string, unknown>;
  const { stack, client, signed, source } = d;
  const fetchedAt = d["fetched_at"];
  const highWater = d["high_water"];
  if (
    d["format"] !== FORMAT ||
    typeof stack !== "string" ||
    typeof client !== "string" ||
    typeof signed !== "string" ||
    typeof source !== "string" ||
    typeof fetchedAt !== "number" ||
    !Number.isFinite(fetchedAt) ||
    typeof highWater !== "number" ||
    !Number.isInteger(highWater)
  ) {
    return null;
  }
  return { stack, client, signed, fetchedAt, source, highWater };
}

/** Reads and writes {@link CacheEntry} documents in a {@link CacheStore}. */
export class Cache {
  /** Why the last {@link load} found nothing usable (null: no problem, or nothing stored). */
  problem: string | null = null;

  constructor(readonly store: CacheStore) {}

  async load(): Promise<CacheEntry | null> {
    this.problem = null;
    let text: string | null;
    try {
      text = await this.store.read();
    } catch (error) {
      this.problem = `cannot read ${this.store.name} (${reason(error)})`;
      return null;
    }
    if (text === null) return null;
    let found: CacheEntry | null = null;
    try {
      found = entry(JSON.parse(text));
    } catch {
      // handled below
    }
    if (!found) this.problem = `${this.store.name} is not a ${FORMAT} document; ignoring it`;
    return found;
  }

  /** Write, then read back and compare: a store that drops or alters writes is reported. */
  async save(e: CacheEntry): Promise<void> {
    // Sorted keys and the reference client's member names: the same document on every platform.
    const text = JSON.stringify({
      client: e.client,
      fetched_at: e.fetchedAt,
      format: FORMAT,
      high_water: e.highWater,
      signed: e.signed,
      source: e.source,
      stack: e.stack,
    });
    let back: string | null;
    try {
      await this.store.write(text);
      back = await this.store.read();
    } catch (error) {
      throw new CacheError(`cannot write the cache ${this.store.name} (${reason(error)})`);
    }
    if (back !== text) throw new CacheError(`the cache ${this.store.name} did not keep what was written`);
  }
}

function reason(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
