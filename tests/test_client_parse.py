"""Parsing the bootstrap config: every problem names the JSON path, never the secret."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from keyops.client import config as client_config
from keyops.core.errors import ClientConfigError
from support.client import SECRET, SECRET_B64, SIGNER, document


def test_a_good_document_parses() -> None:
    config = client_config.parse(document(["https://a.example.test/", "http://127.0.0.1:8787"]))
    assert (config.stack, config.client, config.kid) == ("dev", "ios", "ios-build-2026a")
    assert config.endpoints == ("https://a.example.test", "http://127.0.0.1:8787")
    assert config.secret == SECRET  # decoded to bytes: the HMAC key is the bytes, not the text
    assert sorted(config.pinned) == ["dev-sign-a", "dev-sign-b"]
    assert config.bundled is None
    assert SECRET_B64 not in repr(config)


def _set(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    node: Any = doc
    keys = path.split(".")
    for key in keys[:-1]:
        node = node[int(key)] if key.isdigit() else node[key]
    last = keys[-1]
    if value is _DELETE:
        del node[last]
    else:
        node[int(last) if last.isdigit() else last] = value
    return doc


_DELETE = object()
PRIVATE = dict(SIGNER.as_dict(private=True), kid="dev-sign-a")

BAD = [
    ("endpoints", [], "client config $.endpoints: must be a non-empty list of base URLs"),
    ("endpoints", ["ftp://x"], "client config $.endpoints[0]: not an http(s) base URL"),
    ("request_auth.alg", "HS512", 'client config $.request_auth.alg: must be "HS256"'),
    ("request_auth.secret", "not base64!", "client config $.request_auth.secret: is not base64url"),
    (
        "request_auth.secret",
        "c2hvcnQ",
        "client config $.request_auth.secret: decodes to fewer than 32 bytes",
    ),
    (
        "request_auth.kid",
        _DELETE,
        "client config $.request_auth.kid: missing or not a non-empty string",
    ),
    ("stack", 7, "client config $.stack: missing or not a non-empty string"),
    ("pinned_keys.keys", [], "client config $.pinned_keys: must be a JWKS with at least one key"),
    (
        "pinned_keys.keys.0",
        PRIVATE,
        "client config $.pinned_keys.keys[0]: holds a private key ('d'); pin public keys only",
    ),
    (
        "pinned_keys.keys.0.crv",
        "P-384",
        "client config $.pinned_keys.keys[0]: must be an EC P-256 public key (ES256)",
    ),
    (
        "pinned_keys.keys.0.x",
        "AAAA",
        "client config $.pinned_keys.keys[0]: is not a valid P-256 public key",
    ),
    (
        "pinned_keys.keys.1.kid",
        "dev-sign-a",
        "client config $.pinned_keys.keys[1].kid: 'dev-sign-a' is pinned twice",
    ),
    (
        "bundled_fallback",
        {"credential_id": "Bad_Id", "key": "abc", "cluster": "eu"},
        "client config $.bundled_fallback.credential_id: is not a credential id",
    ),
    (
        "bundled_fallback",
        {"credential_id": "ios-2026-11", "key": "ABC", "cluster": "eu"},
        "client config $.bundled_fallback.key: is not 20 lowercase hex characters",
    ),
    (
        "bundled_fallback",
        {"credential_id": "ios-2026-11", "key": "0123456789abcdef0123\n", "cluster": "eu"},
        "client config $.bundled_fallback.key: is not 20 lowercase hex characters",
    ),
    (
        "bundled_fallback",
        {"credential_id": "ios-2026-11\n", "key": "0123456789abcdef0123", "cluster": "eu"},
        "client config $.bundled_fallback.credential_id: is not a credential id",
    ),
]


@pytest.mark.parametrize(("path", "value", "message"), BAD)
def test_bad_documents_are_refused_with_the_json_path(path: str, value: Any, message: str) -> None:
    doc = _set(document(), path, value)
    with pytest.raises(ClientConfigError) as info:
        client_config.parse(doc)
    assert info.value.render() == (
        f"error: {message}. Regenerate it with "
        "'keyops client-config --stack S --client C --out FILE'."
    )
    assert info.value.exit_code == 2
    assert SECRET_B64 not in info.value.render()


def test_load_reports_json_errors_with_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text('{\n  "stack": "dev",\n  oops\n}\n')
    with pytest.raises(ClientConfigError) as info:
        client_config.load(path)
    assert info.value.what == (
        f"client config {path} line 3 column 3: not JSON (Expecting property name enclosed in "
        "double quotes)"
    )


def test_load_reports_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(Exception) as info:
        client_config.load(tmp_path / "missing.json")
    assert str(info.value) == (
        f"error: client config {tmp_path / 'missing.json'} does not exist. Regenerate it with "
        "'keyops client-config --stack S --client C --out FILE'."
    )


def test_load_round_trips_a_written_document(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text(json.dumps(document()))
    assert client_config.load(path).client == "ios"
