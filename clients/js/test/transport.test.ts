// fetchTransport against real HTTP servers on 127.0.0.1 (node:http), not a fake fetch.
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { after, describe, test } from "node:test";

import { TransportError } from "../src/errors.js";
import { fetchTransport, MAX_BODY } from "../src/transport.js";
import type { Request } from "../src/transport.js";

const servers: Server[] = [];
after(() => {
  for (const server of servers) server.closeAllConnections?.(), server.close();
});

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function get(url: string, timeout = 10): Request {
  return { method: "GET", url, headers: { Authorization: "Bearer t.o.k", Accept: "application/jose" }, timeout };
}

describe("fetchTransport", () => {
  test("sends the request as given and returns status, lower-case headers and the body", async () => {
    let seen: IncomingMessage | undefined;
    const base = await serve((req, res) => {
      seen = req;
      res.writeHead(401, { "Content-Type": "application/problem+json", Date: "Thu, 26 Nov 2026 00:00:00 GMT" });
      res.end('{"code":"stale-token"}');
    });
    const response = await fetchTransport(get(`${base}/v1/credentials`));
    assert.equal(response.status, 401);
    assert.equal(response.headers["content-type"], "application/problem+json");
    assert.equal(response.headers["date"], "Thu, 26 Nov 2026 00:00:00 GMT");
    assert.equal(new TextDecoder().decode(response.body), '{"code":"stale-token"}');
    assert.equal(seen?.method, "GET");
    assert.equal(seen?.url, "/v1/credentials");
    assert.equal(seen?.headers.authorization, "Bearer t.o.k");
    assert.equal(seen?.headers.accept, "application/jose");
    assert.equal(seen?.headers.cookie, undefined);
  });

  test("a redirect is not followed", async () => {
    let followed = false;
    const base = await serve((req, res) => {
      if (req.url === "/elsewhere") followed = true;
      res.writeHead(301, { Location: "/elsewhere" });
      res.end();
    });
    const response = await fetchTransport(get(`${base}/v1/credentials`));
    assert.equal(response.status, 301);
    assert.equal(followed, false);
  });

  test("a body over 64 KiB is refused, declared or not", async () => {
    const big = "x".repeat(MAX_BODY + 1);
    const declared = await serve((_req, res) => res.end(big));
    const chunked = await serve((_req, res) => {
      res.write(big.slice(0, 40_000));
      res.end(big.slice(40_000));
    });
    for (const base of [declared, chunked]) {
      await assert.rejects(fetchTransport(get(base)), { name: "TransportError", message: "answer larger than 65536 bytes" });
    }
  });

  test("one deadline covers the whole exchange, even a server that trickles its body", async () => {
    const silent = await serve(() => undefined);
    const trickle = await serve((_req, res) => {
      res.writeHead(200, { "Content-Type": "application/jose" });
      const timer = setInterval(() => res.write("x"), 20);
      res.on("close", () => clearInterval(timer));
    });
    for (const base of [silent, trickle]) {
      await assert.rejects(fetchTransport(get(base, 0.3)), (error: unknown) => {
        assert.ok(error instanceof TransportError);
        assert.equal(error.message, "timed out after 0.3 s");
        return true;
      });
    }
  });

  test("no server: connection refused", async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as AddressInfo).port;
    await new Promise((resolve) => server.close(resolve));
    await assert.rejects(fetchTransport(get(`http://127.0.0.1:${port}`)), {
      name: "TransportError",
      message: "connection refused",
    });
  });
});
