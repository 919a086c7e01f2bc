"""``keyops build`` and the bundle format: contents, secrecy, signature, versions, refusals."""

from __future__ import annotations

import base64
import json
import re
import stat
from pathlib import Path
from typing import Any

import pytest
from joserfc import jws
from joserfc.jwk import ECKey, KeySet

from keyops.build.bundle import build_bundle, write_bundle
from keyops.core.errors import BundleError, BundleExpired
from keyops.protocol.bundle import BUNDLE_FILE, Bundle
from support.repo import KeyRepo

PAYLOAD_KEYS = [
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


def build(repo: KeyRepo, out: Path, *extra: str) -> Any:
    return repo.run("build", "--stack", "dev", "--out", str(out), *extra)


def decoded_texts(data: bytes) -> list[str]:
    """The file plus every base64url segment in it, decoded: a secret cannot hide in a JWS."""
    texts = [data.decode("latin-1")]
    for segment in re.findall(rb"[A-Za-z0-9_-]{16,}", data):
        try:
            texts.append(
                base64.urlsafe_b64decode(segment + b"=" * (-len(segment) % 4)).decode("latin-1")
            )
        except ValueError:
            continue
    return texts


def test_build_writes_a_verifiable_bundle(keyrepo: KeyRepo, tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    # Built as of the sample's day, with a lifetime that reaches past the real clock (build
    # refuses a bundle that is already expired).
    proc = build(keyrepo, out, "--now", "2026-11-27T12:00:00Z", "--ttl-days", "3650")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(
        f"built bundle {out / BUNDLE_FILE}: stack dev, version 1, "
        "3 served client(s), 3 signed payload(s), signed by "
        "dev-sign-2026-11, expires 2036-11-24T12:00:00+00:00"
    )
    assert stat.S_IMODE((out / BUNDLE_FILE).stat().st_mode) == 0o600
    assert sorted(p.name for p in out.iterdir()) == ["bundle.jws", "jwks.json"]
    jwks = json.loads((out / "jwks.json").read_text())
    bundle = Bundle.load(out, now=1795780800, jwks=jwks)
    assert (bundle.stack, bundle.bundle_version, bundle.iat) == ("dev", 1, 1795780800)
    assert bundle.exp == bundle.iat + 3650 * 86400
    assert sorted(bundle.clients) == ["android", "ios", "web"]  # server is secret-store
    keys = {c["id"]: c["key"] for c in keyrepo.decrypt("credentials/dev/ios.yaml")["credentials"]}
    ios = bundle.clients["ios"]
    assert [c.id for c in ios.credentials] == ["ios-2026-11"]  # retiring is not served
    assert ios.credential_ids == ("ios-2026-11", "ios-2026-05")
    signed = jws.deserialize_compact(ios.credentials[0].jws, KeySet.import_key_set(jwks))
    assert signed.headers() == {"alg": "ES256", "kid": "dev-sign-2026-11"}
    payload = json.loads(signed.payload)
    assert list(payload) == PAYLOAD_KEYS
    assert payload == {
        "stack": "dev",
        "client": "ios",
        "credential_id": "ios-2026-11",
        "key": keys["ios-2026-11"],
        "cluster": "eu",
        "bundle_version": 1,
        "iat": 1795780800,
        "exp": 1795780800 + 3650 * 86400,
        "refresh_after": 3600,
    }


def test_no_pusher_secret_or_private_key_enters_the_bundle(
    keyrepo: KeyRepo, tmp_path: Path
) -> None:
    out = tmp_path / "bundle"
    assert build(keyrepo, out).returncode == 0
    texts = [t for f in sorted(out.iterdir()) for t in decoded_texts(f.read_bytes())]
    forbidden: list[str] = []
    for name in ("ios", "android", "web", "server"):
        doc = keyrepo.decrypt(f"credentials/dev/{name}.yaml")
        forbidden += [c["secret"] for c in doc["credentials"]]
    stack = keyrepo.decrypt("credentials/dev/_stack.yaml")
    forbidden.append(stack["encryption_master_key"])
    forbidden += [json.loads(k["private_jwk"])["d"] for k in stack["signing_keys"]]
    # Indices only in assertion messages: test output must not show secrets either.
    assert len(forbidden) == 7
    leaked = [i for i, secret in enumerate(forbidden) if any(secret in t for t in texts)]
    assert leaked == []
    # The app_auth secrets are there on purpose: the server verifies app tokens with them.
    ios_auth = keyrepo.decrypt("credentials/dev/ios.yaml")["app_auth"][0]["secret"]
    assert sum(ios_auth in text for text in texts) == 1


def test_rebuilding_in_place_raises_the_version(keyrepo: KeyRepo, tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    versions = []
    for _ in range(3):
        assert build(keyrepo, out).returncode == 0
        versions.append(Bundle.load(out).bundle_version)
    assert versions == [1, 2, 3]
    # A fresh directory starts from git history: commits touching credentials/dev (+1 if dirty).
    doc = keyrepo.decrypt("credentials/dev/web.yaml")
    doc["credentials"][0]["min_app_version"] = "1.0.0"
    keyrepo.write_doc("credentials/dev/web.yaml", doc)
    assert build(keyrepo, tmp_path / "dirty").returncode == 0
    assert Bundle.load(tmp_path / "dirty").bundle_version == 2
    keyrepo.commit("web needs app 1.0.0")
    keyrepo.commit("unrelated empty commit")
    assert build(keyrepo, tmp_path / "fresh").returncode == 0
    assert Bundle.load(tmp_path / "fresh").bundle_version == 2


def test_build_refuses_on_findings_and_writes_nothing(keyrepo: KeyRepo, tmp_path: Path) -> None:
    doc = keyrepo.decrypt("credentials/dev/ios.yaml")
    doc["credentials"][0]["state"] = "shiny"
    keyrepo.write_doc("credentials/dev/ios.yaml", doc)
    out = tmp_path / "bundle"
    proc = build(keyrepo, out)
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: refusing to build the bundle of stack 'dev': ")
    assert "credentials/dev/ios.yaml::$.credentials[0].state" in proc.stderr
    assert (
        "Fix them (keyops validate and keyops check show the same findings), then run the "
        "command again." in proc.stderr
    )
    assert "Traceback" not in proc.stderr
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--stack", "prod", "--out", "x"],
            "error: stack 'prod' does not exist (no credentials/prod/ directory). "
            "Known stacks: dev.",
        ),
        (
            ["--stack", "dev", "--out", "x", "--now", "yesterday"],
            "error: --now 'yesterday' is neither a date nor an ISO 8601 time. "
            "Use YYYY-MM-DD (e.g. 2026-11-27) or a time such as 2026-11-27T12:00:00Z.",
        ),
        (
            ["--stack", "dev", "--out", "x", "--ttl-days", "0"],
            "error: --ttl-days 0 is too short. Use at least 1 day.",
        ),
    ],
)
def test_build_usage_errors(keyrepo: KeyRepo, args: list[str], message: str) -> None:
    proc = keyrepo.run("build", *args)
    assert (proc.returncode, proc.stderr.strip()) == (2, message)


def test_build_into_a_file_is_refused(keyrepo: KeyRepo, tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("not a directory")
    proc = build(keyrepo, target)
    assert proc.returncode == 2
    assert (
        proc.stderr.strip()
        == f"error: {target} exists and is not a directory. Choose another --out."
    )


@pytest.fixture
def built(keyrepo: KeyRepo, tmp_path: Path) -> Bundle:
    bundle = build_bundle(keyrepo.root, "dev", sops=keyrepo.sops())
    write_bundle(bundle, tmp_path / "b")
    return bundle


def test_tampering_is_detected(built: Bundle, tmp_path: Path) -> None:
    file = tmp_path / "b" / BUNDLE_FILE
    header, payload, signature = file.read_text().split(".")
    doc = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    doc["clients"]["ios"]["serve"][0]["rollout_percent"] = 100
    forged = base64.urlsafe_b64encode(json.dumps(doc).encode()).rstrip(b"=").decode()
    file.write_text(f"{header}.{forged}.{signature}")
    with pytest.raises(BundleError) as info:
        Bundle.load(tmp_path / "b")
    assert info.value.render() == (
        f"error: the bundle {file} is not valid: the signature of the bundle does not verify. "
        "Rebuild it with keyops build; the last good bundle keeps serving meanwhile."
    )
    file.write_bytes(built.raw[:100])
    with pytest.raises(BundleError, match="not a compact JWS with a JSON payload"):
        Bundle.load(tmp_path / "b")


def test_a_bundle_signed_by_another_key_fails_the_pin(built: Bundle, tmp_path: Path) -> None:
    other = ECKey.generate_key("P-256", parameters={"kid": "dev-sign-2026-11"})
    pin = {"keys": [{**other.as_dict(private=False), "kid": "dev-sign-2026-11"}]}
    with pytest.raises(BundleError, match="the signature of the bundle does not verify"):
        Bundle.load(tmp_path / "b", jwks=pin)
    pin = {"keys": [{**other.as_dict(private=False), "kid": "someone-else"}]}
    with pytest.raises(BundleError, match="signed by kid 'dev-sign-2026-11', which is not pinned"):
        Bundle.load(tmp_path / "b", jwks=pin)


def test_expired_bundle_is_refused(built: Bundle, tmp_path: Path) -> None:
    with pytest.raises(BundleExpired) as info:
        Bundle.load(tmp_path / "b", now=built.exp)
    assert info.value.render().endswith("Rebuild it: keyops build --stack dev --out DIR.")
    assert f"(version {built.bundle_version}) expired at " in info.value.render()
    assert Bundle.load(tmp_path / "b", now=built.exp, allow_expired=True).exp == built.exp


def test_missing_bundle_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BundleError) as info:
        Bundle.load(tmp_path)
    assert info.value.render() == (
        f"error: no bundle at {tmp_path / BUNDLE_FILE}. "
        "Build one: keyops build --stack S --out DIR."
    )


def test_the_bundle_carries_each_served_web_clients_allowed_origins(built: Bundle) -> None:
    document = json.loads(jws.extract_compact(built.raw).payload)
    assert document["clients"]["web"]["allowed_origins"] == [
        "http://localhost:*",
        "https://app.dev.example.com",
    ]
    # Optional: absent for a client without origins, as in bundles built before the field.
    assert "allowed_origins" not in document["clients"]["ios"]
    assert "allowed_origins" not in document["clients"]["android"]


def test_build_refuses_a_loose_origin(keyrepo: KeyRepo, tmp_path: Path) -> None:
    doc = keyrepo.decrypt("credentials/dev/web.yaml")
    doc["allowed_origins"] = ["*"]
    keyrepo.write_doc("credentials/dev/web.yaml", doc)
    out = tmp_path / "bundle"
    proc = build(keyrepo, out)
    assert proc.returncode == 1
    assert (
        "credentials/dev/web.yaml::$.allowed_origins[0]: error[allowed-origins] '*' would let "
        "every web page call the endpoint from a browser" in proc.stderr
    )
    assert not out.exists()
