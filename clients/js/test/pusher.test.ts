// connectPusher with a fake Pusher: the only fake is at the pusher-js seam (the constructor the
// app passes in). It emits connection events the way pusher-js does: a close code arrives as a
// "WebSocketError" wrapping a "PusherError" with data.code.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { NothingUsable } from "../src/errors.js";
import type { ConnectEvent } from "../src/pusher.js";
import { connectPusher } from "../src/pusher.js";
import { fakeTime, fakeTransport, joseAnswer, Stack, URL_A } from "./helpers.js";
import type { Payload } from "./helpers.js";

const KEY_1 = "0123456789abcdef0123";
const KEY_2 = "fedcba9876543210fedc";

function fakePusherClass() {
  const instances: FakePusher[] = [];
  class FakePusher {
    readonly handlers = new Map<string, ((data?: unknown) => void)[]>();
    readonly connection = {
      bind: (event: string, callback: (data?: unknown) => void) => {
        this.handlers.set(event, [...(this.handlers.get(event) ?? []), callback]);
      },
    };
    connects = 1; // pusher-js connects as it is constructed
    disconnects = 0;
    constructor(
      readonly key: string,
      readonly options: Record<string, unknown>,
    ) {
      instances.push(this);
    }
    connect() {
      this.connects++;
    }
    disconnect() {
      this.disconnects++;
    }
    emit(event: string, data?: unknown) {
      for (const handler of this.handlers.get(event) ?? []) handler(data);
    }
    close(code: number) {
      this.emit("error", { type: "WebSocketError", error: { type: "PusherError", data: { code, message: "closed" } } });
    }
  }
  return { FakePusher, instances };
}

async function setup(serve: { p: Payload | null }) {
  const stack = await Stack.create();
  const { FakePusher, instances } = fakePusherClass();
  const transport = fakeTransport(async (req) => (serve.p ? joseAnswer(req, await stack.sign(serve.p)) : "down"));
  const time = fakeTime();
  const events: ConnectEvent[] = [];
  const waiters: ((event: ConnectEvent) => void)[] = [];
  const pushers: unknown[] = [];
  const conn = await connectPusher(stack.doc, {
    Pusher: FakePusher,
    appVersion: "5.2.0",
    installId: "install-0001",
    pusherOptions: { forceTLS: true, cluster: "ignored" },
    transport,
    clock: time.clock,
    sleep: time.sleep,
    random: () => 0.5,
    policy: { maxRounds: 1 },
    onPusher: (p) => pushers.push(p),
    onEvent: (e) => {
      events.push(e);
      if (e.type !== "connected") waiters.shift()?.(e);
    },
  });
  /**
   * Close the current instance with a code; the first event of connectPusher's reaction, once
   * the whole reaction has run (the injected sleep returns at once).
   */
  const close = async (code: number, target = conn.pusher as unknown as InstanceType<typeof FakePusher>) => {
    const reacted = new Promise<ConnectEvent>((resolve) => waiters.push(resolve));
    target.close(code);
    const event = await reacted;
    await new Promise((resolve) => setTimeout(resolve, 0));
    return event;
  };
  return { conn, instances, transport, time, events, pushers, close };
}

describe("connectPusher", () => {
  test("connects with the fetched key and cluster, and passes the app's options through", async () => {
    const { conn, instances, pushers } = await setup({ p: {} });
    assert.equal(instances.length, 1);
    assert.equal(instances[0]!.key, KEY_1);
    assert.deepEqual(instances[0]!.options, { forceTLS: true, cluster: "eu" });
    assert.deepEqual(pushers, [instances[0]]);
    assert.equal(conn.pusher, instances[0]);
    assert.equal(conn.result.credentialId, "web-2026-11");
  });

  test("4001: refetches once and reconnects with the new key in a new Pusher instance", async () => {
    const serve: { p: Payload | null } = { p: {} };
    const { conn, instances, transport, close, pushers } = await setup(serve);
    serve.p = { credential_id: "web-2026-12", key: KEY_2, cluster: "us2", bundle_version: 6 };
    const event = await close(4001);
    assert.deepEqual(event, {
      type: "reconnecting",
      code: 4001,
      reason: "refetched after close code 4001",
      credentialId: "web-2026-12",
      source: URL_A,
    });
    assert.equal(transport.requests.length, 2);
    assert.equal(transport.requests[1]!.claims.held, "web-2026-11"); // the refused one
    assert.equal(instances.length, 2);
    assert.deepEqual([instances[1]!.key, instances[1]!.options["cluster"]], [KEY_2, "us2"]);
    assert.equal(instances[0]!.disconnects, 1);
    assert.equal(conn.pusher, instances[1]);
    assert.equal(conn.result.key, KEY_2);
    assert.deepEqual(pushers, instances);
    // Late events from the replaced instance change nothing.
    instances[0]!.close(4001);
    await new Promise((resolve) => setTimeout(resolve, 0));
    assert.equal(transport.requests.length, 2);
  });

  test("4001 again for the same key after the refetch: stop; a connection in between re-arms it", async () => {
    const { conn, instances, transport, close, events } = await setup({ p: {} });
    const first = await close(4001);
    assert.equal(first.type, "reconnecting");
    assert.deepEqual([instances.length, instances[0]!.connects, instances[0]!.disconnects], [1, 2, 1]);
    instances[0]!.emit("connected");
    assert.equal(events[events.length - 1]!.type, "connected");
    assert.equal((await close(4001)).type, "reconnecting"); // re-armed by the connection
    const stopped = await close(4003);
    assert.deepEqual(stopped, {
      type: "stopped",
      code: 4003,
      reason: "Pusher refused web-2026-11 again after a refetch (4003)",
      credentialId: "web-2026-11",
      source: URL_A,
    });
    assert.equal(conn.stopped, true);
    assert.equal(transport.requests.length, 3);
    instances[0]!.close(4001);
    await new Promise((resolve) => setTimeout(resolve, 0));
    assert.equal(transport.requests.length, 3); // stopped means stopped
  });

  test("4004: waits (full jitter, base 30 s) then reconnects the same instance", async () => {
    const { instances, time, close, transport } = await setup({ p: {} });
    const event = await close(4004);
    assert.deepEqual([event.type, event.delay], ["waiting", 15]);
    assert.deepEqual(time.slept, [15]);
    assert.deepEqual([instances.length, instances[0]!.disconnects, instances[0]!.connects], [1, 1, 2]);
    assert.equal(transport.requests.length, 1); // over quota: no refetch
  });

  test("4100: waits with base 1 s; 4200: reconnects now; other 4000-4099: stops", async () => {
    const a = await setup({ p: {} });
    assert.deepEqual([(await a.close(4100)).delay], [0.5]);
    assert.equal((await a.close(4201)).type, "reconnecting");
    const stop = await a.close(4007);
    assert.deepEqual([stop.type, stop.reason], ["stopped", "Pusher close code 4007: do not reconnect"]);
    assert.equal(a.instances.length, 1);
  });

  test("one close reported twice (pusher:error, then the close) gets one reaction", async () => {
    const serve: { p: Payload | null } = { p: {} };
    const { instances, transport, close } = await setup(serve);
    serve.p = { credential_id: "web-2026-12", key: KEY_2, bundle_version: 6 };
    const reacted = close(4001);
    instances[0]!.close(4001);
    await reacted;
    assert.equal(transport.requests.length, 2);
    assert.equal(instances.length, 2);
  });

  test("other connection errors are not close codes and are left to pusher-js", async () => {
    const { instances, transport } = await setup({ p: {} });
    instances[0]!.emit("error", { type: "WebSocketError", error: { type: "TransportError" } });
    instances[0]!.emit("error", { type: "PusherError", error: "x" });
    await new Promise((resolve) => setTimeout(resolve, 0));
    assert.deepEqual([instances[0]!.disconnects, transport.requests.length], [0, 1]);
  });

  test("no key at all: rejects with NothingUsable and never constructs Pusher", async () => {
    const stack = await Stack.create();
    const { FakePusher, instances } = fakePusherClass();
    await assert.rejects(
      connectPusher(stack.doc, {
        Pusher: FakePusher,
        appVersion: "5.2.0",
        installId: "install-0001",
        transport: fakeTransport(() => "down"),
        sleep: async () => undefined,
        policy: { maxRounds: 1 },
      }),
      NothingUsable,
    );
    assert.equal(instances.length, 0);
  });

  test("never logs: not the key, not the token, nothing", async () => {
    const calls: unknown[][] = [];
    const saved = { ...console };
    for (const name of ["log", "info", "warn", "error", "debug", "trace"] as const) {
      console[name] = (...args: unknown[]) => void calls.push(args);
    }
    try {
      const serve: { p: Payload | null } = { p: {} };
      const { close } = await setup(serve);
      serve.p = { credential_id: "web-2026-12", key: KEY_2, bundle_version: 6 };
      await close(4001);
      await close(4004);
      serve.p = null;
      await close(4009);
    } finally {
      Object.assign(console, saved);
    }
    assert.deepEqual(calls, []);
  });
});
