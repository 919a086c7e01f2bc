// The JS client against the shared vectors in tests/vectors/ (written by the Python reference
// client; tests/test_vectors.py checks the Python side against the same files).
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { rolloutBucket } from "../src/bucket.js";
import { parseConfig } from "../src/config.js";
import { ClientConfigError, KeyopsError, NothingUsable, TransportError, VerifyError } from "../src/errors.js";
import { Fetcher } from "../src/fetcher.js";
import { checkIdentity, mintToken } from "../src/token.js";
import type { Request, Response } from "../src/transport.js";
import { openResponse, verifySigned } from "../src/verify.js";
import type { Verified } from "../src/verify.js";
import { claimsOf, ecdhPair, patched, vectors } from "./helpers.js";

const CONFIG = vectors("config.json");
const TOKEN = vectors("token.json");
const BUCKET = vectors("bucket.json");
const PAYLOAD = vectors("payload.json");
const ANSWERS = vectors("answers.json");

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

describe("config vectors", () => {
  for (const c of CONFIG.invalid) {
    test(`refused: ${c.name}`, () => {
      assert.throws(
        () => parseConfig(patched(CONFIG.valid, c.patch)),
        (error: unknown) => {
          assert.ok(error instanceof ClientConfigError);
          assert.equal(error.name, c.error);
          assert.equal(error.where, c.where);
          assert.equal(error.message, c.message);
          return true;
        },
      );
    });
  }
  for (const c of CONFIG.accepted) {
    test(`accepted: ${c.name}`, () => {
      const cfg = parseConfig(patched(CONFIG.valid, c.patch));
      const b = cfg.bundled;
      assert.deepEqual(
        {
          stack: cfg.stack,
          client: cfg.client,
          endpoints: [...cfg.endpoints],
          kid: cfg.kid,
          secret_hex: hex(cfg.secret),
          pinned_kids: [...cfg.pinned.keys()].sort(),
          bundled: b ? { credential_id: b.credentialId, key: b.key, cluster: b.cluster } : null,
        },
        c.parsed,
      );
    });
  }
});

describe("token vectors", () => {
  for (const c of TOKEN.cases) {
    test(`the same bytes as the reference client: ${c.name}`, async () => {
      const cfg = parseConfig(TOKEN.config);
      const identity = checkIdentity({
        appVersion: c.identity.app_version,
        installId: c.identity.install_id,
        held: c.identity.held,
      });
      const ephemeral = await ecdhPair(TOKEN.ephemeral_private_jwk);
      const signed = await mintToken(cfg, identity, c.now + c.skew, { ephemeral, jti: c.jti });
      assert.equal(signed.token, c.expected_token);
      assert.equal(signed.jti, c.jti);
      assert.equal(signed.ephemeral, ephemeral.privateKey);
    });
  }
  for (const c of TOKEN.invalid_identities) {
    test(`identity refused: ${c.app_version} ${c.install_id} ${c.held}`, () => {
      assert.throws(
        () => checkIdentity({ appVersion: c.app_version, installId: c.install_id, held: c.held }),
        (error: unknown) => {
          assert.ok(error instanceof KeyopsError);
          assert.equal(error.name, c.error);
          assert.equal(error.message, c.message);
          return true;
        },
      );
    });
  }
});

describe("bucket vectors", () => {
  test("every bucket", async () => {
    for (const c of BUCKET.buckets) {
      assert.equal(await rolloutBucket(c.client, c.credential_id, c.install_id), c.bucket, JSON.stringify(c));
    }
  });
  test("the buckets of the selection cases", async () => {
    for (const c of BUCKET.selection) {
      for (const [cid, expected] of Object.entries(c.buckets)) {
        assert.equal(await rolloutBucket(c.client, cid, c.install_id), expected, c.name);
      }
    }
  });
});

function view(v: Verified) {
  return {
    ok: {
      stack: v.stack,
      client: v.client,
      credential_id: v.credentialId,
      key: v.key,
      cluster: v.cluster,
      bundle_version: v.bundleVersion,
      iat: v.iat,
      exp: v.exp,
      refresh_after: v.refreshAfter,
    },
  };
}

async function outcome(call: () => Promise<Verified>) {
  try {
    return view(await call());
  } catch (error) {
    if (!(error instanceof VerifyError)) throw error;
    return { error: error.name, reason: error.reason, message: error.message };
  }
}

describe("payload vectors", () => {
  const cfg = parseConfig(PAYLOAD.config);
  for (const c of PAYLOAD.signed) {
    test(`signed payload: ${c.name}`, async () => {
      assert.deepEqual(await outcome(() => verifySigned(c.jws, cfg, PAYLOAD.now, c.min_bundle_version)), c.expect);
    });
  }
  for (const c of PAYLOAD.responses) {
    test(`answer: ${c.name}`, async () => {
      const { privateKey } = await ecdhPair(PAYLOAD.ephemeral_private_jwk);
      const body = new TextEncoder().encode(c.body);
      assert.deepEqual(
        await outcome(() => openResponse(body, privateKey, cfg, PAYLOAD.now, c.min_bundle_version)),
        c.expect,
      );
    });
  }
});

describe("error answer vectors", () => {
  for (const c of ANSWERS.cases) {
    test(`reaction: ${c.name}`, async () => {
      const sent: { url: string; iat: number; new_token: boolean }[] = [];
      const slept: number[] = [];
      const seen = new Set<string>();
      const transport = async (request: Request): Promise<Response> => {
        assert.equal(request.headers["Accept"], "application/jose");
        const claims = claimsOf(request);
        // A resend must carry a new token: neither its jti nor its epk was sent before.
        const marks = [`jti:${claims.jti}`, `epk:${claims.epk.x}.${claims.epk.y}`];
        sent.push({ url: request.url, iat: claims.iat, new_token: !marks.some((m) => seen.has(m)) });
        for (const m of marks) seen.add(m);
        const spec = "first" in c && sent.length === 1 ? c.first : c.response;
        if (spec === null) throw new TransportError("connection refused");
        return { status: spec.status, headers: spec.headers, body: new TextEncoder().encode(spec.body) };
      };
      const fetcher = new Fetcher(
        ANSWERS.config,
        {
          appVersion: ANSWERS.identity.app_version,
          installId: ANSWERS.identity.install_id,
          held: ANSWERS.identity.held,
        },
        {
          transport,
          policy: {
            attemptTimeout: ANSWERS.policy.attempt_timeout,
            maxRounds: ANSWERS.policy.max_rounds,
            roundBackoff: ANSWERS.policy.round_backoff,
          },
          clock: () => ANSWERS.clock,
          sleep: async (s) => void slept.push(s),
          random: () => ANSWERS.random,
        },
      );
      const error = await fetcher.refresh().then(
        () => assert.fail("a key was produced"),
        (e: unknown) => e,
      );
      assert.ok(error instanceof NothingUsable);
      assert.equal(error.name, c.expect.error);
      assert.deepEqual(sent, c.expect.requests);
      assert.deepEqual(slept, c.expect.sleeps);
      assert.deepEqual(
        error.attempts.map(({ url, outcome, detail, retryable }) => ({ url, outcome, detail, retryable })),
        c.expect.attempts,
      );
    });
  }
});
