"""`keyops status`: the per-stack table from cleartext metadata, no key needed."""

from __future__ import annotations

import json
from typing import Any

from support.repo import KeyRepo
from support.validate import rewrite, run

TABLE = (
    "stack dev\n"
    "  CLIENT   DELIVERY      CREDENTIAL       STATE     AGE   SERVED   MAX-AGE IN  NEXT\n"
    "  android  served        android-2026-03  active    263d  100%     102d        -\n"
    "  ios      served        ios-2026-11      active    26d   100%     339d        -\n"
    "  ios      served        ios-2026-05      retiring  209d  no       156d        "
    "retire from 2026-12-03\n"
    "  server   secret-store  server-2026-01   active    319d  keyring  46d         "
    "rotate within 46 day(s)\n"
    "  web      served        web-2026-06      active    165d  100%     200d        -\n"
)


def test_table_for_the_sample_without_a_key(keyrepo: KeyRepo) -> None:
    proc = run(keyrepo, "status", "--now", "2026-11-27", key=False)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, TABLE, "")


def test_now_moves_ages_and_next_steps(keyrepo: KeyRepo) -> None:
    proc = run(keyrepo, "status", "--now", "2027-01-20", "--format", "json", key=False)
    assert proc.returncode == 0
    payload = json.loads(proc.stdout)
    assert payload["as_of"] == "2027-01-20"
    rows = {row["credential"]: row for row in payload["rows"]}
    assert rows["ios-2026-05"]["next_action"] == "retire now, once adoption is at most 1%"
    assert rows["server-2026-01"] == {
        "stack": "dev",
        "client": "server",
        "delivery": "secret-store",
        "credential": "server-2026-01",
        "state": "active",
        "age_days": 373,
        "served": "keyring",
        "days_to_max_age": -8,
        "next_action": "rotate now: 8 day(s) past the maximum age",
        "verify": None,
    }


def test_json_output(keyrepo: KeyRepo) -> None:
    proc = run(keyrepo, "status", "--now", "2026-11-27", "--format", "json", key=False)
    payload = json.loads(proc.stdout)
    assert list(payload) == ["as_of", "rows", "unreadable"]
    assert payload["unreadable"] == []
    assert [(r["client"], r["credential"], r["served"]) for r in payload["rows"]] == [
        ("android", "android-2026-03", "100%"),
        ("ios", "ios-2026-11", "100%"),
        ("ios", "ios-2026-05", "no"),
        ("server", "server-2026-01", "keyring"),
        ("web", "web-2026-06", "100%"),
    ]


def test_pending_rollout_share(keyrepo: KeyRepo) -> None:
    def add_pending(doc: dict[str, Any]) -> None:
        pending = dict(doc["credentials"][0])
        pending.update(id="web-2026-11", state="pending", created="2026-11-20", rollout_percent=10)
        pending.pop("activated")
        doc["credentials"].insert(0, pending)

    rewrite(keyrepo, "credentials/dev/web.yaml", add_pending)
    proc = run(keyrepo, "status", "--now", "2026-11-27", "--stack", "dev", key=False)
    assert proc.returncode == 0
    web = [line for line in proc.stdout.splitlines() if line.startswith("  web ")]
    assert web == [
        "  web      served        web-2026-11      pending   7d    10%      358d        "
        "promote when its rollout is healthy",
        "  web      served        web-2026-06      active    165d  90%      200d        -",
    ]


def test_unknown_stack(keyrepo: KeyRepo) -> None:
    proc = run(keyrepo, "status", "--stack", "prod", key=False)
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == (
        "error: stack 'prod' does not exist (no credentials/prod/ directory). Known stacks: dev.\n"
    )


def test_bad_now(keyrepo: KeyRepo) -> None:
    proc = run(keyrepo, "status", "--now", "yesterday")
    assert (proc.returncode, proc.stderr) == (
        2,
        "error: --now 'yesterday' is neither a date nor an ISO 8601 time. "
        "Use YYYY-MM-DD (e.g. 2026-11-27) or a time such as 2026-11-27T12:00:00Z.\n",
    )


def test_file_failing_validation_is_named(keyrepo: KeyRepo) -> None:
    keyrepo.write_bytes("credentials/dev/web.yaml", b"client: [\n")
    proc = run(keyrepo, "status", "--now", "2026-11-27", key=False)
    assert proc.returncode == 0
    assert "web-2026-06" not in proc.stdout
    assert proc.stderr == (
        "warning: credentials/dev/web.yaml is not shown: it fails validation "
        "(run keyops validate)\n"
    )
