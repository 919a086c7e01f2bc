"""Sample credential data in Pusher's real formats, with fake values.

Used to generate the committed ``dev`` stack (``scripts/make_dev_sample.py``), by the tests to
build repositories in temporary directories, and by the benchmarks. All values come from the
operating system's CSPRNG; none is a real Pusher credential.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

import yaml

# The shapes of new documents have one home; the sample data reuses them.
from keyops.store.scaffold import (  # noqa: F401  (re-exported for the tests and scripts)
    app_auth_secret,
    client_document,
    master_key,
    signing_jwk,
    stack_document,
)

CREDENTIAL_SCHEMA_HINT = (
    "# yaml-language-server: $schema=../../src/keyops/schemas/credential-file.schema.json\n"
)
STACK_SCHEMA_HINT = (
    "# yaml-language-server: $schema=../../src/keyops/schemas/stack-file.schema.json\n"
)


def pusher_hex() -> str:
    """A key or secret in Pusher's format: 20 lowercase hex characters."""
    return secrets.token_hex(10)


def dump_yaml(document: dict[str, Any], header: str = "") -> bytes:
    """Block-style YAML that keeps key order; date-like strings stay quoted."""
    text = yaml.safe_dump(document, sort_keys=False, default_flow_style=False, allow_unicode=True)
    return (header + text).encode("utf-8")


def credential(
    ident: str,
    state: str,
    created: dt.date,
    *,
    activated: dt.date | None = None,
    retiring_since: dt.date | None = None,
    retired: dt.date | None = None,
    revoked: dt.date | None = None,
    reason: str | None = None,
    incident: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": ident,
        "state": state,
        "key": pusher_hex(),
        "secret": pusher_hex(),
        "created": created.isoformat(),
    }
    for name, value in (
        ("activated", activated),
        ("retiring_since", retiring_since),
        ("retired", retired),
        ("revoked", revoked),
    ):
        if value is not None:
            item[name] = value.isoformat()
    if reason is not None:
        item["reason"] = reason
    if incident is not None:
        item["incident"] = incident
    item.update(extra)
    return item


def dev_stack(today: dt.date) -> dict[str, dict[str, Any]]:
    """The committed demo stack: iOS mid-rotation, the others with one active credential."""
    d = dt.date.fromisoformat
    return {
        "_stack": stack_document(
            "dev", d("2026-11-01"), ["http://127.0.0.1:8787", "http://127.0.0.1:8788"]
        ),
        "ios": client_document(
            "ios",
            "ios",
            "served",
            [
                credential("ios-2026-11", "active", d("2026-11-01"), activated=d("2026-11-03")),
                credential(
                    "ios-2026-05",
                    "retiring",
                    d("2026-05-02"),
                    activated=d("2026-05-04"),
                    retiring_since=d("2026-11-03"),
                ),
            ],
            app_auth_kid="ios-build-2026a",
            created=d("2026-05-02"),
        ),
        "android": client_document(
            "android",
            "android",
            "served",
            [credential("android-2026-03", "active", d("2026-03-09"), activated=d("2026-03-10"))],
            app_auth_kid="android-build-2026a",
            created=d("2026-03-09"),
        ),
        "web": client_document(
            "web",
            "web",
            "served",
            [credential("web-2026-06", "active", d("2026-06-15"), activated=d("2026-06-16"))],
            app_auth_kid="web-build-2026a",
            created=d("2026-06-15"),
            allowed_origins=["http://localhost:*", "https://app.dev.example.com"],
        ),
        "server": client_document(
            "server",
            "server",
            "secret-store",
            [credential("server-2026-01", "active", d("2026-01-12"), activated=d("2026-01-13"))],
        ),
    }


def demo_clients() -> dict[str, dict[str, Any]]:
    """Clients the committed dev stack holds besides :func:`dev_stack`, for the runbooks.

    ``ios-classic`` is an app that compiles its key in (``delivery: bundled``): the rotation of
    a bundled key in docs/rotation.md runs on it. Tests build their repositories from
    :func:`dev_stack` alone, so their expectations do not depend on these.
    """
    d = dt.date.fromisoformat
    return {
        "ios-classic": client_document(
            "ios-classic",
            "ios",
            "bundled",
            [
                credential(
                    "ios-classic-2026-02", "active", d("2026-02-02"), activated=d("2026-02-03")
                )
            ],
        ),
    }
