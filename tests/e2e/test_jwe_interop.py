"""The endpoint's JWE, built on cryptography primitives, opened by two independent JOSE stacks.

The serving side writes its compact JWE (ECDH-ES+A256KW, A256GCM) itself; apps open it with
JOSE libraries. Here every answer is decrypted by joserfc (what keyops.client uses) and by the
``jose`` npm package (what clients/js uses, installed from its lockfile), and both must give
back exactly the signed payload the bundle holds.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from joserfc import jwe
from joserfc.jwk import ECKey

from keyops.endpoint.core import Endpoint, Request
from keyops.protocol.bundle import Bundle
from support.endpoint import app_auth, b64json, claims, mint
from support.js import JS, ensure_installed, must, node, run
from support.repo import KeyRepo

#: Reads [{"jwe", "jwk"}] from the file named by its argument, prints [{"header", "plaintext"}]
#: (run with cwd clients/js, where the bare specifier "jose" resolves to the locked package).
DECRYPT = """
import { readFileSync } from "node:fs";
import { compactDecrypt, importJWK } from "jose";
const out = [];
for (const job of JSON.parse(readFileSync(process.argv[1], "utf8"))) {
  const key = await importJWK(job.jwk, "ECDH-ES+A256KW");
  const { plaintext, protectedHeader } = await compactDecrypt(job.jwe, key, {
    keyManagementAlgorithms: ["ECDH-ES+A256KW"],
    contentEncryptionAlgorithms: ["A256GCM"],
  });
  out.push({ header: protectedHeader, plaintext: new TextDecoder().decode(plaintext) });
}
process.stdout.write(JSON.stringify(out));
"""


def answers(bundle: Bundle, repo: KeyRepo, count: int) -> list[tuple[str, ECKey, str]]:
    """(JWE, the app's ephemeral key, the JWS the bundle serves it) for ``count`` requests."""
    now = int(time.time())
    endpoint = Endpoint(bundle, clock=lambda: now)
    kid, secret = app_auth(repo)
    out = []
    for index in range(count):
        key = ECKey.generate_key("P-256")
        token = mint(kid, secret, claims(key, iat=now, install_id=f"interop-{index:04d}"))
        answer = endpoint.handle(Request.get("/v1/credentials", f"Bearer {token}"))
        assert answer.status == 200
        out.append((answer.body.decode(), key, bundle.clients["ios"].credentials[0].jws))
    return out


def test_joserfc_and_jose_open_every_answer(
    bundle_dir: Path, served_repo: KeyRepo, tmp_path: Path
) -> None:
    ensure_installed()
    got = answers(Bundle.load(bundle_dir), served_repo, 40)
    jobs = tmp_path / "jobs.json"
    jobs.write_text(json.dumps([{"jwe": t, "jwk": k.as_dict(private=True)} for t, k, _ in got]))
    proc = must(
        run([node(), "--input-type=module", "-e", DECRYPT, str(jobs)], cwd=JS),
        "jose compactDecrypt",
    )
    opened: list[dict[str, Any]] = json.loads(proc.stdout)
    assert len(opened) == len(got)
    for (token, key, served), by_jose in zip(got, opened, strict=True):
        by_joserfc = jwe.decrypt_compact(token, key, algorithms=["ECDH-ES+A256KW", "A256GCM"])
        assert by_joserfc.plaintext == served.encode()
        assert by_jose["plaintext"] == served
        header = b64json(token.split(".")[0])
        assert by_jose["header"] == header
        assert sorted(header) == ["alg", "enc", "epk"]
        assert (header["alg"], header["enc"]) == ("ECDH-ES+A256KW", "A256GCM")
        assert sorted(header["epk"]) == ["crv", "kty", "x", "y"]  # public only
