"""The Python reference code against the shared client test vectors in tests/vectors/.

The JS client (clients/js) runs its unit tests on the same files, so a behaviour change on either
side shows up as a failing vector. tests/vectors/generate.py writes the files from this code.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey

from keyops.client.config import parse
from keyops.client.fetcher import Fetcher, NothingUsable, Policy
from keyops.client.token import Identity, build
from keyops.client.transport import Request, Response, TransportError
from keyops.client.verify import VerifyError, open_response, verify_signed
from keyops.core.errors import ClientConfigError, KeyopsError
from keyops.protocol.selection import bucket, select
from support.endpoint import b64json
from vectors.generate import patched

VECTORS = Path(__file__).resolve().parent / "vectors"


def load(name: str) -> Any:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


CONFIG = load("config.json")
TOKEN = load("token.json")
BUCKET = load("bucket.json")
PAYLOAD = load("payload.json")
ANSWERS = load("answers.json")


def ids(cases: list[dict[str, Any]]) -> list[str]:
    return [case["name"] for case in cases]


def outcome(call: Any) -> dict[str, Any]:
    """What a verification produced, in the vectors' terms."""
    try:
        v = call()
    except VerifyError as exc:
        return {"error": "VerifyError", "reason": exc.reason, "message": exc.what}
    return {
        "ok": {
            "stack": v.stack,
            "client": v.client,
            "credential_id": v.credential_id,
            "key": v.key,
            "cluster": v.cluster,
            "bundle_version": v.bundle_version,
            "iat": v.iat,
            "exp": v.exp,
            "refresh_after": v.refresh_after,
        }
    }


# -- config ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", CONFIG["invalid"], ids=ids(CONFIG["invalid"]))
def test_config_refused(case: dict[str, Any]) -> None:
    with pytest.raises(ClientConfigError) as caught:
        parse(patched(CONFIG["valid"], case["patch"]))
    assert caught.value.what == case["message"]
    assert caught.value.what.startswith(f"client config {case['where']}: ")


@pytest.mark.parametrize("case", CONFIG["accepted"], ids=ids(CONFIG["accepted"]))
def test_config_accepted(case: dict[str, Any]) -> None:
    cfg = parse(patched(CONFIG["valid"], case["patch"]))
    bundled = cfg.bundled
    assert {
        "stack": cfg.stack,
        "client": cfg.client,
        "endpoints": list(cfg.endpoints),
        "kid": cfg.kid,
        "secret_hex": cfg.secret.hex(),
        "pinned_kids": sorted(cfg.pinned),
        "bundled": None
        if bundled is None
        else {
            "credential_id": bundled.credential_id,
            "key": bundled.key,
            "cluster": bundled.cluster,
        },
    } == case["parsed"]


# -- token ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", TOKEN["cases"], ids=ids(TOKEN["cases"]))
def test_token_matches_the_vector(case: dict[str, Any]) -> None:
    cfg = parse(TOKEN["config"])
    secret = OctKey.import_key(cfg.secret)
    ident = case["identity"]
    signed = build(
        cfg,
        Identity(ident["app_version"], ident["install_id"], ident["held"]),
        case["now"] + case["skew"],
    )
    head, body, _ = signed.token.split(".")
    expected_head = case["expected_token"].split(".")[0]
    assert head == expected_head  # byte for byte: the JS client must produce the same header
    assert b64json(head) == case["expected_header"]
    claims = b64json(body)
    # Only the two random inputs differ from the vector: a new jti and a new key per request.
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", claims["jti"]) and claims["jti"] == signed.jti
    assert set(claims["epk"]) == {"kty", "crv", "x", "y"}
    assert ECKey.import_key(claims["epk"]).as_dict(private=False)["crv"] == "P-256"
    assert {**claims, "jti": case["jti"], "epk": "EPK"} == {**case["expected_claims"], "epk": "EPK"}
    assert list(claims) == list(case["expected_claims"])  # member order too
    assert jwt.decode(signed.token, secret, algorithms=["HS256"]).claims == claims
    # The vector itself is consistent: its token is signed with the config's secret and carries
    # the fixed jti and the public half of the fixed ephemeral key.
    decoded = jwt.decode(case["expected_token"], secret, algorithms=["HS256"])
    assert decoded.claims == case["expected_claims"]
    assert decoded.claims["jti"] == case["jti"]
    eph = TOKEN["ephemeral_private_jwk"]
    assert decoded.claims["epk"] == {"kty": "EC", "crv": "P-256", "x": eph["x"], "y": eph["y"]}


@pytest.mark.parametrize("case", TOKEN["invalid_identities"])
def test_identity_refused(case: dict[str, Any]) -> None:
    with pytest.raises(KeyopsError) as caught:
        Identity(case["app_version"], case["install_id"], case["held"])
    assert type(caught.value).__name__ == case["error"]
    assert caught.value.what == case["message"]


# -- rollout buckets and selection ----------------------------------------------------------------
@pytest.mark.parametrize("case", BUCKET["buckets"])
def test_bucket(case: dict[str, Any]) -> None:
    assert bucket(case["client"], case["credential_id"], case["install_id"]) == case["bucket"]


def test_the_documented_buckets_are_in_the_vectors() -> None:
    known = {
        (c["client"], c["credential_id"], c["install_id"]): c["bucket"] for c in BUCKET["buckets"]
    }
    # docs/protocol.md, "Which key you get"
    assert known[("ios", "ios-2026-12", "install-0001")] == 22
    assert known[("ios", "ios-2026-12", "A1b2C3d4")] == 53
    assert known[("android", "android-2026-12", "zzzzzzzz")] == 61


@pytest.mark.parametrize("case", BUCKET["selection"], ids=ids(BUCKET["selection"]))
def test_selection(case: dict[str, Any]) -> None:
    client = SimpleNamespace(
        client=case["client"],
        credentials=tuple(SimpleNamespace(**c) for c in case["credentials"]),
    )
    chosen = select(client, case["install_id"], case["app_version"])  # type: ignore[arg-type]
    assert (chosen.id if chosen else None) == case["selected"]
    for cid, expected in case["buckets"].items():
        assert bucket(case["client"], cid, case["install_id"]) == expected


# -- payload checks -------------------------------------------------------------------------------
@pytest.mark.parametrize("case", PAYLOAD["signed"], ids=ids(PAYLOAD["signed"]))
def test_signed_payload(case: dict[str, Any]) -> None:
    cfg = parse(PAYLOAD["config"])
    got = outcome(
        lambda: verify_signed(case["jws"], cfg, PAYLOAD["now"], case["min_bundle_version"])
    )
    assert got == case["expect"]


@pytest.mark.parametrize("case", PAYLOAD["responses"], ids=ids(PAYLOAD["responses"]))
def test_encrypted_response(case: dict[str, Any]) -> None:
    cfg = parse(PAYLOAD["config"])
    key = ECKey.import_key(PAYLOAD["ephemeral_private_jwk"])
    body = case["body"].encode("utf-8")
    got = outcome(lambda: open_response(body, key, cfg, PAYLOAD["now"], case["min_bundle_version"]))
    assert got == case["expect"]


def test_every_rejection_reason_has_a_vector() -> None:
    reasons = {c["expect"].get("reason") for c in PAYLOAD["signed"] + PAYLOAD["responses"]} - {None}
    assert reasons == {
        "not-jwe",
        "wrong-alg",
        "decrypt-failed",
        "not-jws",
        "unknown-kid",
        "bad-signature",
        "bad-payload",
        "wrong-stack",
        "wrong-client",
        "expired",
        "rollback",
    }


# -- error answers --------------------------------------------------------------------------------
@pytest.mark.parametrize("case", ANSWERS["cases"], ids=ids(ANSWERS["cases"]))
def test_error_answer_reaction(case: dict[str, Any]) -> None:
    sent: list[dict[str, Any]] = []
    sleeps: list[float] = []
    seen: set[str] = set()

    def transport(request: Request) -> Response:
        assert request.headers["Accept"] == "application/jose"
        token = request.headers["Authorization"].removeprefix("Bearer ")
        claims = b64json(token.split(".")[1])
        marks = {"jti:" + claims["jti"], "epk:" + claims["epk"]["x"] + "." + claims["epk"]["y"]}
        sent.append({"url": request.url, "iat": claims["iat"], "new_token": not marks & seen})
        seen.update(marks)
        spec = case["first"] if "first" in case and len(sent) == 1 else case["response"]
        if spec is None:
            raise TransportError("connection refused")
        return Response(spec["status"], dict(spec["headers"]), spec["body"].encode("utf-8"))

    ident = ANSWERS["identity"]
    policy = ANSWERS["policy"]
    fetcher = Fetcher(
        parse(ANSWERS["config"]),
        Identity(ident["app_version"], ident["install_id"], ident["held"]),
        transport=transport,
        policy=Policy(attempt_timeout=policy["attempt_timeout"], max_rounds=policy["max_rounds"]),
        clock=lambda: float(ANSWERS["clock"]),
        sleep=sleeps.append,
        random=lambda: ANSWERS["random"],
    )
    with pytest.raises(NothingUsable) as caught:
        fetcher.refresh()
    expect = case["expect"]
    assert sent == expect["requests"]
    assert sleeps == expect["sleeps"]
    assert [
        {"url": a.url, "outcome": a.outcome, "detail": a.detail, "retryable": a.retryable}
        for a in caught.value.attempts
    ] == expect["attempts"]


def test_the_documented_reasons_are_the_clients() -> None:
    """docs/client.md lists every reason the reference client can report, and no other."""
    import ast

    source = Path(__file__).resolve().parents[1] / "src" / "keyops" / "client" / "verify.py"
    raised = {
        node.args[0].value
        for node in ast.walk(ast.parse(source.read_text()))
        if isinstance(node, ast.Call)
        and getattr(node.func, "id", None) == "VerifyError"
        and isinstance(node.args[0], ast.Constant)
    }
    doc = (Path(__file__).resolve().parents[1] / "docs" / "client.md").read_text()
    table = doc.split("| reason | the answer |", 1)[1].split("\n\n", 1)[0]
    documented = {
        code
        for row in table.splitlines()[2:]
        for code in re.findall(r"`([a-z-]+)`", row.split("|")[1])
    }
    fetcher = source.with_name("fetcher.py").read_text()
    assert '"verify:unreadable"' in fetcher  # the fetcher's last resort, not a VerifyError
    assert documented == raised | {"unreadable"}
