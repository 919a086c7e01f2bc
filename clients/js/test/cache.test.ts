// The cache stores behind the CacheStore interface, and the Cache reader/writer on top of them.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { Cache, FORMAT, indexedDBStore, localStorageStore, memoryStore } from "../src/cache.js";
import type { CacheEntry, WebStorage } from "../src/cache.js";
import { CacheError } from "../src/errors.js";

const ENTRY: CacheEntry = {
  stack: "dev",
  client: "web",
  signed: "h.p.s",
  fetchedAt: 1795630400.5,
  source: "https://keys-a.example.invalid",
  highWater: 17,
};

/** The smallest Web Storage: what localStorage does, in a Map. */
function fakeStorage(): WebStorage & { items: Map<string, string> } {
  const items = new Map<string, string>();
  return {
    items,
    getItem: (key) => items.get(key) ?? null,
    setItem: (key, value) => void items.set(key, String(value)),
  };
}

describe("stores", () => {
  test("memory: round trip", async () => {
    const cache = new Cache(memoryStore());
    assert.equal(await cache.load(), null);
    assert.equal(cache.problem, null);
    await cache.save(ENTRY);
    assert.deepEqual(await cache.load(), ENTRY);
  });

  test("localStorage: the reference client's document, under the key", async () => {
    const storage = fakeStorage();
    const cache = new Cache(localStorageStore("my-key", storage));
    await cache.save(ENTRY);
    assert.deepEqual([...storage.items.keys()], ["my-key"]);
    assert.equal(
      storage.items.get("my-key"),
      '{"client":"web","fetched_at":1795630400.5,"format":"keyops-client-cache/1","high_water":17,' +
        '"signed":"h.p.s","source":"https://keys-a.example.invalid","stack":"dev"}',
    );
    assert.deepEqual(await new Cache(localStorageStore("my-key", storage)).load(), ENTRY);
    assert.equal(await new Cache(localStorageStore("other", storage)).load(), null);
  });

  test("localStorage: the global one by default, and a clear note where there is none", async () => {
    const storage = fakeStorage();
    const g = globalThis as { localStorage?: WebStorage };
    g.localStorage = storage;
    try {
      await new Cache(localStorageStore()).save(ENTRY);
      assert.ok(storage.items.has("keyops-cache"));
    } finally {
      delete g.localStorage;
    }
    const cache = new Cache(localStorageStore());
    assert.equal(await cache.load(), null);
    assert.equal(cache.problem, 'cannot read localStorage["keyops-cache"] (Error: localStorage is not available here)');
    await assert.rejects(cache.save(ENTRY), CacheError);
  });

  test("IndexedDB: round trip through the request/transaction API", async () => {
    const idb = fakeIndexedDB();
    const cache = new Cache(indexedDBStore("k", "db", idb));
    assert.equal(await cache.load(), null);
    assert.equal(cache.problem, null);
    await cache.save(ENTRY);
    assert.deepEqual(await cache.load(), ENTRY);
    // Another page load (a new store object) finds it; another key does not.
    assert.deepEqual(await new Cache(indexedDBStore("k", "db", idb)).load(), ENTRY);
    assert.equal(await new Cache(indexedDBStore("other", "db", idb)).load(), null);
  });
});

describe("the cache document", () => {
  test("anything but a complete document is ignored with a note", async () => {
    const bad = [
      "{",
      "[]",
      "null",
      JSON.stringify({ format: "other/1" }),
      JSON.stringify({ format: FORMAT, stack: "dev", client: "web", signed: "x", fetched_at: "now", source: "s", high_water: 1 }),
      JSON.stringify({ format: FORMAT, stack: "dev", client: "web", signed: "x", fetched_at: 1, source: "s", high_water: 1.5 }),
      JSON.stringify({ format: FORMAT, stack: "dev", client: "web", fetched_at: 1, source: "s", high_water: 1 }),
    ];
    for (const text of bad) {
      const cache = new Cache(memoryStore(text));
      assert.equal(await cache.load(), null, text);
      assert.equal(cache.problem, "memory is not a keyops-client-cache/1 document; ignoring it");
    }
  });

  test("a store that does not keep what was written is reported", async () => {
    const forgetful = { name: "forgetful", read: () => null, write: () => undefined };
    await assert.rejects(new Cache(forgetful).save(ENTRY), {
      name: "CacheError",
      message: "the cache forgetful did not keep what was written",
    });
  });
});

// -- a small in-memory IndexedDB: events fire on a later task, in the browser's order ------------
function fakeIndexedDB(): IDBFactory {
  const databases = new Map<string, Map<string, Map<IDBValidKey, unknown>>>();
  const later = (fn: () => void) => setTimeout(fn, 0);
  type Req = { result?: unknown; error: null; onsuccess?: () => void; onerror?: () => void; onupgradeneeded?: () => void };
  return {
    open(name: string) {
      const req: Req = { error: null };
      later(() => {
        const fresh = !databases.has(name);
        const stores = databases.get(name) ?? new Map<string, Map<IDBValidKey, unknown>>();
        databases.set(name, stores);
        req.result = {
          createObjectStore: (store: string) => void stores.set(store, new Map()),
          transaction(store: string) {
            const data = stores.get(store);
            if (!data) throw new DOMException(`no object store ${store}`, "NotFoundError");
            let pending = 0;
            const tx = {
              error: null,
              oncomplete: undefined as undefined | (() => void),
              objectStore: () => ({
                get: (key: IDBValidKey) => op(() => data.get(key)),
                put: (value: unknown, key: IDBValidKey) => op(() => void data.set(key, value)),
              }),
            };
            const op = (run: () => unknown) => {
              const r: Req = { error: null };
              pending++;
              later(() => {
                r.result = run();
                r.onsuccess?.();
                if (--pending === 0) later(() => tx.oncomplete?.());
              });
              return r;
            };
            return tx;
          },
        };
        if (fresh) req.onupgradeneeded?.();
        req.onsuccess?.();
      });
      return req;
    },
  } as unknown as IDBFactory;
}
