"""``--now`` cannot record a future date by accident; ``build`` never writes an expired bundle."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from keyops.cli.main import build_parser
from support.lifecycle import pair
from support.repo import KeyRepo

#: Commands that write a date into a file or a bundle: each takes --allow-future.
RECORDING = {"rotate", "promote", "retire", "revoke", "rollout", "app-auth", "build", "release"}


def _today() -> str:
    return dt.datetime.now(dt.UTC).date().isoformat()


def test_exactly_the_recording_commands_take_allow_future() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    having = {
        name
        for name, child in sub.choices.items()  # type: ignore[attr-defined]
        if any("--allow-future" in a.option_strings for a in child._actions)
    }
    assert having == RECORDING


@pytest.mark.parametrize(
    "line",
    [
        ["rotate", "--stack", "dev", "--client", "web"],
        ["promote", "--stack", "dev", "--client", "ios"],
        ["build", "--stack", "dev", "--out", "bundle"],
    ],
)
def test_a_date_far_ahead_of_the_real_clock_is_refused(keyrepo: KeyRepo, line: list[str]) -> None:
    before = keyrepo.git("status", "--porcelain")
    proc = keyrepo.run(*line, "--now", "2099-01-01", input="\n".join(pair()) + "\n")
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == (
        f"error: --now 2099-01-01 is more than a day after the real clock ({_today()}), so the "
        "date this command records would lie in the future. Check the date, or pass "
        "--allow-future if you mean it.\n"
    )
    assert keyrepo.git("status", "--porcelain") == before


def test_allow_future_records_the_date_given(keyrepo: KeyRepo) -> None:
    key, secret = pair()
    proc = keyrepo.run(
        "rotate", "--stack", "dev", "--client", "web", "--now", "2099-01-01", "--allow-future",
        input=f"{key}\n{secret}\n",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    created = keyrepo.decrypt("credentials/dev/web.yaml")["credentials"][0]
    assert (created["id"], created["created"]) == ("web-2099-01", "2099-01-01")


def test_tomorrow_is_within_the_slack(keyrepo: KeyRepo) -> None:
    # A day of slack covers time zones: a user east of UTC may already live in tomorrow.
    tomorrow = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=23)).date().isoformat()
    proc = keyrepo.run("rollout", "--stack", "dev", "--client", "ios", "--id", "ios-2026-11",
                       "--percent", "5", "--now", tomorrow)  # fmt: skip
    # Refused by the policy (ios-2026-11 is active), not by the date.
    assert proc.returncode == 1, proc.stderr
    assert "--now" not in proc.stderr


def test_build_refuses_a_bundle_that_is_already_expired(keyrepo: KeyRepo, tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    proc = keyrepo.run(
        "build", "--stack", "dev", "--out", str(out), "--now", "2026-01-01", "--ttl-days", "30"
    )
    assert (proc.returncode, proc.stdout) == (2, "")
    stderr = re.sub(r"real clock \([^)]+\)", "real clock (NOW)", proc.stderr)
    assert stderr == (
        "error: refusing to build a bundle that is already expired: as of "
        "2026-01-01T00:00:00+00:00 with a 30-day lifetime it expires at "
        "2026-01-31T00:00:00+00:00, before the real clock (NOW). Build without --now (or with a "
        "later one), or with a longer --ttl-days.\n"
    )
    assert not out.exists()
