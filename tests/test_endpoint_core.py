"""The framework-free endpoint core against a real built bundle: every row of docs/protocol.md."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from joserfc.jwk import ECKey

from keyops.build.bundle import build_bundle, write_bundle
from keyops.endpoint.core import Endpoint, Request
from keyops.protocol import selection
from keyops.protocol.bundle import Bundle
from support.endpoint import app_auth, claims, mint, new_epk, open_answer
from support.repo import KeyRepo, new_repo

#: The endpoints here run on a frozen clock, so a slow or busy test run never makes a token stale.
NOW = time.time()


def claims_now(epk: Any = None, **overrides: Any) -> dict[str, Any]:
    overrides.setdefault("iat", int(NOW))
    return claims(epk, **overrides)


@pytest.fixture(scope="module")
def rollout_repo(tmp_path_factory: pytest.TempPathFactory, _template: Any) -> KeyRepo:
    """ios: active (min 5.0.0) and a pending ios-2026-12 at 10% (min 6.0.0)."""
    repo = new_repo(tmp_path_factory.mktemp("rollout"), _template)
    doc = repo.decrypt("credentials/dev/ios.yaml")
    doc["credentials"][0]["min_app_version"] = "5.0.0"
    doc["credentials"].insert(
        0,
        {
            "id": "ios-2026-12",
            "state": "pending",
            "key": "a" * 20,
            "secret": "b" * 20,
            "created": "2026-11-20",
            "min_app_version": "6.0.0",
            "rollout_percent": 10,
        },
    )
    repo.write_doc("credentials/dev/ios.yaml", doc)
    repo.commit("pending ios-2026-12 at 10%")
    return repo


@pytest.fixture(scope="module")
def bundle(rollout_repo: KeyRepo) -> Bundle:
    return build_bundle(rollout_repo.root, "dev", sops=rollout_repo.sops())


@pytest.fixture(scope="module")
def auth(rollout_repo: KeyRepo) -> tuple[str, bytes]:
    return app_auth(rollout_repo)


def endpoint(bundle: Bundle | None, now: float | None = None) -> Endpoint:
    return Endpoint(bundle, clock=lambda: NOW if now is None else now)


def ask(ep: Endpoint, token: str | None) -> tuple[int, dict[str, Any] | bytes, dict[str, str]]:
    answer = ep.handle(Request.get("/v1/credentials", None if token is None else f"Bearer {token}"))
    headers = answer.all_headers()
    if headers["content-type"] == "application/problem+json":
        return answer.status, json.loads(answer.body), headers
    return answer.status, answer.body, headers


def expected_problem(status: int, code: str) -> dict[str, Any]:
    titles = {
        "bad-request": None,
        "invalid-token": "The token is not valid",
        "stale-token": "The token's iat is outside the accepted window",
        "upgrade-required": "No credential for this app_version",
        "not-ready": "No valid bundle is loaded",
    }
    body = {"type": f"https://keyops.invalid/problems/{code}", "status": status, "code": code}
    if titles[code]:
        body["title"] = titles[code]
    return body


def test_bucket_formula_known_vectors() -> None:
    # sha256("ios:ios-2026-12:install-0001")[:8] = 04759358c532daf6 -> 22, and so on.
    assert selection.bucket("ios", "ios-2026-12", "install-0001") == 22
    assert selection.bucket("ios", "ios-2026-12", "A1b2C3d4") == 53
    assert selection.bucket("android", "android-2026-12", "zzzzzzzz") == 61
    assert selection.bucket("web", "web-2027-01", "0123456789abcdef0123456789abcdef") == 86


def test_semver_precedence() -> None:
    ordered = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "1.0.1",
        "1.2.0",
        "2.0.0",
        "10.0.0",
    ]
    keys = [selection.version_key(v) for v in ordered]
    assert keys == sorted(keys)
    assert selection.version_key("1.0.0+build.5") == selection.version_key("1.0.0")


def test_happy_path_decrypts_and_verifies(bundle: Bundle, auth: tuple[str, bytes]) -> None:
    epk = new_epk()
    status, body, headers = ask(endpoint(bundle), mint(*auth, claims_now(epk, app_version="5.2.0")))
    assert status == 200
    assert headers["content-type"] == "application/jose"
    assert headers["cache-control"] == "no-store"
    payload = open_answer(body, epk, bundle.jwks())  # type: ignore[arg-type]
    assert list(payload) == [
        "stack",
        "client",
        "credential_id",
        "key",
        "cluster",
        "bundle_version",
        "iat",
        "exp",
        "refresh_after",
    ]
    assert payload["stack"] == "dev" and payload["client"] == "ios"
    assert payload["credential_id"] == "ios-2026-11"  # 5.2.0 < 6.0.0: the pending one is out
    assert payload["bundle_version"] == bundle.bundle_version and payload["exp"] == bundle.exp


def test_rollout_share_follows_buckets(bundle: Bundle, auth: tuple[str, bytes]) -> None:
    ep = endpoint(bundle)
    served: dict[str, int] = {}
    installs = [f"install-{i:05d}" for i in range(300)]
    for install in installs:
        epk = new_epk()
        token = mint(*auth, claims_now(epk, app_version="6.1.0", install_id=install))
        status, body, _ = ask(ep, token)
        assert status == 200
        payload = open_answer(body, epk, bundle.jwks())  # type: ignore[arg-type]
        expected = (
            "ios-2026-12" if selection.bucket("ios", "ios-2026-12", install) < 10 else "ios-2026-11"
        )
        assert payload["credential_id"] == expected, install
        served[expected] = served.get(expected, 0) + 1
    assert 15 <= served["ios-2026-12"] <= 45  # 10% of 300, well inside sampling noise


def test_min_app_version_gives_426(bundle: Bundle, auth: tuple[str, bytes]) -> None:
    status, body, _ = ask(endpoint(bundle), mint(*auth, claims_now(app_version="4.9.9")))
    assert (status, body) == (426, expected_problem(426, "upgrade-required"))
    # A pre-release sorts before its release: 5.0.0-beta.1 < 5.0.0.
    status, _, _ = ask(endpoint(bundle), mint(*auth, claims_now(app_version="5.0.0-beta.1")))
    assert status == 426


def test_unknown_client_kid_and_bad_signature_are_identical(
    bundle: Bundle, auth: tuple[str, bytes]
) -> None:
    kid, secret = auth
    answers = [
        ask(endpoint(bundle), mint(kid, b"x" * 32, claims_now())),  # bad signature
        ask(endpoint(bundle), mint("no-such-kid", secret, claims_now())),  # unknown kid
        ask(endpoint(bundle), mint(kid, secret, claims_now(sub="watch"))),  # unknown client
        ask(
            endpoint(bundle), mint(kid, secret, claims_now(sub="android"))
        ),  # kid of another client
        ask(endpoint(bundle), None),  # no token at all
        ask(endpoint(bundle), mint(kid, secret, claims_now(aud="prod"))),  # token for another stack
    ]
    first = answers[0]
    assert first[0] == 401 and first[1] == expected_problem(401, "invalid-token")
    assert first[2]["www-authenticate"] == 'Bearer error="invalid_token"'
    assert all(answer == first for answer in answers)


@pytest.mark.parametrize("skew", [-301, 301, 100_000])
def test_stale_iat(bundle: Bundle, auth: tuple[str, bytes], skew: int) -> None:
    status, body, _ = ask(endpoint(bundle), mint(*auth, claims_now(iat=int(NOW) + skew)))
    assert (status, body) == (401, expected_problem(401, "stale-token"))


def test_iat_inside_window_is_accepted(bundle: Bundle, auth: tuple[str, bytes]) -> None:
    for skew in (-299, 299):
        status, _, _ = ask(endpoint(bundle), mint(*auth, claims_now(iat=int(NOW) + skew)))
        assert status == 200


def _epk_off_curve() -> dict[str, Any]:
    good = new_epk().as_dict(private=False)
    y = bytearray(base64.urlsafe_b64decode(good["y"] + "="))
    y[-1] ^= 1
    return {**good, "y": base64.urlsafe_b64encode(bytes(y)).rstrip(b"=").decode()}


BAD_CLAIMS: list[tuple[str, dict[str, Any]]] = [
    ("jti too short", {"jti": "short"}),
    ("jti not a string", {"jti": 12345678901234567890}),
    ("app_version not semver", {"app_version": "5.2"}),
    ("app_version missing", {"app_version": None}),
    ("install_id too short", {"install_id": "abc"}),
    ("install_id bad chars", {"install_id": "install id!"}),
    ("held not an id", {"held": "NOT AN ID"}),
    ("held not a string", {"held": 7}),
    ("iat missing", {"iat": None}),
    ("iat a string", {"iat": "now"}),
    ("epk missing", {"epk": None}),
    ("epk wrong crv", {"epk": {**new_epk().as_dict(private=False), "crv": "P-384"}}),
    (
        "epk missing y",
        {"epk": {k: v for k, v in new_epk().as_dict(private=False).items() if k != "y"}},
    ),
    ("epk off curve", {"epk": _epk_off_curve()}),
    ("epk private", {"epk": ECKey.generate_key("P-256").as_dict(private=True)}),
    ("epk RSA", {"epk": {"kty": "RSA", "n": "AQAB", "e": "AQAB"}}),
    ("epk short x", {"epk": {**new_epk().as_dict(private=False), "x": "AAAA"}}),
]


@pytest.mark.parametrize(("why", "change"), BAD_CLAIMS, ids=[w for w, _ in BAD_CLAIMS])
def test_malformed_claims_give_400(
    bundle: Bundle, auth: tuple[str, bytes], why: str, change: dict[str, Any]
) -> None:
    body_claims = claims_now(**change)
    if change.get("epk", "") is None:
        body_claims.pop("epk", None)
    status, body, _ = ask(endpoint(bundle), mint(*auth, body_claims))
    assert status == 400, why
    assert isinstance(body, dict) and body["code"] == "bad-request"
    assert body["type"] == "https://keyops.invalid/problems/bad-request"


def test_no_bundle_and_expired_bundle_give_503(bundle: Bundle, auth: tuple[str, bytes]) -> None:
    token = mint(*auth, claims_now())
    assert ask(endpoint(None), token)[:2] == (503, expected_problem(503, "not-ready"))
    late = endpoint(bundle, now=bundle.exp + 1)
    assert late.handle(Request.get("/healthz")).status == 503
    assert json.loads(late.handle(Request.get("/healthz")).body)["code"] == "not-ready"


def test_health_and_routing(bundle: Bundle) -> None:
    ep = endpoint(bundle, now=bundle.exp - 100)
    health = ep.handle(Request.get("/healthz"))
    assert (health.status, json.loads(health.body)) == (
        200,
        {
            "status": "ok",
            "stack": "dev",
            "bundle_version": bundle.bundle_version,
            "expires_in": 100,
        },
    )
    assert ep.handle(Request.get("/nope")).status == 404
    wrong = ep.handle(Request("POST", "/v1/credentials"))
    assert (wrong.status, wrong.headers["allow"]) == (405, "GET")


def test_metrics_count_client_served_and_held(bundle: Bundle, auth: tuple[str, bytes]) -> None:
    ep = endpoint(bundle)
    for held in ("ios-2026-05", "ios-2026-05", "ios-2026-11", None, "someone-elses"):
        assert ask(ep, mint(*auth, claims_now(held=held)))[0] == 200
    ask(ep, mint("nope", b"k" * 32, claims_now()))
    text = ep.handle(Request.get("/metrics")).body.decode()
    line = 'keyops_served_total{{stack="dev",client="ios",credential="ios-2026-11",held="{}"}} {}'
    for held, count in (("ios-2026-05", 2), ("ios-2026-11", 1), ("none", 1), ("other", 1)):
        assert line.format(held, count) in text
    assert 'keyops_responses_total{status="401",code="invalid-token"} 1' in text
    assert f'keyops_bundle_version{{stack="dev"}} {bundle.bundle_version}' in text


# -- hostile tokens ------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _raw_token(header: Any, payload: Any, signature: bytes = b"sig") -> str:
    def enc(part: Any) -> str:
        return _b64(part if isinstance(part, bytes) else json.dumps(part).encode())

    return f"{enc(header)}.{enc(payload)}.{_b64(signature)}"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    alg=st.sampled_from(["none", "RS256", "HS512", "ES256", "HS256", "", None, "hs256"]),
    kid=st.sampled_from(["ios-build-2026a", "android-build-2026a", "dev-sign-2026-11", "", None])
    | st.text(max_size=30),
    sub=st.sampled_from(["ios", "android", "web", "server", "", None]) | st.text(max_size=10),
    aud=st.sampled_from(["dev", "prod", "", None, ["dev"], ["prod"]]),
    epk=st.sampled_from(["good", "off-curve", "p384", "no-y", "garbage"]),
    extra=json_values,
    signature=st.binary(max_size=64),
    sign=st.booleans(),
)
def test_hostile_tokens_only_400_or_401(
    bundle: Bundle,
    auth: tuple[str, bytes],
    alg: Any,
    kid: Any,
    sub: Any,
    aud: Any,
    epk: str,
    extra: Any,
    signature: bytes,
    sign: bool,
) -> None:
    genuine = sign and alg == "HS256" and kid == auth[0] and sub == "ios" and epk == "good"
    assume(not (genuine and aud in ("dev", ["dev"])))  # that one is a valid request
    keys = {
        "good": new_epk().as_dict(private=False),
        "off-curve": _epk_off_curve(),
        "p384": ECKey.generate_key("P-384").as_dict(private=False),
        "no-y": {"kty": "EC", "crv": "P-256", "x": new_epk().as_dict()["x"]},
        "garbage": extra,
    }
    body = claims_now(keys[epk], sub=sub, aud=aud, junk=extra)
    header = {"alg": alg, "kid": kid, "typ": "JWT"}
    if sign and alg == "HS256" and isinstance(kid, str) and kid:
        token = mint(kid, auth[1], body)
    else:
        token = _raw_token(header, body, signature)
    status, _, _ = ask(endpoint(bundle), token)
    assert status in (400, 401)


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(raw=st.binary(max_size=400) | st.text(max_size=400).map(str.encode))
def test_garbage_authorization_is_401(bundle: Bundle, raw: bytes) -> None:
    # Headers arrive as latin-1 text from the ASGI server: any byte string maps to some text.
    status, body, _ = ask(endpoint(bundle), raw.decode("latin-1"))
    assert (status, body) == (401, expected_problem(401, "invalid-token"))


def test_huge_and_non_utf8_tokens_are_401(bundle: Bundle, auth: tuple[str, bytes]) -> None:
    huge = mint(*auth, claims_now(padding="x" * 20_000))
    assert ask(endpoint(bundle), huge)[0] == 401
    non_utf8 = _b64(b"\xff\xfe{") + "." + _b64(b"\xc3\x28") + ".c2ln"
    assert ask(endpoint(bundle), non_utf8)[0] == 401
    assert (
        ask(endpoint(bundle), _raw_token({"alg": "HS256", "kid": auth[0]}, b"\xff\xfe"))[0] == 401
    )


def test_bundle_file_is_what_was_built(bundle: Bundle, tmp_path: Path) -> None:
    write_bundle(bundle, tmp_path / "out")
    again = Bundle.load(tmp_path / "out", jwks=bundle.jwks())
    assert again.raw == bundle.raw and again.clients.keys() == bundle.clients.keys()


def test_alg_confusion_with_the_public_signing_key_is_401(bundle: Bundle) -> None:
    # The classic attack: HS256 "signed" with the published ES256 key, under its kid.
    public = json.dumps(bundle.jwks()["keys"][0]).encode()
    for kid in (bundle.signing_kid, "ios-build-2026a"):
        status, body, _ = ask(endpoint(bundle), mint(kid, public, claims_now()))
        assert (status, body) == (401, expected_problem(401, "invalid-token"))
