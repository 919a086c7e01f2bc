"""Property: no change the engine accepts removes a live credential or leaves a served client
without exactly one active key, whatever sequence of lifecycle operations is tried.

States are decrypted documents in memory (``keyops.policy.in_memory``); each operation proposes
a head from the current state, the engine judges (base=current, head=proposal), and only an
accepted proposal becomes the next state. Operations are deliberately allowed to be unsafe.
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keyops.core.findings import Severity
from keyops.policy import Context, evaluate, in_memory
from keyops.store import sample
from keyops.store.settings import Settings

START = dt.date(2026, 11, 27)
IOS = "credentials/dev/ios.yaml"
RULES = Settings(
    min_overlap_days=30,
    max_retire_adoption_percent=1.0,
    tombstone_days=90,
    # Ages are another rule's business; long sequences must not end on a max-age error.
    warn_age_days=5000,
    max_age_days=5000,
    approvers=("alice-sec",),
)
OPS = ("rotate", "promote", "set_state", "remove", "wait", "rekey", "rollout")
STATES = ("pending", "active", "retiring", "retired", "revoked")
#: The dates each state requires (schema), set to the day of the operation.
NEEDED = {
    "active": ("activated",),
    "retiring": ("activated", "retiring_since"),
    "retired": ("activated", "retiring_since", "retired"),
    "revoked": ("revoked",),
}


def initial() -> dict[str, dict[str, Any]]:
    stack = sample.dev_stack(START)
    return {
        "credentials/dev/_stack.yaml": stack["_stack"],
        IOS: stack["ios"],
        "credentials/dev/server.yaml": stack["server"],
    }


def set_state(item: dict[str, Any], state: str, today: dt.date) -> None:
    """Move a credential to ``state`` with the fields that state requires, dropping the rest."""
    item["state"] = state
    if state != "pending":
        item.pop("rollout_percent", None)
    keep = set(NEEDED.get(state, ()))
    if state == "revoked":
        keep |= {"activated", "retiring_since", "reason", "incident"}
        item.setdefault("reason", "key found in a public log")
        item.setdefault("incident", "SEC-1")
    for name in ("activated", "retiring_since", "retired", "revoked", "reason", "incident"):
        if name not in keep:
            item.pop(name, None)
    for name in NEEDED.get(state, ()):
        item.setdefault(name, today.isoformat())


def propose(
    docs: dict[str, dict[str, Any]], op: str, pick: int, amount: int, today: dt.date, serial: int
) -> tuple[dict[str, dict[str, Any]], dt.date]:
    head = copy.deepcopy(docs)
    creds: list[dict[str, Any]] = head[IOS]["credentials"]
    item = creds[pick % len(creds)] if creds else None
    if op == "rotate":
        extra = {"rollout_percent": amount} if amount % 3 else {}
        creds.insert(0, sample.credential(f"ios-gen-{serial}", "pending", today, **extra))
    elif op == "promote" and item is not None:
        for other in creds:
            if other["state"] == "active":
                set_state(other, "retiring", today)
        set_state(item, "active", today)
    elif op == "set_state" and item is not None:
        set_state(item, STATES[amount % len(STATES)], today)
    elif op == "remove" and item is not None:
        creds.remove(item)
    elif op == "wait":
        today += dt.timedelta(days=amount)
    elif op == "rekey" and item is not None:
        item["key"] = sample.pusher_hex()
    elif op == "rollout" and item is not None:
        item["rollout_percent"] = amount
    return head, today


def live_ids(docs: dict[str, dict[str, Any]]) -> set[str]:
    return {c["id"] for c in docs[IOS]["credentials"] if c["state"] in ("pending", "active",
            "retiring")}  # fmt: skip


def judge(
    current: dict[str, dict[str, Any]], proposal: dict[str, dict[str, Any]], today: dt.date
) -> bool:
    adoption = {c["id"]: 0.5 for c in proposal[IOS]["credentials"]}
    findings = evaluate(
        in_memory(current),
        in_memory(proposal),
        Context(now=today, author="dev", adoption=adoption),
        RULES,
    )
    return not any(f.severity is Severity.ERROR for f in findings)


operation = st.tuples(
    st.sampled_from(OPS), st.integers(min_value=0, max_value=7), st.integers(0, 120)
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.lists(operation, min_size=1, max_size=14))
def test_accepted_changes_never_remove_live_keys_or_leave_a_client_without_one(
    ops: list[tuple[str, int, int]],
) -> None:
    docs = initial()
    today = START
    for serial, (op, pick, amount) in enumerate(ops):
        proposal, when = propose(docs, op, pick, amount, today, serial)
        if op == "wait":
            today = when
            continue
        if not judge(docs, proposal, today):
            continue
        remaining = {c["id"] for c in proposal[IOS]["credentials"]}
        assert live_ids(docs) <= remaining, f"{op} removed a live credential"
        actives = [c["id"] for c in proposal[IOS]["credentials"] if c["state"] == "active"]
        assert len(actives) == 1, f"{op} left ios with active credentials {actives}"
        docs = proposal


def test_a_full_rotation_is_accepted_step_by_step() -> None:
    """The property above is not vacuous: the safe path through the lifecycle passes."""
    docs = initial()
    today = START
    steps = [
        ("rotate", 0, 10),  # ios-gen-0 pending at 10%
        ("promote", 0, 0),  # ios-gen-0 active, ios-2026-11 retiring
        ("wait", 0, 31),
        ("set_state", 2, 3),  # ios-2026-11 retiring → retired
        ("set_state", 1, 3),  # ios-2026-05 (retiring since 2026-11-03) → retired
        ("wait", 0, 91),
        ("remove", 2, 0),  # ios-2026-05 removed after its tombstone
    ]
    for serial, (op, pick, amount) in enumerate(steps):
        proposal, today2 = propose(docs, op, pick, amount, today, serial)
        if op == "wait":
            today = today2
            continue
        assert judge(docs, proposal, today), (op, pick)
        docs = proposal
    assert [c["id"] for c in docs[IOS]["credentials"]] == ["ios-gen-0", "ios-2026-11"]
