"""Why a lifecycle command will not make a move, said in the command's terms.

The policy engine would refuse these moves too, but in the words of the file ("active → retired
is not allowed", "must have exactly one active credential"). A user who typed ``keyops retire``
needs to hear that the credential is still active and which command comes first. Each function
here looks at the credential's current state, raises :class:`PolicyRefused` (exit 1, nothing
written) with the reason and the next command, and returns quietly when the move makes sense;
the policy engine still checks everything afterwards.
"""

from __future__ import annotations

from typing import Any

from keyops.cli.proposal import Target
from keyops.core import lifecycle
from keyops.core.errors import LifecycleError, PolicyRefused, UsageError
from keyops.store import names

NOTHING_WRITTEN = "Nothing was written."


def _where(target: Target) -> str:
    return f"--stack {target.stack} --client {target.client}"


def current(target: Target, cred_id: str) -> dict[str, Any]:
    """The credential as it is now; an unknown id suggests the closest known one."""
    found = lifecycle.lookup(target.document, cred_id)
    if found:
        return found
    known = [str(c.get("id")) for c in target.document.get("credentials") or []]
    raise LifecycleError(
        f"client {target.client} of stack {target.stack} has no credential {cred_id!r}",
        names.suggestion(cred_id, known, f"credentials of {target.client}"),
    )


def _ended(item: dict[str, Any], cred_id: str) -> PolicyRefused | None:
    """The refusal for a credential that is out of service for good, if it is."""
    state = item.get("state")
    if state == "retired":
        return PolicyRefused(
            f"{cred_id} is already retired (since {item.get('retired')})",
            "Nothing to do: its entry may leave the file after the tombstone period (keyops "
            f"status shows the date). {NOTHING_WRITTEN}",
        )
    if state == "revoked":
        return PolicyRefused(
            f"{cred_id} was revoked on {item.get('revoked')} ({item.get('incident')}); a revoked "
            "credential stays revoked",
            f"Nothing to do. {NOTHING_WRITTEN}",
        )
    return None


def _pending_id(target: Target) -> str | None:
    pending = lifecycle.in_state(target.document, "pending")
    return str(pending[0]["id"]) if pending else None


def _successor_steps(target: Target) -> str:
    """The commands that put a successor in place: promote the pending one, or rotate first."""
    where = _where(target)
    pending = _pending_id(target)
    if pending is not None:
        return f"promote its successor first (keyops promote {where} --id {pending})"
    return (
        f"it has no successor yet: add one (keyops rotate {where}), then promote it "
        f"(keyops promote {where})"
    )


def retire(target: Target, cred_id: str) -> None:
    item = current(target, cred_id)
    state = item.get("state")
    where = _where(target)
    if state == "active":
        days = target.settings.min_overlap_days
        raise PolicyRefused(
            f"{cred_id} is active; {_successor_steps(target)}",
            f"Promoting the successor starts {cred_id}'s retirement; retire it once it has been "
            f"retiring for {days} days. {NOTHING_WRITTEN}",
        )
    if state == "pending":
        raise PolicyRefused(
            f"{cred_id} is pending: it was never active, so there is nothing to retire",
            f"To drop it, revoke it (keyops revoke {where} --id {cred_id} --reason TEXT "
            f"--incident REF). {NOTHING_WRITTEN}",
        )
    ended = _ended(item, cred_id)
    if ended is not None:
        raise ended


def promote(target: Target, cred_id: str) -> None:
    item = current(target, cred_id)
    state = item.get("state")
    where = _where(target)
    if state == "active":
        raise PolicyRefused(
            f"{cred_id} is already active",
            f"To replace it, add its successor (keyops rotate {where}) and promote that one. "
            + NOTHING_WRITTEN,
        )
    if state in ("retiring", "retired", "revoked"):
        raise PolicyRefused(
            f"{cred_id} is {state}, and a credential never becomes active again",
            f"Add a new credential instead (keyops rotate {where}), then promote it. "
            + NOTHING_WRITTEN,
        )


def rollout(target: Target, cred_id: str, percent: int) -> None:
    if not 1 <= percent <= 100:
        raise UsageError(
            f"--percent {percent} is not a share of installs", "Use a whole number from 1 to 100."
        )
    item = current(target, cred_id)
    state = item.get("state")
    if state == "pending":
        return
    served = "it is already served to every install" if state == "active" else "it is not served"
    raise PolicyRefused(
        f"{cred_id} is {state}: {served}, and only a pending credential has a rollout share",
        f"To roll out a new key, add it with a share (keyops rotate {_where(target)} "
        f"--rollout-percent N). {NOTHING_WRITTEN}",
    )


def revoke(target: Target, cred_id: str, *, promotes: bool) -> None:
    """``promotes``: whether this change promotes the pending credential in its place."""
    item = current(target, cred_id)
    ended = _ended(item, cred_id)
    if ended is not None:
        raise ended
    if item.get("state") != "active":
        return
    others = [c for c in lifecycle.in_state(target.document, "active") if c.get("id") != cred_id]
    if others:
        return
    where = _where(target)
    pending = _pending_id(target)
    if pending is not None and promotes:
        return
    if pending is not None:
        raise PolicyRefused(
            f"{cred_id} is the only active credential of {target.client}; revoking it alone "
            "would leave the client without a key",
            f"Promote {pending} in the same change: rerun with --promote-pending. "
            + NOTHING_WRITTEN,
        )
    raise PolicyRefused(
        f"{cred_id} is the only active credential of {target.client}, and there is no "
        "successor to put in its place",
        f"The emergency path: add the replacement (keyops rotate {where}), then revoke and "
        f"promote in one change (keyops revoke {where} --id {cred_id} --reason TEXT "
        f"--incident REF --promote-pending). {NOTHING_WRITTEN}",
    )
