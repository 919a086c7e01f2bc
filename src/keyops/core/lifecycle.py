"""Lifecycle moves as pure functions: old document in, new document out.

Each function takes a decrypted client document (the plain ``dict`` of
``credentials/<stack>/<client>.yaml``) and returns a *new* document with only the intended fields
changed. Nothing here reads files, talks to sops or decides whether a move is *allowed*: that is
the policy engine's job (:mod:`keyops.policy`). The functions only refuse what they cannot
express at all, such as an id that does not exist or an ambiguous "the pending credential".

Field order inside a credential follows docs/file-format.md so that edited files read the same
as hand-written ones: id, state, key, secret, created, activated, retiring_since, retired,
revoked, reason, incident, min_app_version, rollout_percent.
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

from keyops.core import patterns
from keyops.core.errors import LifecycleError, UsageError

Document = dict[str, Any]

#: Canonical order of credential fields; fields not listed keep their place at the end.
CREDENTIAL_FIELDS = (
    "id",
    "state",
    "key",
    "secret",
    "created",
    "activated",
    "retiring_since",
    "retired",
    "revoked",
    "reason",
    "incident",
    "min_app_version",
    "rollout_percent",
    "note",
)
APP_AUTH_FIELDS = ("kid", "state", "secret", "created", "retired")

HEX20 = patterns.PUSHER_HEX
ID_RE = patterns.CREDENTIAL_ID


def _ordered(item: dict[str, Any], order: tuple[str, ...]) -> dict[str, Any]:
    known = [k for k in order if k in item]
    rest = [k for k in item if k not in order]
    return {k: item[k] for k in (*known, *rest)}


def _credentials(doc: Document) -> list[dict[str, Any]]:
    creds = doc.get("credentials")
    if not isinstance(creds, list):
        raise LifecycleError("the file has no credentials list", "Run keyops validate.")
    return creds


def _find(doc: Document, cred_id: str, where: str) -> dict[str, Any]:
    for item in _credentials(doc):
        if isinstance(item, dict) and item.get("id") == cred_id:
            return item
    known = ", ".join(str(c.get("id")) for c in _credentials(doc) if isinstance(c, dict))
    raise LifecycleError(f"{where} has no credential {cred_id!r}", f"Known ids: {known or 'none'}.")


def lookup(doc: Document, cred_id: str) -> dict[str, Any]:
    """The credential ``cred_id`` as it is now, or an empty mapping when there is none."""
    for item in _credentials(doc):
        if isinstance(item, dict) and item.get("id") == cred_id:
            return item
    return {}


def in_state(doc: Document, state: str) -> list[dict[str, Any]]:
    return [c for c in _credentials(doc) if isinstance(c, dict) and c.get("state") == state]


def check_pusher_hex(value: str, what: str) -> None:
    """Refuse anything but Pusher's format, without ever echoing the value."""
    if not HEX20.fullmatch(value):
        shape = f"{len(value)} characters"
        if value != value.strip():
            shape += " with surrounding whitespace"
        elif value.lower() != value:
            shape += " including upper-case letters"
        raise UsageError(
            f"the {what} is not in Pusher's format: expected 20 lowercase hexadecimal "
            f"characters, got {shape}",
            f"Copy the {what} again from the Pusher dashboard (App Keys).",
        )


def default_id(client: str, today: dt.date, taken: set[str]) -> str:
    """``<client>-<yyyy-mm>``, or with ``-2``, ``-3``… when that id is taken in the stack."""
    base = f"{client}-{today:%Y-%m}"
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


def rotate(
    doc: Document,
    *,
    cred_id: str,
    key: str,
    secret: str,
    today: dt.date,
    rollout_percent: int | None = None,
    min_app_version: str | None = None,
) -> Document:
    """Add a new ``pending`` credential at the top (the list is newest first)."""
    new = copy.deepcopy(doc)
    item: dict[str, Any] = {
        "id": cred_id,
        "state": "pending",
        "key": key,
        "secret": secret,
        "created": today.isoformat(),
    }
    if min_app_version is not None:
        item["min_app_version"] = min_app_version
    if rollout_percent is not None:
        item["rollout_percent"] = rollout_percent
    _credentials(new).insert(0, item)
    return new


def pick_pending(doc: Document, cred_id: str | None) -> str:
    """The pending credential ``promote`` means: the one named, or the only one."""
    if cred_id is not None:
        return cred_id
    pending = in_state(doc, "pending")
    if len(pending) == 1:
        return str(pending[0]["id"])
    if not pending:
        raise LifecycleError(
            "there is no pending credential to promote",
            "Add one first with keyops rotate, or name the credential with --id.",
        )
    ids = ", ".join(str(p["id"]) for p in pending)
    raise LifecycleError(f"several credentials are pending ({ids})", "Name one with --id.")


def promote(doc: Document, cred_id: str, today: dt.date) -> tuple[Document, list[str]]:
    """``cred_id`` becomes active; every previously active credential becomes retiring.

    Returns the new document and the ids moved to retiring.
    """
    new = copy.deepcopy(doc)
    target = _find(new, cred_id, "the file")
    demoted: list[str] = []
    for item in in_state(new, "active"):
        if item is target:
            continue
        item["state"] = "retiring"
        item["retiring_since"] = today.isoformat()
        item.update(_ordered(item, CREDENTIAL_FIELDS))
        demoted.append(str(item["id"]))
    target["state"] = "active"
    target["activated"] = today.isoformat()
    # A rollout share means nothing once the credential is served to everyone.
    target.pop("rollout_percent", None)
    _reorder(new, target)
    for ident in demoted:
        _reorder(new, _find(new, ident, "the file"))
    return new, demoted


def _reorder(doc: Document, item: dict[str, Any]) -> None:
    creds = _credentials(doc)
    index = next(i for i, c in enumerate(creds) if c is item)
    creds[index] = _ordered(item, CREDENTIAL_FIELDS)


def retire(doc: Document, cred_id: str, today: dt.date) -> Document:
    new = copy.deepcopy(doc)
    target = _find(new, cred_id, "the file")
    target["state"] = "retired"
    target["retired"] = today.isoformat()
    _reorder(new, target)
    return new


def revoke(doc: Document, cred_id: str, today: dt.date, reason: str, incident: str) -> Document:
    new = copy.deepcopy(doc)
    target = _find(new, cred_id, "the file")
    target["state"] = "revoked"
    target["revoked"] = today.isoformat()
    target["reason"] = reason
    target["incident"] = incident
    target.pop("rollout_percent", None)
    _reorder(new, target)
    return new


def rollout(doc: Document, cred_id: str, percent: int) -> Document:
    new = copy.deepcopy(doc)
    target = _find(new, cred_id, "the file")
    target["rollout_percent"] = percent
    _reorder(new, target)
    return new


# -- app_auth: the HMAC secrets compiled into served app builds --------------------------------


def _app_auth(doc: Document) -> list[dict[str, Any]]:
    if doc.get("delivery") != "served":
        raise LifecycleError(
            f"client {doc.get('client')!r} is delivered {doc.get('delivery')!r}; app_auth "
            "secrets exist only for served clients",
            "Use app-auth on a client with delivery: served.",
        )
    auth = doc.setdefault("app_auth", [])
    if not isinstance(auth, list):
        raise LifecycleError("app_auth is not a list", "Run keyops validate.")
    return auth


def default_kid(client: str, today: dt.date, taken: set[str]) -> str:
    """``<client>-build-<yyyy><letter>``: the next free letter of the year."""
    for letter in "abcdefghijklmnopqrstuvwxyz":
        kid = f"{client}-build-{today:%Y}{letter}"
        if kid not in taken:
            return kid
    raise LifecycleError(f"no free app_auth kid left for {today:%Y}", "Name one with --kid.")


def app_auth_rotate(doc: Document, kid: str, secret: str, today: dt.date) -> Document:
    """Add a new active app_auth secret at the top.

    Older active entries stay active: app builds already in users' hands still sign with them.
    Retire them with ``app_auth_retire`` once those builds have faded out.
    """
    new = copy.deepcopy(doc)
    auth = _app_auth(new)
    if any(isinstance(a, dict) and a.get("kid") == kid for a in auth):
        raise LifecycleError(f"app_auth kid {kid!r} already exists", "Choose a new --kid.")
    auth.insert(0, {"kid": kid, "state": "active", "secret": secret, "created": today.isoformat()})
    return new


def app_auth_retire(doc: Document, kid: str, today: dt.date) -> Document:
    new = copy.deepcopy(doc)
    auth = _app_auth(new)
    for index, item in enumerate(auth):
        if isinstance(item, dict) and item.get("kid") == kid:
            item["state"] = "retired"
            item["retired"] = today.isoformat()
            auth[index] = _ordered(item, APP_AUTH_FIELDS)
            return new
    known = ", ".join(str(a.get("kid")) for a in auth if isinstance(a, dict))
    raise LifecycleError(f"the file has no app_auth kid {kid!r}", f"Known kids: {known or 'none'}.")


def record_release(doc: Document, app_version: str, cred_id: str, today: dt.date) -> Document:
    """Record that the bundled release ``app_version`` carries credential ``cred_id``.

    Unchanged when the same record exists; a release that already carries another credential
    cannot be re-recorded (a shipped binary's key does not change).
    """
    _find(doc, cred_id, f"client {doc.get('client')!r}")
    releases = doc.get("releases") or []
    if not isinstance(releases, list):
        raise LifecycleError("the file's releases is not a list", "Run keyops validate.")
    for item in releases:
        if isinstance(item, dict) and item.get("app_version") == app_version:
            if item.get("credential_id") == cred_id:
                return doc
            raise LifecycleError(
                f"release {app_version} is already recorded with {item.get('credential_id')}",
                "A shipped release's key does not change: record the new build under a new "
                "app version.",
            )
    new = copy.deepcopy(doc)
    entry = {"app_version": app_version, "credential_id": cred_id, "recorded": today.isoformat()}
    new["releases"] = [*releases, entry]
    return new
