"""Which signed payload an install gets, and semver precedence (docs/protocol.md)."""

from __future__ import annotations

import hashlib

from keyops.protocol.bundle import SEMVER_RE, ServedClient, ServedCredential

__all__ = ["SEMVER_RE", "allowed", "bucket", "select", "version_key"]

VersionKey = tuple[int, int, int, int, tuple[tuple[int, int, str], ...]]


def bucket(client: str, credential_id: str, install_id: str) -> int:
    """The install's stable 0..99 bucket for one credential: the contract formula, exactly."""
    digest = hashlib.sha256(f"{client}:{credential_id}:{install_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100


def version_key(version: str) -> VersionKey:
    """A sort key with semver 2.0 precedence (build metadata ignored).

    A pre-release sorts before its release; pre-release identifiers compare numerically when
    numeric, lexically otherwise, numeric before alphanumeric, shorter first on a tie.
    """
    match = SEMVER_RE.fullmatch(version)
    if match is None:
        raise ValueError(f"not a semantic version: {version!r}")
    major, minor, patch, pre = match.groups()
    idents = (
        tuple(
            (0, int(part), "") if part.isdigit() else (1, 0, part)
            for part in (pre or "").split(".")
        )
        if pre
        else ()
    )
    return (int(major), int(minor), int(patch), 0 if pre else 1, idents)


def allowed(credential: ServedCredential, app_version: VersionKey) -> bool:
    if credential.min_app_version is None:
        return True
    return version_key(credential.min_app_version) <= app_version


def select(client: ServedClient, install_id: str, app_version: str) -> ServedCredential | None:
    """The credential to serve, or None (answer 426).

    Candidates are the active credential and pending ones with a rollout share, each filtered by
    ``min_app_version``; a pending one wins when the install's bucket is below its share.
    """
    have = version_key(app_version)
    candidates = [c for c in client.credentials if allowed(c, have)]
    for cred in candidates:
        if cred.state == "pending" and cred.rollout_percent is not None:
            if bucket(client.client, cred.id, install_id) < cred.rollout_percent:
                return cred
    return next((c for c in candidates if c.state == "active"), None)
