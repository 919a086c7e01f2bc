"""Making the signed bundle that ``keyops serve`` and the Lambda endpoint read.

``build_bundle`` compiles a validated, decrypted stack into a bundle (its format is defined by
``keyops.protocol.bundle``, the read side); ``write_bundle`` puts it in a directory, atomically,
and reads it back.

``bundle_version`` never goes backwards for a stack: it is the larger of

- the number of git commits touching ``credentials/<stack>/`` (plus one when the working tree
  has uncommitted changes there), so builds of later commits on a fresh CI runner rank higher;
- one more than the version of the bundle already in the output directory (the recorded
  counter), so rebuilding in place always moves forward.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from joserfc import jws

from keyops.build import signing, stacks
from keyops.core import b64
from keyops.core.atomic import PRIVATE, PUBLIC, publish_dir, stage_dir, write_atomic
from keyops.core.dates import utcnow
from keyops.core.errors import BundleError, BundleExpired, InputError, RepositoryError
from keyops.protocol.bundle import (
    BUNDLE_FILE,
    BUNDLE_TYP,
    DEFAULT_TTL_DAYS,
    FORMAT,
    JWKS_FILE,
    REFRESH_AFTER,
    VIEW_KEYS,
    Bundle,
    ServedClient,
    ServedCredential,
)
from keyops.protocol.client_view import client_view
from keyops.store import git
from keyops.store.sops import Sops
from keyops.store.sources import CREDENTIALS_DIR


def build_bundle(
    root: Path,
    stack: str,
    *,
    now: dt.datetime | None = None,
    ttl_days: int = DEFAULT_TTL_DAYS,
    sops: Sops | None = None,
    floor: int = 0,
) -> Bundle:
    """Compile the validated, decrypted stack into a signed bundle.

    ``floor`` is the version of a previous bundle this one must exceed (the recorded counter).
    Raises :class:`~keyops.core.errors.Refused` listing the findings when validation or the
    history-free policy rules report errors.
    """
    if ttl_days < 1:
        raise InputError(f"--ttl-days {ttl_days} is too short", "Use at least 1 day.")
    moment = now or utcnow()
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    refuse_expired(moment, ttl_days)
    model = stacks.load_stack(
        root, stack, purpose="build the bundle", policy_gate=True, now=moment, sops=sops
    )
    if model.stack_file is None:
        raise RepositoryError(f"stack {stack!r} has no stack file", "Run keyops validate.")
    key = signing.active_key(model.stack_file)
    kid = str(key.kid)
    jwks_doc = signing.public_jwks(model.stack_file)
    iat = int(moment.timestamp())
    exp = iat + ttl_days * 86400
    version = max(git_version(root, f"{CREDENTIALS_DIR}/{stack}"), floor + 1)

    clients: dict[str, ServedClient] = {}
    for name, client in sorted(model.clients.items()):
        if client.delivery != "served":
            continue
        served = []
        for cred in client.credentials:
            servable = cred.state == "active" or (
                cred.state == "pending" and cred.rollout_percent is not None
            )
            if not servable:
                continue
            if cred.key is None:
                raise RepositoryError(f"{client.path}: {cred.id} is not decrypted", "Check sops.")
            # What the app may see comes from the one definition the no-secret-to-clients
            # rule checks; the bundle only adds its own dates and version.
            view = client_view(client, cred)
            payload = {name: view[name] for name in VIEW_KEYS}
            payload.update(bundle_version=version, iat=iat, exp=exp, refresh_after=REFRESH_AFTER)
            token = jws.serialize_compact(
                {"alg": "ES256", "kid": kid}, _canonical(payload), key, algorithms=["ES256"]
            )
            served.append(
                ServedCredential(
                    cred.id,
                    cred.state,
                    token,
                    view.get("min_app_version"),
                    view.get("rollout_percent"),
                )
            )
        auth_keys = {}
        for entry in client.app_auth:
            if entry.state == "active" and entry.secret is not None:
                auth_keys[entry.kid] = b64.decode(entry.secret)
        clients[name] = ServedClient(
            client=name,
            auth_keys=auth_keys,
            credentials=tuple(served),
            credential_ids=tuple(c.id for c in client.credentials),
            allowed_origins=client.allowed_origins,
        )
    doc = {
        "format": FORMAT,
        "stack": stack,
        "bundle_version": version,
        "iat": iat,
        "exp": exp,
        "refresh_after": REFRESH_AFTER,
        "jwks": jwks_doc,
        "clients": {name: c.as_json() for name, c in clients.items()},
    }
    if model.stack_file.adoption_secret is not None:
        # The endpoint hashes install ids under this salt for adoption metrics; optional, so
        # bundles of stacks without one (and readers that predate it) keep working.
        doc["adoption"] = {"install_salt": model.stack_file.adoption_secret}
    raw = jws.serialize_compact(
        {"alg": "ES256", "kid": kid, "typ": BUNDLE_TYP}, _canonical(doc), key, algorithms=["ES256"]
    ).encode()
    salt = model.stack_file.adoption_secret
    return Bundle(
        stack, version, iat, exp, kid, clients, jwks_doc, raw, b64.decode(salt) if salt else None
    )


def refuse_expired(moment: dt.datetime, ttl_days: int) -> None:
    """Refuse, before any work, a bundle that would be expired when written (an old --now).

    An endpoint refuses an expired bundle, so writing one would only move the failure to the
    deploy, or keep a stale bundle serving.
    """
    expires = moment + dt.timedelta(days=ttl_days)
    real = utcnow()
    if expires <= real:
        raise BundleExpired(
            f"refusing to build a bundle that is already expired: as of "
            f"{moment.isoformat(timespec='seconds')} with a {ttl_days}-day lifetime it expires at "
            f"{expires.isoformat(timespec='seconds')}, before the real clock "
            f"({real.isoformat(timespec='seconds')})",
            "Build without --now (or with a later one), or with a longer --ttl-days.",
        )


def previous_version(out_dir: Path) -> int:
    """The version of the bundle already in ``out_dir`` (0 when there is none).

    A ``bundle.jws`` there that is not a readable, valid bundle is refused rather than ignored:
    building over it would restart the version count that apps rely on never going back.
    """
    file = Path(out_dir) / BUNDLE_FILE
    if not file.exists() and not file.is_symlink():
        return 0
    try:
        return Bundle.load(file, allow_expired=True).bundle_version
    except BundleError as exc:
        raise BundleError(
            f"the output directory {out_dir} holds a previous bundle that cannot be read "
            f"({exc.what})",
            f"Remove {file} to start the version count again, or choose another --out.",
        ) from None


def _canonical(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":"), sort_keys=False).encode()


def git_version(root: Path, pathspec: str) -> int:
    """Commits touching ``pathspec`` (+1 for uncommitted changes there); 0 outside git."""
    count = git.commit_count(root, pathspec)
    return count + (1 if count and git.uncommitted(root, pathspec) else 0)


def write_bundle(bundle: Bundle, out_dir: Path) -> Path:
    """Write ``bundle`` into ``out_dir`` atomically, then read it back and verify it.

    Into an existing directory, ``jwks.json`` is replaced first and ``bundle.jws`` last: the
    bundle file is the whole bundle, the JWKS only a copy. A new directory is staged under a
    random name beside it and renamed into place. Returns the ``bundle.jws`` path.
    """
    out_dir = Path(out_dir)
    if out_dir.is_symlink() or (out_dir.exists() and not out_dir.is_dir()):
        raise InputError(f"{out_dir} exists and is not a directory", "Choose another --out.")
    jwks_bytes = (json.dumps(bundle.jwks_doc, indent=2, sort_keys=True) + "\n").encode()
    files = ((JWKS_FILE, jwks_bytes, PUBLIC), (BUNDLE_FILE, bundle.raw, PRIVATE))
    if out_dir.is_dir():
        for name, data, mode in files:
            write_atomic(out_dir / name, data, mode=mode)
    else:
        staging = stage_dir(out_dir)
        try:
            for name, data, mode in files:
                write_atomic(staging / name, data, mode=mode)
            publish_dir(staging, out_dir)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    written = Bundle.load(out_dir, now=bundle.iat, jwks=bundle.jwks_doc)
    if written.raw != bundle.raw:
        raise BundleError(
            f"the bundle read back from {out_dir} differs from the one written",
            "Check the disk; nothing else should write to the output directory.",
        )
    return out_dir / BUNDLE_FILE
