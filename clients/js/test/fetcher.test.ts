// The state machine of docs/client.md §4-§5 through the transport seam, with the clock, the
// sleep and the random source injected: no network and no real waiting.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { memoryStore } from "../src/cache.js";
import { NothingUsable } from "../src/errors.js";
import { Fetcher } from "../src/fetcher.js";
import type { FetcherOptions } from "../src/fetcher.js";
import { DAY, fakeTime, fakeTransport, joseAnswer, NOW, problem, resend, Stack, URL_A, URL_B } from "./helpers.js";
import type { Handler } from "./helpers.js";

const IDENTITY = { appVersion: "5.2.0", installId: "install-0001" };
const BUNDLED = { credential_id: "web-2026-01", key: "ffffffffffffffffffff", cluster: "mt1" };

async function setup(handler: Handler, options: FetcherOptions = {}, stack?: Stack) {
  const s = stack ?? (await Stack.create());
  const time = fakeTime();
  const transport = fakeTransport(handler);
  const fetcher = new Fetcher(s.config, IDENTITY, {
    transport,
    clock: time.clock,
    sleep: time.sleep,
    random: () => 0.5,
    ...options,
  });
  return { stack: s, time, transport, fetcher };
}

describe("requests", () => {
  test("the token carries exactly the claims, with a new epk and jti every time", async () => {
    const stack = await Stack.create();
    const signed = await stack.sign();
    const { fetcher, transport, time } = await setup((req) => joseAnswer(req, signed), {}, stack);
    time.now = NOW + 0.9;
    await fetcher.refresh();
    await fetcher.refresh();
    const [first, second] = transport.requests.map((r) => r.claims);
    assert.deepEqual(Object.keys(first), ["sub", "aud", "iat", "jti", "app_version", "install_id", "epk"]);
    assert.deepEqual(
      { sub: first.sub, aud: first.aud, iat: first.iat, app_version: first.app_version, install_id: first.install_id },
      { sub: "web", aud: "dev", iat: NOW, app_version: "5.2.0", install_id: "install-0001" },
    );
    assert.deepEqual(Object.keys(first.epk), ["kty", "crv", "x", "y"]);
    assert.match(first.jti, /^[A-Za-z0-9_-]{22}$/);
    assert.notEqual(first.jti, second.jti);
    assert.notEqual(first.epk.x, second.epk.x);
    // The second request holds the credential the first one returned.
    assert.equal(second.held, "web-2026-11");
    const req = transport.requests[0]!.request;
    assert.equal(req.url, `${URL_A}/v1/credentials`);
    assert.equal(req.method, "GET");
    assert.equal(req.headers["Accept"], "application/jose");
    assert.equal(req.timeout, 3);
  });

  test("held follows the bundled key while the app runs on it, then the fetched one", async () => {
    const stack = await Stack.create({ bundled_fallback: BUNDLED });
    const signed = await stack.sign();
    let up = false;
    const { fetcher, transport } = await setup((req) => (up ? joseAnswer(req, signed) : "down"), { policy: { maxRounds: 1 } }, stack);
    const bundled = await fetcher.refresh();
    assert.deepEqual([bundled.source, bundled.key, bundled.stale, bundled.bundleVersion], ["bundled", BUNDLED.key, true, null]);
    up = true;
    await fetcher.refresh();
    await fetcher.refresh();
    assert.deepEqual(
      transport.requests.map((r) => r.claims.held),
      [undefined, undefined, BUNDLED.credential_id, "web-2026-11"],
    );
  });
});

describe("failover and backoff", () => {
  test("endpoints in order, no wait between them, full-jitter sleeps between rounds", async () => {
    const { fetcher, transport, time } = await setup(() => "down", { random: () => 0.75 });
    const error = await fetcher.refresh().catch((e: unknown) => e);
    assert.ok(error instanceof NothingUsable);
    assert.deepEqual(transport.requests.map((r) => r.url), [URL_A, URL_B, URL_A, URL_B, URL_A, URL_B]);
    // random * min(cap 4, base 0.25 * 2^n) before rounds 1 and 2 only
    assert.deepEqual(time.slept, [0.75 * 0.25, 0.75 * 0.5]);
    assert.deepEqual(new Set(error.attempts.map((a) => a.outcome)), new Set(["unreachable"]));
  });

  test("the backoff bound is capped", async () => {
    const { fetcher, time } = await setup(() => "down", { random: () => 0.999, policy: { maxRounds: 8 } });
    await fetcher.refresh().catch(() => undefined);
    assert.deepEqual(time.slept.map((s) => Math.round((s / 0.999) * 1000) / 1000), [0.25, 0.5, 1, 2, 4, 4, 4]);
  });

  test("the second endpoint answers when the first is down", async () => {
    const stack = await Stack.create();
    const signed = await stack.sign();
    const { fetcher, time } = await setup((req) => (req.url.startsWith(URL_A) ? "down" : joseAnswer(req, signed)), {}, stack);
    const result = await fetcher.refresh();
    assert.deepEqual([result.source, result.stale, time.slept], [URL_B, false, []]);
    assert.deepEqual(result.attempts.map((a) => [a.url, a.outcome]), [[URL_A, "unreachable"], [URL_B, "ok"]]);
  });

  test("a definitive error is not retried; a retryable one is", async () => {
    const stack = await Stack.create();
    const signed = await stack.sign();
    let calls = 0;
    const { fetcher, transport } = await setup(
      (req) => {
        if (req.url.startsWith(URL_A)) return problem(401, "invalid-token");
        return ++calls < 2 ? problem(503, "not-ready") : joseAnswer(req, signed);
      },
      {},
      stack,
    );
    const result = await fetcher.refresh();
    assert.deepEqual(transport.requests.map((r) => r.url), [URL_A, URL_B, URL_B]);
    assert.equal(result.source, URL_B);
  });

  test("another endpoint is tried after a verification failure", async () => {
    const stack = await Stack.create();
    const other = await Stack.create();
    const good = await stack.sign();
    const forged = await other.sign({ key: "aaaaaaaaaaaaaaaaaaaa" });
    const { fetcher } = await setup((req) => joseAnswer(req, req.url.startsWith(URL_A) ? forged : good), {}, stack);
    const result = await fetcher.refresh();
    assert.equal(result.key, "0123456789abcdef0123");
    assert.deepEqual(result.attempts.map((a) => a.outcome), ["verify:bad-signature", "ok"]);
  });

  test("an answer that breaks the checks themselves is one failed attempt, not a crash", async () => {
    const stack = await Stack.create();
    const good = await stack.sign();
    // A body that is not bytes (a transport gone wrong) makes the checks throw a TypeError.
    const broken = { status: 200, headers: { "Content-Type": "application/jose" }, body: 7 as unknown as Uint8Array };
    const { fetcher } = await setup((req) => (req.url.startsWith(URL_A) ? broken : joseAnswer(req, good)), {}, stack);
    const result = await fetcher.refresh();
    assert.equal(result.source, URL_B);
    assert.deepEqual(
      result.attempts.map((a) => [a.outcome, a.detail]),
      [
        ["verify:unreadable", "the answer could not be read (TypeError)"],
        ["ok", "web-2026-11"],
      ],
    );
  });
});

describe("clock skew", () => {
  test("stale-token: the Date header corrects iat, the same endpoint is asked again, and the skew stays", async () => {
    const stack = await Stack.create();
    const signed = await stack.sign();
    const server = NOW - 3600; // the device clock is an hour fast
    const date = new Date(server * 1000).toUTCString();
    const { fetcher, transport } = await setup(
      (req, claims) =>
        Math.abs(claims.iat - server) > 300 ? problem(401, "stale-token", { date }) : joseAnswer(req, signed),
      {},
      stack,
    );
    const first = await fetcher.refresh();
    assert.deepEqual(first.attempts.map((a) => [a.url, a.outcome]), [[URL_A, "ok"]]);
    assert.deepEqual(transport.requests.map((r) => [r.url, r.claims.iat]), [[URL_A, NOW], [URL_A, server]]);
    await fetcher.refresh();
    assert.equal(transport.requests[2]!.claims.iat, server);
  });

  test("expiry is still checked on the device clock, whatever Date says", async () => {
    const stack = await Stack.create();
    const signed = await stack.sign({ exp: NOW - 10 });
    const date = new Date((NOW - 3600) * 1000).toUTCString();
    let first = true;
    const { fetcher } = await setup(
      (req) => {
        if (first) {
          first = false;
          return problem(401, "stale-token", { date });
        }
        return joseAnswer(req, signed);
      },
      { policy: { maxRounds: 1 } },
      stack,
    );
    const error = await fetcher.refresh().catch((e: unknown) => e);
    assert.ok(error instanceof NothingUsable);
    assert.deepEqual(error.attempts.map((a) => a.outcome), ["verify:expired", "verify:expired"]);
  });
});

describe("replayed tokens and a full replay cache", () => {
  test("replayed-token: the same endpoint is asked once more, with a new jti and epk", async () => {
    const stack = await Stack.create();
    const signed = await stack.sign();
    const accepted = new Set<string>(); // as the server does: each jti once
    const server = fakeTransport((req, claims) => {
      if (accepted.has(claims.jti)) return problem(401, "replayed-token");
      accepted.add(claims.jti);
      return joseAnswer(req, signed);
    });
    // Something on the way sends the first request's token again in place of the second's.
    const { fetcher, time } = await setup(() => "down", { transport: resend(server, 1) }, stack);
    await fetcher.refresh();
    const result = await fetcher.refresh();
    assert.deepEqual(result.attempts.map((a) => [a.url, a.outcome]), [[URL_A, "ok"]]);
    assert.equal(result.source, URL_A);
    const [original, resent, fresh] = server.requests;
    assert.deepEqual([resent!.url, fresh!.url], [URL_A, URL_A]);
    assert.deepEqual(resent!.claims, original!.claims);
    assert.notEqual(fresh!.claims.jti, original!.claims.jti);
    assert.notDeepEqual(fresh!.claims.epk, original!.claims.epk);
    assert.equal(fresh!.claims.iat, original!.claims.iat); // a replay teaches nothing about the clock
    assert.deepEqual(time.slept, []);
  });

  test("a second replayed-token fails the endpoint for good; the next one is tried", async () => {
    const { fetcher, transport } = await setup((req) =>
      req.url.startsWith(URL_A) ? problem(401, "replayed-token") : "down",
    );
    const error = await fetcher.refresh().catch((e: unknown) => e);
    assert.ok(error instanceof NothingUsable);
    assert.deepEqual(transport.requests.map((r) => r.url), [URL_A, URL_A, URL_B, URL_B, URL_B]);
    assert.equal(new Set(transport.requests.map((r) => r.claims.jti)).size, 5);
    const failed = error.attempts[0]!;
    assert.deepEqual(
      [failed.outcome, failed.detail, failed.retryable],
      ["http-401:replayed-token", "HTTP 401 replayed-token: replayed-token", false],
    );
  });

  test("replay-cache-full: the next endpoint at once, and this one again next round", async () => {
    const stack = await Stack.create();
    const signed = await stack.sign();
    let rounds = 0;
    const { fetcher, transport, time } = await setup(
      (req) => {
        if (req.url.startsWith(URL_A)) {
          rounds += 1;
          return rounds < 3 ? problem(503, "replay-cache-full", { "retry-after": "290" }) : joseAnswer(req, signed);
        }
        return "down";
      },
      {},
      stack,
    );
    const result = await fetcher.refresh();
    assert.deepEqual(transport.requests.map((r) => r.url), [URL_A, URL_B, URL_A, URL_B, URL_A]);
    // The round backoff decides when, not Retry-After.
    assert.deepEqual(time.slept, [0.125, 0.25]);
    assert.deepEqual(
      result.attempts.map((a) => [a.outcome, a.retryable]),
      [
        ["http-503:replay-cache-full", true],
        ["unreachable", true],
        ["http-503:replay-cache-full", true],
        ["unreachable", true],
        ["ok", false],
      ],
    );
    assert.equal(result.attempts[0]!.detail, "HTTP 503 replay-cache-full: replay-cache-full");
  });
});

describe("cache, rollback and fallbacks", () => {
  test("a fresh cache answers without the network, until refresh_after", async () => {
    const stack = await Stack.create();
    const signed = await stack.sign({ refresh_after: 600 });
    const { fetcher, transport, time } = await setup((req) => joseAnswer(req, signed), {}, stack);
    assert.equal((await fetcher.get()).source, URL_A);
    time.now += 599;
    const cached = await fetcher.get(); // answered from memory: it still names its endpoint
    assert.deepEqual([cached.source, cached.stale, cached.attempts, transport.requests.length], [URL_A, false, [], 1]);
    time.now += 1;
    assert.equal((await fetcher.get()).source, URL_A);
    assert.equal(transport.requests.length, 2);
  });

  test("a clock set back makes the cache stale", async () => {
    const stack = await Stack.create();
    const signed = await stack.sign();
    const { fetcher, transport, time } = await setup((req) => joseAnswer(req, signed), {}, stack);
    await fetcher.get();
    time.now -= 10;
    await fetcher.get();
    assert.equal(transport.requests.length, 2);
  });

  test("a new process reads the cache: verified again, fresh, no request", async () => {
    const stack = await Stack.create();
    const signed = await stack.sign({ bundle_version: 9 });
    const store = memoryStore();
    const first = await setup((req) => joseAnswer(req, signed), { cache: store }, stack);
    await first.fetcher.get();
    const doc = JSON.parse(store.text!);
    assert.deepEqual(Object.keys(doc), ["client", "fetched_at", "format", "high_water", "signed", "source", "stack"]);
    assert.deepEqual(
      [doc.format, doc.stack, doc.client, doc.signed, doc.fetched_at, doc.source, doc.high_water],
      ["keyops-client-cache/1", "dev", "web", signed, NOW, URL_A, 9],
    );
    const second = await setup(() => "down", { cache: store }, stack);
    const result = await second.fetcher.get();
    assert.deepEqual([result.source, result.key, result.bundleVersion, second.transport.requests.length], ["cache", "0123456789abcdef0123", 9, 0]);
  });

  test("rollback: an older bundle_version than the cached watermark is refused", async () => {
    const stack = await Stack.create();
    const newer = await stack.sign({ bundle_version: 9, refresh_after: 0 });
    const older = await stack.sign({ bundle_version: 8, key: "bbbbbbbbbbbbbbbbbbbb" });
    const store = memoryStore();
    await (await setup((req) => joseAnswer(req, newer), { cache: store }, stack)).fetcher.get();
    const { fetcher } = await setup((req) => joseAnswer(req, older), { cache: store, policy: { maxRounds: 1 } }, stack);
    const result = await fetcher.get();
    assert.deepEqual([result.source, result.stale, result.key], ["cache", true, "0123456789abcdef0123"]);
    assert.deepEqual(result.attempts.map((a) => a.outcome), ["verify:rollback", "verify:rollback"]);
    assert.equal(result.attempts[0]!.detail, "bundle_version 8 is older than 9, already accepted");
  });

  test("the watermark outlives an expired cached payload", async () => {
    const stack = await Stack.create();
    const store = memoryStore(
      JSON.stringify({
        format: "keyops-client-cache/1",
        stack: "dev",
        client: "web",
        signed: await stack.sign({ bundle_version: 12, exp: NOW - 1 }),
        fetched_at: NOW - DAY,
        source: URL_A,
        high_water: 12,
      }),
    );
    const older = await stack.sign({ bundle_version: 11 });
    const { fetcher } = await setup((req) => joseAnswer(req, older), { cache: store, policy: { maxRounds: 1 } }, stack);
    const error = await fetcher.get().catch((e: unknown) => e);
    assert.ok(error instanceof NothingUsable);
    assert.deepEqual(error.notes, ["the cached payload is not usable: the payload expired at " + (NOW - 1) + ` (now ${NOW})`]);
    assert.deepEqual(error.attempts.map((a) => a.outcome), ["verify:rollback", "verify:rollback"]);
  });

  test("a tampered cache is not used, and says why", async () => {
    const stack = await Stack.create();
    const signed = await stack.sign();
    const [h, p, s] = signed.split(".");
    const forged = Buffer.from(JSON.stringify(stack.payload({ key: "cccccccccccccccccccc" }))).toString("base64url");
    const store = memoryStore(
      JSON.stringify({ format: "keyops-client-cache/1", stack: "dev", client: "web", signed: `${h}.${forged}.${s}`, fetched_at: NOW, source: URL_A, high_water: 5 }),
    );
    assert.notEqual(p, forged);
    const { fetcher } = await setup(() => "down", { cache: store, policy: { maxRounds: 1 } }, stack);
    const error = await fetcher.get().catch((e: unknown) => e);
    assert.ok(error instanceof NothingUsable);
    assert.deepEqual(error.notes, ["the cached payload is not usable: the signature does not verify with pinned key 'test-sign'"]);
  });

  test("a cache of another stack or client is ignored; an unreadable one is noted", async () => {
    const stack = await Stack.create();
    const signed = await stack.sign();
    const other = memoryStore(
      JSON.stringify({ format: "keyops-client-cache/1", stack: "prod", client: "web", signed, fetched_at: NOW, source: URL_A, high_water: 5 }),
    );
    const a = await setup(() => "down", { cache: other, policy: { maxRounds: 1 } }, stack);
    const e1 = await a.fetcher.get().catch((e: unknown) => e);
    assert.ok(e1 instanceof NothingUsable);
    assert.deepEqual(e1.notes, ["the cache holds prod/web, not dev/web; ignoring it"]);
    const b = await setup(() => "down", { cache: memoryStore("{not json"), policy: { maxRounds: 1 } }, stack);
    const e2 = await b.fetcher.get().catch((e: unknown) => e);
    assert.ok(e2 instanceof NothingUsable);
    assert.deepEqual(e2.notes, ["memory is not a keyops-client-cache/1 document; ignoring it"]);
  });

  test("every endpoint down: the unexpired cache serves, stale", async () => {
    const stack = await Stack.create({ bundled_fallback: BUNDLED });
    const signed = await stack.sign();
    let up = true;
    const { fetcher } = await setup((req) => (up ? joseAnswer(req, signed) : "down"), { policy: { maxRounds: 1 } }, stack);
    await fetcher.refresh();
    up = false;
    const result = await fetcher.refresh();
    assert.deepEqual([result.source, result.stale, result.key], ["cache", true, "0123456789abcdef0123"]);
  });

  test("no cache: the bundled key serves; neither: NothingUsable", async () => {
    const withBundled = await setup(() => "down", { policy: { maxRounds: 1 } }, await Stack.create({ bundled_fallback: BUNDLED }));
    const result = await withBundled.fetcher.get();
    assert.deepEqual(
      [result.credentialId, result.key, result.cluster, result.source, result.stale],
      [BUNDLED.credential_id, BUNDLED.key, BUNDLED.cluster, "bundled", true],
    );
    const without = await setup(() => "down", { policy: { maxRounds: 1 } });
    const error = await without.fetcher.get().catch((e: unknown) => e);
    assert.ok(error instanceof NothingUsable);
    assert.equal(error.name, "NothingUsable");
    assert.equal(error.attempts.length, 2);
  });

  test("a cache that cannot be written is a note, not a failure", async () => {
    const stack = await Stack.create();
    const signed = await stack.sign();
    const broken = {
      name: "broken",
      read: () => null,
      write: () => {
        throw new DOMException("quota", "QuotaExceededError");
      },
    };
    const { fetcher } = await setup((req) => joseAnswer(req, signed), { cache: broken }, stack);
    const result = await fetcher.refresh();
    assert.equal(result.source, URL_A);
    assert.deepEqual(result.notes, ["cannot write the cache broken (QuotaExceededError: quota)"]);
  });

  test("overlapping calls are queued, not interleaved", async () => {
    const stack = await Stack.create();
    const signed = await stack.sign();
    const { fetcher, transport } = await setup((req) => joseAnswer(req, signed), {}, stack);
    const results = await Promise.all([fetcher.get(), fetcher.get(), fetcher.get()]);
    assert.equal(transport.requests.length, 1);
    assert.deepEqual(results.map((r) => r.source), [URL_A, URL_A, URL_A]);
  });
});

describe("on Pusher errors (§5)", () => {
  async function served(options: FetcherOptions = {}, stackExtra: Record<string, unknown> = {}) {
    const stack = await Stack.create(stackExtra);
    let signed = await stack.sign();
    const env = await setup((req) => (signed ? joseAnswer(req, signed) : "down"), { policy: { maxRounds: 1 }, ...options }, stack);
    return {
      ...env,
      serve: async (p: Parameters<Stack["sign"]>[0] | null) => {
        signed = p === null ? "" : await stack.sign(p);
      },
    };
  }

  test("4001/4003/4009: refetch once, then stop for the same credential", async () => {
    for (const code of [4001, 4003, 4009]) {
      const { fetcher, transport } = await served();
      await fetcher.get();
      const first = await fetcher.onPusherError(code);
      assert.equal(first.action, "reconnect");
      assert.equal(first.result?.source, URL_A);
      assert.equal(transport.requests.length, 2); // get, then the refetch (refresh_after ignored)
      const second = await fetcher.onPusherError(code);
      assert.deepEqual([second.action, second.result], ["stop", null]);
      assert.equal(second.reason, `Pusher refused web-2026-11 again after a refetch (${code})`);
    }
  });

  test("a new credential after the refetch gets its own refetch; on_connected re-arms", async () => {
    const { fetcher, serve } = await served();
    await fetcher.get();
    await serve({ credential_id: "web-2026-12", key: "dddddddddddddddddddd", bundle_version: 6 });
    const first = await fetcher.onPusherError(4001);
    assert.deepEqual([first.action, first.result?.credentialId], ["reconnect", "web-2026-12"]);
    const second = await fetcher.onPusherError(4001);
    assert.equal(second.action, "reconnect"); // web-2026-12 was never refetched for
    assert.equal((await fetcher.onPusherError(4001)).action, "stop");
    fetcher.onConnected();
    assert.equal((await fetcher.onPusherError(4001)).action, "reconnect");
  });

  test("refused with nothing else to use: stop", async () => {
    const { fetcher, serve } = await served();
    await serve(null);
    const reaction = await fetcher.onPusherError(4009);
    assert.deepEqual([reaction.action, reaction.reason], ["stop", "Pusher refused the key (4009), no other"]);
  });

  test("the bundled key refused: one refetch, then stop", async () => {
    const { fetcher: down } = await setup(() => "down", { policy: { maxRounds: 1 } }, await Stack.create({ bundled_fallback: BUNDLED }));
    assert.equal((await down.get()).source, "bundled");
    const first = await down.onPusherError(4001);
    assert.deepEqual([first.action, first.result?.source], ["reconnect", "bundled"]);
    assert.equal((await down.onPusherError(4001)).action, "stop");
  });

  test("4004: wait with full jitter, base 30 s, cap 900 s", async () => {
    const { fetcher } = await served({ random: () => 1 - Number.EPSILON });
    await fetcher.get();
    const delays = [];
    for (let i = 0; i < 7; i++) {
      const r = await fetcher.onPusherError(4004);
      assert.equal(r.action, "wait");
      assert.equal(r.result?.key, "0123456789abcdef0123");
      delays.push(Math.round(r.delay));
    }
    assert.deepEqual(delays, [30, 60, 120, 240, 480, 900, 900]);
  });

  test("4100-4199 and unknown codes: wait, base 1 s, cap 60 s; on_connected resets the count", async () => {
    const { fetcher } = await served({ random: () => 0.5 });
    await fetcher.get();
    const delays = [];
    for (const code of [4100, 4150, 4199, 1006, 4301]) {
      const r = await fetcher.onPusherError(code);
      assert.equal(r.action, "wait");
      delays.push(r.delay);
    }
    assert.deepEqual(delays, [0.5, 1, 2, 4, 8]);
    fetcher.onConnected();
    assert.equal((await fetcher.onPusherError(4100)).delay, 0.5);
  });

  test("4200-4299: reconnect now; other 4000-4099: stop", async () => {
    const { fetcher, transport } = await served();
    await fetcher.get();
    const now = await fetcher.onPusherError(4201);
    assert.deepEqual([now.action, now.delay, now.result?.key], ["reconnect", 0, "0123456789abcdef0123"]);
    for (const code of [4000, 4002, 4005, 4099]) {
      const r = await fetcher.onPusherError(code);
      assert.deepEqual([r.action, r.result], ["stop", null]);
    }
    assert.equal(transport.requests.length, 1); // none of these refetches
  });
});
