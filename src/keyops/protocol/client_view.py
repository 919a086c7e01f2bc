"""What a served or bundled client receives for one credential: the single source of truth.

The bundle builder signs exactly this (plus bundle_version, iat, exp and refresh_after), and
``keyops export`` compiles it into app builds. The policy rule ``no-secret-to-clients`` checks
it. It is built by listing the fields a client may see, never by removing the ones it may not,
so a new secret field can never leak by default.
"""

from __future__ import annotations

from typing import Any

from keyops.core.model import ClientFile, Credential


def client_view(client: ClientFile, cred: Credential) -> dict[str, Any]:
    """The payload fields for ``cred`` of ``client``: ids, key, cluster and rollout rules."""
    view: dict[str, Any] = {
        "stack": client.stack,
        "client": client.client,
        "credential_id": cred.id,
        "key": cred.key,
        "cluster": client.cluster,
    }
    # Selection inputs (docs/protocol.md); the endpoint uses them, apps never see a secret.
    if cred.min_app_version is not None:
        view["min_app_version"] = cred.min_app_version
    if cred.state == "pending" and cred.rollout_percent is not None:
        view["rollout_percent"] = cred.rollout_percent
    return view
