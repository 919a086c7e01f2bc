"""Each policy rule on in-memory states: one passing and at least one failing scenario each.

States are built with ``keyops.policy.in_memory`` (decrypted documents, no sops) so every rule's
exact id, severity and message can be asserted cheaply; tests/test_check_cli.py runs the same
rules end to end on real git repositories with real sops files.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from keyops.policy import RULES, Context, Review, evaluate, in_memory
from keyops.policy.rules.lifecycle import FIRST_KEY_RULE
from keyops.store import sample
from keyops.store.settings import Settings
from support.repo import PROJECT

TODAY = dt.date(2026, 11, 27)
HEAD_SHA = "c0ffee" * 6 + "abcd"
SETTINGS = Settings(
    min_overlap_days=30,
    max_retire_adoption_percent=1.0,
    tombstone_days=90,
    warn_age_days=330,
    max_age_days=365,
    approvers=("alice-sec", "bob-sec", "security-oncall"),
    test_recipients=("age1testrecipient",),
    test_stacks=("dev",),
)
BASE = {f"credentials/dev/{k}.yaml": v for k, v in sample.dev_stack(TODAY).items()}
IOS, ANDROID, WEB, SERVER, STACK = (
    f"credentials/dev/{n}.yaml" for n in ("ios", "android", "web", "server", "_stack")
)

Docs = dict[str, dict[str, Any]]
Row = tuple[str, str, str | None, str]


def cred(docs: Docs, path: str, index: int) -> dict[str, Any]:
    item: dict[str, Any] = docs[path]["credentials"][index]
    return item


def run(
    edit: Callable[[Docs], None] | None = None,
    *,
    base: Docs | None = None,
    history: bool = True,
    now: dt.date = TODAY,
    only: tuple[str, ...] | None = None,
    **ctx: Any,
) -> list[Row]:
    before = copy.deepcopy(base or BASE)
    after = copy.deepcopy(before)
    if edit:
        edit(after)
    findings = evaluate(
        in_memory(before) if history else None,
        in_memory(after),
        Context(now=now, **ctx),
        SETTINGS,
        only=only,
    )
    return [(f.rule, f.severity.value, f.credential_id, f.message) for f in findings]


def retire_ios(docs: Docs) -> None:
    item = cred(docs, IOS, 1)
    item["state"] = "retired"
    item["retired"] = "2026-12-10"


def approved(login: str = "alice-sec", commit: str = HEAD_SHA) -> tuple[Review, ...]:
    return (Review(login, "APPROVED", commit),)


APPROVED_CTX: dict[str, Any] = {
    "author": "dev-person",
    "approvals": approved(),
    "head_sha": HEAD_SHA,
}


def test_rules_registry_is_the_contract() -> None:
    assert list(RULES) and set(RULES) == {
        "schema", "encrypted", "recipients", "unique-key", "single-active",
        "one-rotation-in-flight", "rollout-range", "transition", "immutable-secret",
        "retire-needs-successor", "min-overlap", "adoption", "revoke-reason", "approval",
        "no-early-removal", "max-age", "no-secret-to-clients", "dev-key-in-real-stack",
        "master-key-change", "cluster-consistent", "release-record", "allowed-origins",
    }  # fmt: skip
    for rule in RULES.values():
        assert rule.rationale.endswith(".") and rule.fix.endswith(".")
    history = {r.id for r in RULES.values() if not r.history_free}
    assert history == {
        "transition", "immutable-secret", "retire-needs-successor", "min-overlap", "adoption",
        "approval", "no-early-removal", "master-key-change",
    }  # fmt: skip


def test_unchanged_sample_has_no_findings() -> None:
    assert run() == []


# -- unique-key -------------------------------------------------------------------------------


def test_unique_key_fails_when_a_secret_is_reused_across_clients() -> None:
    def edit(d: Docs) -> None:
        cred(d, ANDROID, 0)["secret"] = cred(d, IOS, 0)["secret"]

    assert run(edit, only=("unique-key",)) == [
        (
            "unique-key",
            "error",
            "android-2026-03",
            "the secret of android-2026-03 is also the secret of ios-2026-11 "
            "(credentials/dev/ios.yaml); every credential needs its own key and secret",
        )
    ]


def test_unique_key_fails_across_stacks() -> None:
    def edit(d: Docs) -> None:
        prod = copy.deepcopy(d[WEB])
        d["credentials/prod/web.yaml"] = prod
        prod["credentials"][0]["id"] = "web-prod-2026-06"
        prod["credentials"][0]["secret"] = sample.pusher_hex()

    rows = run(edit, only=("unique-key",))
    assert rows == [
        (
            "unique-key",
            "error",
            "web-prod-2026-06",
            "the key of web-prod-2026-06 is also the key of web-2026-06 "
            "(credentials/dev/web.yaml); every credential needs its own key and secret",
        )
    ]


def test_unique_key_passes_with_fresh_values() -> None:
    def edit(d: Docs) -> None:
        cred(d, ANDROID, 0)["secret"] = sample.pusher_hex()

    assert run(edit, only=("unique-key",), history=False) == []


# -- single-active, one-rotation-in-flight, rollout-range -------------------------------------


def test_single_active_fails_with_two_active_and_with_none() -> None:
    def edit(d: Docs) -> None:
        old = cred(d, IOS, 1)
        old["state"] = "active"
        del old["retiring_since"]
        cred(d, SERVER, 0)["state"] = "retiring"
        cred(d, SERVER, 0)["retiring_since"] = "2026-11-20"

    assert run(edit, only=("single-active",), history=False) == [
        (
            "single-active",
            "error",
            None,
            "served client ios must have exactly one active credential, found 2 "
            "(ios-2026-11, ios-2026-05)",
        ),
        (
            "single-active",
            "error",
            None,
            "secret-store client server has no active credential; its servers would have no "
            "key to sign with. Keep at least one credential active",
        ),
    ]


def test_single_active_allows_several_for_secret_store() -> None:
    def edit(d: Docs) -> None:
        extra = sample.credential("server-2026-11", "active", TODAY, activated=TODAY)
        d[SERVER]["credentials"].insert(0, extra)

    assert run(edit, only=("single-active",), history=False) == []


def add_pending(d: Docs, ident: str = "ios-2026-12", rollout: int | None = 10) -> None:
    extra: dict[str, Any] = {}
    if rollout is not None:
        extra["rollout_percent"] = rollout
    d[IOS]["credentials"].insert(0, sample.credential(ident, "pending", TODAY, **extra))


def test_one_rotation_in_flight() -> None:
    def two(d: Docs) -> None:
        add_pending(d, "ios-2026-12")
        add_pending(d, "ios-2026-12b", rollout=None)

    assert run(two, only=("one-rotation-in-flight",)) == [
        (
            "one-rotation-in-flight",
            "error",
            "ios-2026-12",
            "client ios has 2 pending credentials (ios-2026-12b, ios-2026-12); at most one "
            "rotation may be in flight",
        )
    ]
    assert run(add_pending, only=("one-rotation-in-flight",)) == []


def test_rollout_range() -> None:
    def bad(d: Docs) -> None:
        add_pending(d, rollout=0)
        cred(d, ANDROID, 0)["rollout_percent"] = 50

    assert run(bad, only=("rollout-range",)) == [
        (
            "rollout-range",
            "error",
            "android-2026-03",
            "android-2026-03 is active but has rollout_percent 50; only a pending credential "
            "has a rollout share: remove the field",
        ),
        (
            "rollout-range",
            "error",
            "ios-2026-12",
            "ios-2026-12 has rollout_percent 0; it must be a whole number from 1 to 100",
        ),
    ]
    assert run(lambda d: add_pending(d, rollout=100), only=("rollout-range",)) == []


# -- transition, immutable-secret, retire-needs-successor -------------------------------------


def test_transition_refuses_going_back_and_skipping() -> None:
    def edit(d: Docs) -> None:
        back = cred(d, IOS, 1)
        back["state"] = "active"
        del back["retiring_since"]
        skip = cred(d, WEB, 0)
        skip.update(state="retired", retiring_since="2026-11-27", retired="2026-11-27")

    assert run(edit, only=("transition",)) == [
        (
            "transition",
            "error",
            "ios-2026-05",
            "ios-2026-05: retiring → active is not allowed; from retiring a credential may move "
            "to retired or revoked",
        ),
        (
            "transition",
            "error",
            "web-2026-06",
            "web-2026-06: active → retired is not allowed; from active a credential may move to "
            "retiring or revoked",
        ),
    ]


def test_transition_refuses_a_new_credential_that_starts_retired() -> None:
    def edit(d: Docs) -> None:
        d[ANDROID]["credentials"].append(
            sample.credential(
                "android-2025-01",
                "retired",
                dt.date(2025, 1, 1),
                activated=dt.date(2025, 1, 2),
                retiring_since=dt.date(2025, 6, 1),
                retired=dt.date(2025, 7, 1),
            )
        )

    assert run(edit, only=("transition",)) == [
        (
            "transition",
            "error",
            "android-2025-01",
            f"android-2025-01 is new but starts as retired; {FIRST_KEY_RULE}",
        )
    ]


def _new_active(ident: str) -> dict[str, Any]:
    day = dt.date(2026, 11, 27)
    return sample.credential(ident, "active", day, activated=day)


def test_a_new_credential_starts_active_only_as_the_first_or_in_an_emergency() -> None:
    def second_active(d: Docs) -> None:
        d[WEB]["credentials"].insert(0, _new_active("web-2026-11"))
        cred(d, WEB, 1).update(state="retiring", retiring_since="2026-11-27")

    assert run(second_active, only=("transition",)) == [
        (
            "transition",
            "error",
            "web-2026-11",
            f"web-2026-11 is new but starts as active; {FIRST_KEY_RULE}",
        )
    ]

    def new_client(d: Docs) -> None:
        d["credentials/dev/tv.yaml"] = sample.client_document(
            "tv", "android", "served", [_new_active("tv-2026-11")]
        )

    assert run(new_client, only=("transition",)) == []

    def emergency(d: Docs) -> None:
        d[WEB]["credentials"].insert(0, _new_active("web-2026-11"))
        cred(d, WEB, 1).update(
            state="revoked", revoked="2026-11-27", reason="leaked", incident="INC-1"
        )

    assert run(emergency, only=("transition",)) == []


def test_the_first_key_rule_is_the_one_docs_policies_states() -> None:
    text = " ".join((PROJECT / "docs" / "policies.md").read_text().split())
    sentence = FIRST_KEY_RULE[0].upper() + FIRST_KEY_RULE[1:] + "."
    section = text.split("### `transition`", 1)[1].split("###", 1)[0]
    assert sentence in section
    assert f"is new but starts as active; {FIRST_KEY_RULE}" in section


def test_transition_allows_each_step_of_a_rotation() -> None:
    assert run(add_pending, only=("transition",)) == []
    assert run(retire_ios, only=("transition",)) == []


def test_immutable_secret() -> None:
    def edit(d: Docs) -> None:
        cred(d, IOS, 0)["key"] = sample.pusher_hex()

    assert run(edit, only=("immutable-secret",)) == [
        (
            "immutable-secret",
            "error",
            "ios-2026-11",
            "the key of ios-2026-11 changed in place; a rotation is always a new credential id: "
            "restore the old value and add the new one with `keyops rotate`",
        )
    ]
    # Without history nothing can be compared.
    assert run(edit, only=("immutable-secret",), history=False) == []
    assert run(add_pending, only=("immutable-secret",)) == []


def test_retire_needs_successor() -> None:
    def alone(d: Docs) -> None:
        cred(d, WEB, 0).update(state="retiring", retiring_since="2026-11-27")

    assert run(alone, only=("retire-needs-successor",)) == [
        (
            "retire-needs-successor",
            "error",
            "web-2026-06",
            "web-2026-06 leaves active (retiring) but client web has no other active credential; "
            "promote its successor in the same change",
        )
    ]

    def handover(d: Docs) -> None:
        d[WEB]["credentials"].insert(
            0, sample.credential("web-2026-11", "active", TODAY, activated=TODAY)
        )
        alone(d)

    assert run(handover, only=("retire-needs-successor",)) == []


# -- min-overlap, adoption --------------------------------------------------------------------


def test_min_overlap_fails_before_the_overlap_ends() -> None:
    assert run(retire_ios, only=("min-overlap",)) == [
        (
            "min-overlap",
            "error",
            "ios-2026-05",
            "ios-2026-05 has been retiring for 24 day(s) since 2026-11-03; min_overlap_days is "
            "30: retire it on or after 2026-12-03",
        )
    ]
    assert run(retire_ios, only=("min-overlap",), now=dt.date(2026, 12, 3)) == []


def test_adoption_with_evidence_above_and_below_the_threshold() -> None:
    later = dt.date(2026, 12, 10)
    assert run(retire_ios, only=("adoption",), now=later, adoption={"ios-2026-05": 4.5}) == [
        (
            "adoption",
            "error",
            "ios-2026-05",
            "ios-2026-05 is still used by 4.5% of installs; max_retire_adoption_percent is 1%: "
            "keep it retiring until fewer installs use it (evidence: a bare percentage, with no "
            "method, window or source behind it)",
        )
    ]
    # Accepted: the evidence behind the decision is still shown, as a note.
    assert run(retire_ios, only=("adoption",), now=later, adoption={"ios-2026-05": 1.0}) == [
        (
            "adoption",
            "note",
            "ios-2026-05",
            "ios-2026-05 is used by 1% of installs, at or below max_retire_adoption_percent 1% "
            "(evidence: a bare percentage, with no method, window or source behind it)",
        )
    ]


def test_adoption_without_evidence_warns_for_served_and_fails_for_bundled() -> None:
    assert run(retire_ios, only=("adoption",)) == [
        (
            "adoption",
            "warning",
            "ios-2026-05",
            "ios-2026-05 is retired without adoption evidence; pass --adoption FILE showing at "
            "most 1% of installs still use it",
        )
    ]
    base = copy.deepcopy(BASE)
    base[IOS]["delivery"] = "bundled"
    del base[IOS]["app_auth"]
    assert run(retire_ios, base=base, only=("adoption",), adoption={}) == [
        (
            "adoption",
            "error",
            "ios-2026-05",
            "ios-2026-05 is retired without adoption evidence; pass --adoption FILE showing at "
            "most 1% of installs still use it (bundled keys live on in old app releases)",
        )
    ]


# -- revoke-reason ----------------------------------------------------------------------------


def revoke_ios_old(d: Docs, **fields: str) -> None:
    item = cred(d, IOS, 1)
    item["state"] = "revoked"
    item.pop("retiring_since")
    item["revoked"] = "2026-11-27"
    item.update(fields)


def test_revoke_reason() -> None:
    rows = run(lambda d: revoke_ios_old(d, reason="key leaked in a crash log"),
               only=("revoke-reason",))  # fmt: skip
    assert rows == [
        (
            "revoke-reason",
            "error",
            "ios-2026-05",
            "ios-2026-05 is revoked without incident; say why it was revoked and name the incident",
        )
    ]
    both = run(revoke_ios_old, only=("revoke-reason",))
    assert both[0][3].startswith("ios-2026-05 is revoked without reason and incident;")
    ok = run(
        lambda d: revoke_ios_old(d, reason="key leaked in a crash log", incident="SEC-42"),
        only=("revoke-reason", "schema"),
    )
    assert ok == []


# -- approval ---------------------------------------------------------------------------------


def test_approval_is_a_warning_when_no_reviews_are_given() -> None:
    assert run(retire_ios, only=("approval",)) == [
        (
            "approval",
            "warning",
            "ios-2026-05",
            "ios-2026-05: retiring → retired needs an APPROVED review from one of: alice-sec, "
            "bob-sec, security-oncall (not the author)",
        )
    ]


def test_approval_passes_with_an_approver_on_the_head_commit() -> None:
    assert run(retire_ios, only=("approval",), **APPROVED_CTX) == []


@pytest.mark.parametrize(
    ("reviews", "author", "why"),
    [
        ((), "dev-person", "no reviews were given"),
        (approved("alice-sec"), "alice-sec", "alice-sec is the author"),
        (approved("mallory"), "dev-person", "mallory is not a configured approver"),
        (
            approved("bob-sec", "0123456789abcdef"),
            "dev-person",
            "bob-sec approved 0123456789ab, not the head commit",
        ),
        (
            (Review("bob-sec", "CHANGES_REQUESTED", HEAD_SHA),),
            "dev-person",
            "bob-sec's latest review is CHANGES_REQUESTED",
        ),
    ],
)
def test_approval_fails_without_a_qualifying_review(
    reviews: tuple[Review, ...], author: str, why: str
) -> None:
    rows = run(retire_ios, only=("approval",), author=author, approvals=reviews, head_sha=HEAD_SHA)
    assert rows == [
        (
            "approval",
            "error",
            "ios-2026-05",
            "ios-2026-05: retiring → retired needs an APPROVED review on c0ffeec0ffee from one "
            f"of: alice-sec, bob-sec, security-oncall (not the author); {why}",
        )
    ]


def test_approval_covers_removal_revocation_and_master_key() -> None:
    def edit(d: Docs) -> None:
        revoke_ios_old(d, reason="leaked", incident="SEC-1")
        d[ANDROID]["credentials"].insert(
            0, sample.credential("android-2026-11", "active", TODAY, activated=TODAY)
        )
        d[ANDROID]["credentials"].pop()
        d[STACK]["encryption_master_key"] = sample.master_key()

    whats = [row[3].split(" needs ")[0] for row in run(edit, only=("approval",))]
    assert whats == [
        "encryption_master_key change of stack dev",
        "removal of android-2026-03",
        "ios-2026-05: retiring → revoked",
    ]


def test_no_change_needs_no_approval() -> None:
    assert run(add_pending, only=("approval",)) == []


# -- no-early-removal -------------------------------------------------------------------------

REMOVAL_TEXT = (
    "Pusher cannot restore deleted credentials: restore the entry, and delete the credential at "
    "Pusher only after the removal is merged"
)


def with_retired_android(retired: dt.date) -> Docs:
    base = copy.deepcopy(BASE)
    base[ANDROID]["credentials"].append(
        sample.credential(
            "android-2025-01",
            "retired",
            dt.date(2025, 1, 1),
            activated=dt.date(2025, 1, 2),
            retiring_since=retired - dt.timedelta(days=40),
            retired=retired,
        )
    )
    return base


def drop_last_android(d: Docs) -> None:
    d[ANDROID]["credentials"].pop()


def test_no_early_removal_of_a_live_credential() -> None:
    assert run(lambda d: d[IOS]["credentials"].pop(), only=("no-early-removal",)) == [
        (
            "no-early-removal",
            "error",
            "ios-2026-05",
            "ios-2026-05 was removed from the file but it is retiring; only a retired or revoked "
            f"credential may be removed. {REMOVAL_TEXT}",
        )
    ]


def test_no_early_removal_within_the_tombstone_period() -> None:
    base = with_retired_android(dt.date(2026, 10, 1))
    assert run(drop_last_android, base=base, only=("no-early-removal",)) == [
        (
            "no-early-removal",
            "error",
            "android-2025-01",
            "android-2025-01 was removed from the file but it was retired on 2026-10-01, and "
            f"tombstone_days is 90: remove it on or after 2026-12-30. {REMOVAL_TEXT}",
        )
    ]


def test_removal_after_the_tombstone_period_passes() -> None:
    base = with_retired_android(dt.date(2026, 8, 1))
    assert run(drop_last_android, base=base, only=("no-early-removal",)) == []


def test_whole_file_removal_counts_every_credential() -> None:
    rows = run(lambda d: d.pop(WEB), only=("no-early-removal",))
    assert [(r[0], r[2]) for r in rows] == [("no-early-removal", "web-2026-06")]


# -- max-age ----------------------------------------------------------------------------------


def test_max_age_warns_then_fails_for_active() -> None:
    # server-2026-01 was created 2026-01-12.
    assert run(only=("max-age",), now=dt.date(2026, 12, 8)) == [
        (
            "max-age",
            "warning",
            "server-2026-01",
            "server-2026-01 is 330 days old (active); rotate before it is 365 days old "
            "(warn_age_days is 330)",
        )
    ]
    rows = run(only=("max-age",), now=dt.date(2027, 1, 13))
    assert rows[-1] == (
        "max-age",
        "error",
        "server-2026-01",
        "server-2026-01 is 366 days old (active); max_age_days is 365: rotate it now",
    )
    assert run(only=("max-age",)) == []


def test_max_age_only_warns_for_a_retiring_credential() -> None:
    rows = run(only=("max-age",), now=dt.date(2027, 6, 1))
    ios_old = [r for r in rows if r[2] == "ios-2026-05"]
    assert ios_old == [
        (
            "max-age",
            "warning",
            "ios-2026-05",
            "ios-2026-05 is 395 days old (retiring); rotate before it is 365 days old "
            "(warn_age_days is 330)",
        )
    ]


# -- no-secret-to-clients ---------------------------------------------------------------------


def test_no_secret_to_clients_when_a_secret_is_pasted_as_the_key() -> None:
    def edit(d: Docs) -> None:
        cred(d, IOS, 0)["key"] = cred(d, SERVER, 0)["secret"]

    assert run(edit, only=("no-secret-to-clients",), history=False) == [
        (
            "no-secret-to-clients",
            "error",
            "ios-2026-11",
            "what served client ios would receive for ios-2026-11 contains the secret of "
            "server-2026-01 (in 'key'); treat that secret as exposed and rotate it",
        )
    ]


def test_no_secret_to_clients_ignores_secret_store_clients() -> None:
    def edit(d: Docs) -> None:
        # A server's keyring holds secrets by design.
        cred(d, SERVER, 0)["key"] = sample.pusher_hex()

    assert run(edit, only=("no-secret-to-clients",), history=False) == []


def test_client_view_never_holds_a_secret() -> None:
    from keyops.policy import client_view

    head = in_memory(BASE)
    ios = head.stacks["dev"].clients["ios"]
    view = client_view(ios, ios.credentials[0])
    assert view == {
        "stack": "dev",
        "client": "ios",
        "credential_id": "ios-2026-11",
        "key": cred(BASE, IOS, 0)["key"],
        "cluster": "eu",
    }


# -- master-key-change, cluster-consistent ----------------------------------------------------


def test_master_key_change_is_flagged() -> None:
    def edit(d: Docs) -> None:
        d[STACK]["encryption_master_key"] = sample.master_key()

    assert run(edit, only=("master-key-change",)) == [
        (
            "master-key-change",
            "warning",
            None,
            "the encryption_master_key of stack dev changes: messages on private-encrypted "
            "channels in flight during the cut-over will be lost; deploy every server at once, "
            "and this needs an approving review",
        )
    ]
    assert run(add_pending, only=("master-key-change",)) == []


def test_cluster_consistent_refuses_a_changed_cluster() -> None:
    def edit(d: Docs) -> None:
        d[IOS]["pusher"]["cluster"] = "us2"

    assert run(edit, only=("cluster-consistent",)) == [
        (
            "cluster-consistent",
            "error",
            None,
            "app 1874221 is on cluster us2 here but on eu in credentials/dev/android.yaml; an app "
            "has exactly one cluster",
        ),
        (
            "cluster-consistent",
            "error",
            None,
            "cluster of client ios changed from eu to us2; its credentials (ios-2026-11, "
            "ios-2026-05) belong to the app they were created in. Restore it, or create a new "
            "client file for the other app",
        ),
    ]


def test_cluster_consistent_allows_another_app_on_another_cluster() -> None:
    def edit(d: Docs) -> None:
        d[IOS]["pusher"] = {"app_id": "2000001", "cluster": "us2"}

    rows = run(edit, only=("cluster-consistent",), history=False)
    assert rows == []


# -- dev-key-in-real-stack --------------------------------------------------------------------


def test_dev_key_in_real_stack_reads_sops_metadata() -> None:
    from keyops.policy import replace_document
    from keyops.store import yamlload

    head = in_memory(BASE)
    prod = copy.deepcopy(BASE[WEB])
    head = replace_document(head, "credentials/prod/web.yaml", prod)
    meta = b"client: web\nsops:\n  age:\n    - recipient: age1testrecipient\n      enc: x\n"
    head.records["credentials/prod/web.yaml"].doc = yamlload.load(meta)
    rows = evaluate(None, head, Context(now=TODAY), SETTINGS, only=("dev-key-in-real-stack",))
    assert [(f.rule, f.path, f.message) for f in rows] == [
        (
            "dev-key-in-real-stack",
            "credentials/prod/web.yaml",
            "credentials/prod/web.yaml (stack prod) is encrypted to the committed test identity "
            "age:age1testrecipient; its secrets must be treated as public: re-encrypt without it "
            "and rotate them",
        )
    ]
    # The same metadata in the dev stack is expected.
    head.records[WEB].doc = yamlload.load(meta)
    head.records.pop("credentials/prod/web.yaml")
    assert evaluate(None, head, Context(now=TODAY), SETTINGS, only=("dev-key-in-real-stack",)) == []


def test_evaluate_without_base_runs_only_history_free_rules() -> None:
    def edit(d: Docs) -> None:
        cred(d, IOS, 0)["secret"] = sample.pusher_hex()
        retire_ios(d)

    rules = {row[0] for row in run(edit, history=False)}
    assert rules == set()
    assert {row[0] for row in run(edit)} == {
        "immutable-secret",
        "min-overlap",
        "adoption",
        "approval",
    }


def test_unknown_rule_id_in_only_is_a_usage_error() -> None:
    from keyops.core.errors import UsageError

    with pytest.raises(UsageError, match="unknown rule id"):
        run(only=("no-such-rule",))


def test_docs_describe_every_rule_with_an_example_and_a_fix() -> None:
    from pathlib import Path

    docs = (Path(__file__).resolve().parents[1] / "docs" / "policies.md").read_text()
    sections = docs.split("\n### ")[1:]
    described = {s.split("`", 2)[1]: s for s in sections}
    assert set(RULES) <= set(described)
    for rule_id in RULES:
        assert "Example:" in described[rule_id] and "Fix:" in described[rule_id], rule_id


# -- allowed-origins --------------------------------------------------------------------------


def origin_rows(edit: Callable[[Docs], None]) -> list[tuple[str, str, str, str]]:
    after = copy.deepcopy(BASE)
    edit(after)
    found = evaluate(
        None, in_memory(after), Context(now=TODAY), SETTINGS, only=("allowed-origins",)
    )
    return [(f.severity.value, f.path, f.pointer, f.message) for f in found]


def test_allowed_origins_of_the_sample_pass() -> None:
    assert BASE[WEB]["allowed_origins"] == ["http://localhost:*", "https://app.dev.example.com"]
    assert origin_rows(lambda d: None) == []


def test_allowed_origins_refuses_loose_entries_and_says_where() -> None:
    def edit(d: Docs) -> None:
        d[WEB]["allowed_origins"] = [
            "http://localhost:*",
            "*",
            "https://app.example.com/",
            "http://app.example.com",
            "http://localhost:3000",
            "https://app.dev.example.com",
            "https://app.dev.example.com",
        ]

    at = "$.allowed_origins"
    assert origin_rows(edit) == [
        (
            "error", WEB, f"{at}[1]",
            "'*' would let every web page call the endpoint from a browser; list each origin "
            "exactly, e.g. 'https://app.example.com'",
        ),
        (
            "error", WEB, f"{at}[2]",
            "'https://app.example.com/' has a path, which an origin never has: write "
            "'https://app.example.com'",
        ),
        (
            "error", WEB, f"{at}[3]",
            "'http://app.example.com': http:// is allowed only for localhost, 127.0.0.1 and "
            "[::1] (pages on the developer's machine); use https://",
        ),
        (
            "error", WEB, f"{at}[4]",
            "'http://localhost:3000' is already allowed by 'http://localhost:*'; remove it",
        ),
        ("error", WEB, f"{at}[6]", "'https://app.dev.example.com' is listed twice; remove one"),
    ]  # fmt: skip


def test_allowed_origins_keeps_localhost_out_of_stacks_that_are_not_dev() -> None:
    prod_web = "credentials/prod/web.yaml"

    def edit(d: Docs) -> None:
        d[prod_web] = copy.deepcopy(d[WEB])
        d[prod_web]["credentials"][0]["id"] = "web-prod-2026-06"
        d[prod_web]["allowed_origins"] = ["https://app.example.com", "http://localhost:*"]

    assert origin_rows(edit) == [
        (
            "error",
            prod_web,
            "$.allowed_origins[1]",
            "'http://localhost:*': http:// origins are allowed only in a dev stack (test_stacks "
            "in policies/keyops.yaml); a deployed page must use https://",
        )
    ]
