"""The bootstrap document an app build carries: endpoints, request auth, pinned keys.

It is built from a decrypted stack for one served client. ``keyops client-config`` writes it for
app builds and ``keyops smoke`` fetches with it as an app would; docs/client.md describes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from keyops.build import signing
from keyops.core.errors import InputError, KeyopsError, PolicyRefused
from keyops.core.model import AppAuth, ClientFile, Stack
from keyops.store import names
from keyops.store.sources import CREDENTIALS_DIR, STACK_FILE


def active_app_auth(client: ClientFile) -> AppAuth:
    """The app_auth entry new builds get: the newest active one (by created, then file order)."""
    active = [a for a in client.app_auth if a.state == "active"]
    if not active:
        raise PolicyRefused(
            f"client {client.client!r} has no active app_auth entry ({client.path})",
            f"Add one with 'keyops app-auth --stack {client.stack} --client {client.client}'.",
        )
    newest = max(active, key=lambda a: (a.created.toordinal() if a.created else 0, -a.index))
    return newest


def bootstrap(
    stack: Stack,
    client_name: str,
    *,
    bundled_fallback: bool = False,
    endpoints: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The bootstrap document for one served client of a decrypted stack.

    ``endpoints`` replaces the stack file's list (e.g. a staging endpoint, or a local one).
    """
    client = stack.clients.get(client_name)
    if client is None:
        raise names.unknown_client(stack.name, client_name, sorted(stack.clients))
    if client.delivery != "served":
        raise PolicyRefused(
            f"client {client_name!r} is delivered {client.delivery!r}, not served: it has no "
            "endpoint to fetch from",
            "client-config is only for clients with delivery: served "
            "(bundled apps use 'keyops export').",
        )
    stack_file = stack.stack_file
    if stack_file is None:
        raise InputError(
            f"stack {stack.name!r} has no {CREDENTIALS_DIR}/{stack.name}/{STACK_FILE}",
            "Create the stack file with its signing key and endpoints.",
        )
    urls = list(endpoints or stack_file.endpoints)
    if not urls:
        raise PolicyRefused(
            f"stack {stack.name!r} lists no endpoints ({stack_file.path})",
            "Add the endpoint base URLs under 'endpoints:' in the stack file, or pass "
            "--endpoint URL.",
        )
    auth = active_app_auth(client)
    if auth.secret is None:
        raise KeyopsError(f"the app_auth secret {auth.kid!r} is not decrypted", "")
    document: dict[str, Any] = {
        "stack": stack.name,
        "client": client.client,
        "endpoints": urls,
        "request_auth": {"kid": auth.kid, "alg": "HS256", "secret": auth.secret},
        "pinned_keys": signing.public_jwks(stack_file),
    }
    if bundled_fallback:
        active = client.in_state("active")
        if len(active) != 1 or active[0].key is None:
            raise PolicyRefused(
                f"client {client_name!r} has {len(active)} active credentials; a bundled "
                "fallback needs exactly one",
                "Promote a credential first.",
            )
        document["bundled_fallback"] = {
            "credential_id": active[0].id,
            "key": active[0].key,
            "cluster": client.cluster,
        }
    return document
