"""New stack and client documents, with fresh secrets from the operating system's CSPRNG.

``keyops stack add`` and ``keyops client add`` build their documents here (the sample data of
:mod:`keyops.store.sample` too, so both have one shape). Everything is made in memory; the
commands hand the documents to sops through stdin, so no secret ever reaches the disk in clear.

The formats are those of docs/file-format.md: an ES256 (P-256) private JWK as compact JSON text,
a 32-byte ``encryption_master_key`` in standard base64, and ``app_auth`` secrets of 32 bytes in
base64url without padding.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
from typing import Any

from joserfc.jwk import ECKey

from keyops.core import b64


def app_auth_secret() -> str:
    """32 random bytes, base64url without padding (the HMAC key of app tokens)."""
    return b64.encode(secrets.token_bytes(32))


def master_key() -> str:
    """The channels ``encryption_master_key``: 32 random bytes, standard base64."""
    return base64.b64encode(secrets.token_bytes(32)).decode()


def signing_jwk(kid: str) -> str:
    """A new ES256 private key as the JSON text of a JWK."""
    key = ECKey.generate_key("P-256", parameters={"kid": kid}, private=True)
    return json.dumps(key.as_dict(private=True), separators=(",", ":"), sort_keys=True)


def signing_kid(stack: str, created: dt.date) -> str:
    return f"{stack}-sign-{created:%Y-%m}"


def stack_document(
    stack: str, created: dt.date, endpoints: list[str] | None = None, kid: str | None = None
) -> dict[str, Any]:
    """``credentials/<stack>/_stack.yaml``: one active signing key, a master key, and the salt of
    install hashes in adoption metrics (sops encrypts it: its name is ``secret``)."""
    kid = kid or signing_kid(stack, created)
    doc: dict[str, Any] = {"stack": stack}
    if endpoints:
        doc["endpoints"] = endpoints
    doc["signing_keys"] = [
        {
            "kid": kid,
            "state": "active",
            "created": created.isoformat(),
            "private_jwk": signing_jwk(kid),
        }
    ]
    doc["encryption_master_key"] = master_key()
    doc["adoption"] = {"secret": app_auth_secret()}
    return doc


def client_document(
    client: str,
    platform: str,
    delivery: str,
    credentials: list[dict[str, Any]],
    *,
    app_id: str = "1874221",
    cluster: str = "eu",
    app_auth_kid: str | None = None,
    created: dt.date | None = None,
    allowed_origins: list[str] | None = None,
) -> dict[str, Any]:
    """``credentials/<stack>/<client>.yaml``; a served client gets a fresh ``app_auth`` key, and
    a served web client the web page origins it allows (CORS) when given."""
    doc: dict[str, Any] = {
        "client": client,
        "platform": platform,
        "delivery": delivery,
        "pusher": {"app_id": app_id, "cluster": cluster},
        "credentials": credentials,
    }
    if delivery == "served":
        entry: dict[str, Any] = {
            "kid": app_auth_kid or f"{client}-build-a",
            "state": "active",
            "secret": app_auth_secret(),
        }
        if created is not None:
            entry["created"] = created.isoformat()
        doc["app_auth"] = [entry]
    if allowed_origins:
        doc["allowed_origins"] = allowed_origins
    return doc
