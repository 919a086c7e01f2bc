"""The auth server's keyring: every live key of a stack mapped to what signs for it.

Channel auth must be signed with the secret of the key the client connected with (Pusher's
rule), and during a rotation clients connect with the pending, active and retiring keys at
once. So the keyring holds all three states, and nothing else: retired and revoked keys are gone.
"""

from __future__ import annotations

from typing import Any

from keyops.core.errors import InputError
from keyops.core.model import LIVE_STATES, Stack

KEYRING_VERSION = 1


def build_keyring(stack: Stack) -> dict[str, Any]:
    """``{"stack", "version", "keys": {key: {secret, app_id, cluster, client, ...}}}``.

    Each key's entry holds ``secret``, ``app_id``, ``cluster``, ``client``, ``credential_id``
    and ``state``.

    ``stack`` must come from a decrypted load: a live credential without its key or secret is
    an error, never a silently shorter keyring.
    """
    keys: dict[str, dict[str, str]] = {}
    for client in sorted(stack.clients.values(), key=lambda c: c.client):
        for cred in client.credentials:
            if cred.state not in LIVE_STATES:
                continue
            if cred.key is None or cred.secret is None:
                raise InputError(
                    f"{client.path}: credential {cred.id} is not decrypted",
                    "Load the stack with decryption (a key for its sops recipients is needed).",
                )
            keys[cred.key] = {
                "secret": cred.secret,
                "app_id": client.app_id,
                "cluster": client.cluster,
                "client": client.client,
                "credential_id": cred.id,
                "state": cred.state,
            }
    return {"stack": stack.name, "version": KEYRING_VERSION, "keys": keys}
