"""The lifecycle commands as a test drives them: a fresh key pair, rotate and revoke in dev."""

from __future__ import annotations

import subprocess

from keyops.store import sample
from support.repo import KeyRepo


def pair() -> tuple[str, str]:
    return sample.pusher_hex(), sample.pusher_hex()


def rotate(keyrepo: KeyRepo, *extra: str, key: str, secret: str, client: str = "ios"):
    return keyrepo.run(
        "rotate",
        "--stack",
        "dev",
        "--client",
        client,
        "--now",
        "2026-11-27",
        *extra,
        input=f"{key}\n{secret}\n",
    )


def revoke(
    keyrepo: KeyRepo, client: str, cred_id: str, reason: str, incident: str, *extra: str
) -> subprocess.CompletedProcess[str]:
    return keyrepo.run(
        "revoke", "--stack", "dev", "--client", client, "--id", cred_id, "--reason", reason,
        "--incident", incident, "--now", "2026-11-27", *extra,
    )  # fmt: skip
