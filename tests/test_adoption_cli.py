"""``keyops adoption`` from endpoints and versions files, ``keyops release``, and the evidence file.

CloudWatch is tested against moto in tests/e2e/test_adoption_cloudwatch.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from keyops.endpoint.installs import InstallCounter, install_hash, render
from keyops.policy.evidence import load_adoption
from support.repo import KeyRepo

NEW, OLD = "ios-2026-11", "ios-2026-05"
NOW = 1_800_000_000.0
SALT = b"z" * 32


def metrics_file(tmp_path: Path, text: str, name: str = "metrics.txt") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def installs_text(old: int, new: int, *, unknown: int = 0, cap: int = 100_000) -> str:
    counter = InstallCounter(window_seconds=86400, cap=cap)
    for n in range(old):
        counter.observe("ios", OLD, install_hash(SALT, f"old-{n:08d}"), NOW)
    for n in range(new):
        counter.observe("ios", NEW, install_hash(SALT, f"new-{n:08d}"), NOW)
    for n in range(unknown):
        counter.observe("ios", "other", install_hash(SALT, f"odd-{n:08d}"), NOW)
    served = (
        f'keyops_served_total{{stack="dev",client="ios",credential="{NEW}",held="{OLD}"}} 999\n'
    )
    return served + "\n".join(render("dev", [counter.snapshot(NOW)], NOW, 86400)) + "\n"


# -- --from URL or saved /metrics ----------------------------------------------------------------


def test_endpoints_with_install_counts_give_installs_not_requests(
    keyrepo: KeyRepo, tmp_path: Path
) -> None:
    source = metrics_file(tmp_path, installs_text(old=3, new=97, unknown=40))
    proc = keyrepo.run("adoption", "--from", source, "--now", "2026-12-01T10:00:00Z")
    assert proc.returncode == 0, proc.stderr
    document = json.loads(proc.stdout)
    assert document["method"] == "endpoint-installs"
    assert document["window"] == {"start": "2026-11-30T10:00:00Z", "end": "2026-12-01T10:00:00Z"}
    old = document["credentials"][OLD]
    assert {k: old[k] for k in ("percent", "count", "total", "unit")} == {
        "percent": 3,
        "count": 3,
        "total": 100,
        "unit": "installs",
    }
    # The 999 requests naming OLD do not count, nor do the installs naming an unknown id.
    assert old["notes"] == ["40 installs named a credential id ios does not have (left out)"]
    assert (
        "  ios-2026-05: 3% = 3 of 100 installs, endpoint-installs (endpoint metrics.txt 3/100)"
        in proc.stderr
    )


def test_endpoints_without_install_counts_still_give_request_shares(
    keyrepo: KeyRepo, tmp_path: Path
) -> None:
    text = "".join(
        f'keyops_served_total{{stack="dev",client="ios",credential="{NEW}",held="{held}"}} {n}\n'
        for held, n in ((OLD, 3), (NEW, 7), ("none", 50), ("other", 9))
    )
    one = metrics_file(tmp_path, text, "a.txt")
    two = metrics_file(tmp_path, text, "b.txt")
    proc = keyrepo.run("adoption", "--from", one, "--from", two)
    assert proc.returncode == 0, proc.stderr
    old = json.loads(proc.stdout)["credentials"][OLD]
    assert (old["percent"], old["count"], old["total"], old["unit"]) == (30, 6, 20, "requests")
    assert old["method"] == "endpoint-requests"
    assert [s["source"] for s in old["sources"]] == ["endpoint a.txt", "endpoint b.txt"]


def test_a_saturated_install_count_is_not_evidence(keyrepo: KeyRepo, tmp_path: Path) -> None:
    source = metrics_file(tmp_path, installs_text(old=5, new=5, cap=4))
    proc = keyrepo.run("adoption", "--from", source)
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == (
        "error: the install count of ios-2026-05 (ios) reached the endpoint's cap: it is a lower "
        "bound, not evidence. Use --from cloudwatch --distinct, or raise the endpoint's cap.\n"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--from", "cloudwatch", "--from", "x"), "--from cloudwatch cannot be combined"),
        (("--from", "versions"), "a CSV file goes with --from versions, and only with it"),
        (("--from", "x", "--distinct"), "--distinct goes with --from cloudwatch"),
        (("--from", "cloudwatch"), "--from cloudwatch needs --stack S (or --for-change REF)"),
        (("--from", "cloudwatch", "--stack", "dev", "--days", "0"), "--days 0 is out of range"),
        (
            ("--from", "versions", "f.csv", "--stack", "dev"),
            "--from versions needs --stack S and --client C",
        ),
    ],
)
def test_usage_errors(keyrepo: KeyRepo, args: tuple[str, ...], message: str) -> None:
    proc = keyrepo.run("adoption", *args)
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"error: {message}")


def test_hostile_metrics_lines_are_ignored(keyrepo: KeyRepo, tmp_path: Path) -> None:
    text = (
        'keyops_served_total{client="ios",credential="x",held="' + "a" * 100_000 + '"} 1e999\n'
        'keyops_installs{stack="dev",client="ios",held="ios-2026-05"} 99999999999999999999999\n'
        "keyops_served_total{{{{ nonsense\n"
        f'keyops_served_total{{stack="dev",client="ios",credential="{NEW}",held="{NEW}"}} 2\n'
    )
    proc = keyrepo.run("adoption", "--from", metrics_file(tmp_path, text))
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr


# -- --from versions: bundled clients --------------------------------------------------------------


def make_bundled(repo: KeyRepo, releases: list[dict[str, str]] | None = None) -> None:
    """The ios client as a bundled app (no app_auth), with release records."""
    doc = repo.decrypt("credentials/dev/ios.yaml")
    doc["delivery"] = "bundled"
    doc.pop("app_auth")
    if releases is not None:
        doc["releases"] = releases
    repo.write_doc("credentials/dev/ios.yaml", doc)


RELEASES = [
    {"app_version": "5.1.0", "credential_id": OLD, "recorded": "2026-05-04"},
    {"app_version": "5.2.0", "credential_id": NEW, "recorded": "2026-11-03"},
]


def versions_csv(tmp_path: Path, rows: str) -> str:
    path = tmp_path / "installs.csv"
    path.write_text(rows)
    return str(path)


def test_a_versions_csv_drives_a_bundled_retirement_through_check(
    keyrepo: KeyRepo, tmp_path: Path
) -> None:
    make_bundled(keyrepo, RELEASES)
    base = keyrepo.commit("ios ships bundled")
    doc = keyrepo.decrypt("credentials/dev/ios.yaml")
    doc["credentials"][1].update(state="retired", retired="2026-12-10")
    keyrepo.write_doc("credentials/dev/ios.yaml", doc)
    keyrepo.commit("retire ios-2026-05")
    check = ("check", "--base", base, "--now", "2026-12-10", "--format", "json")
    # Without evidence a bundled retirement is an error.
    assert keyrepo.run(*check).returncode == 1

    def verdict(rows: str) -> tuple[int, list[tuple[str, str]]]:
        out = tmp_path / "adoption.json"
        made = keyrepo.run(
            "adoption", "--from", "versions", versions_csv(tmp_path, rows), "--stack", "dev",
            "--client", "ios", "--out", str(out),
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
        proc = keyrepo.run(*check, "--adoption", str(out))
        found = json.loads(proc.stdout)["findings"]
        return proc.returncode, [
            (f["severity"], f["message"]) for f in found if f["rule"] == "adoption"
        ]

    code, rows = verdict("app_version,installs,country\n5.2.0,9000,DE\n5.2.0,950,FR\n5.1.0,50,DE\n")
    assert code == 0
    assert rows == [
        (
            "note",
            "ios-2026-05 is used by 0.5% of installs, at or below max_retire_adoption_percent 1% "
            "(evidence: 50 of 10,000 installs; active installs per app version, matched to "
            "release records; no window given; sources: versions installs.csv 50/10,000)",
        )
    ]
    code, rows = verdict("app_version,installs\n5.2.0,9800\n5.1.0,50\n5.0.9,150\n")
    assert code == 1
    assert rows == [
        (
            "error",
            "ios-2026-05 is still used by 2% of installs; max_retire_adoption_percent is 1%: keep "
            "it retiring until fewer installs use it (evidence: 200 of 10,000 installs; active "
            "installs per app version, matched to release records; no window given; sources: "
            "versions installs.csv 50/10,000, versions without a release record 150/10,000; 150 "
            "installs are on versions no release record covers (5.0.9 (150)); they may carry "
            "any key and are counted for each: record them with keyops release)",
        )
    ]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            "version,count\n5.2.0,1\n",
            "line 1: the header has no app_version and no installs column",
        ),
        ("app_version,installs\n5.2,10\n", "line 2: app_version '5.2' is not a semantic version"),
        ("app_version,installs\n5.2.0,-3\n", "line 2: installs '-3' is not a whole number"),
        ("app_version,installs\n5.2.0\n", "line 2: too few columns"),
        ("app_version,installs\n", "has no rows"),
        ("app_version,installs\n5.2.0,0\n", "counts no installs at all"),
    ],
)
def test_bad_versions_files(keyrepo: KeyRepo, tmp_path: Path, rows: str, message: str) -> None:
    make_bundled(keyrepo, RELEASES)
    path = versions_csv(tmp_path, rows)
    proc = keyrepo.run("adoption", "--from", "versions", path, "--stack", "dev", "--client", "ios")
    assert (proc.returncode, proc.stdout) == (2, "")
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_versions_are_for_bundled_clients(keyrepo: KeyRepo, tmp_path: Path) -> None:
    path = versions_csv(tmp_path, "app_version,installs\n5.2.0,1\n")
    proc = keyrepo.run("adoption", "--from", "versions", path, "--stack", "dev", "--client", "ios")
    assert proc.returncode == 2
    assert proc.stderr.startswith(
        "error: credentials/dev/ios.yaml is a served client; --from versions is for bundled "
        "clients. Served clients: keyops adoption --from cloudwatch --stack dev."
    )


# -- keyops release and keyops export ---------------------------------------------------------


def test_release_records_which_credential_a_release_carries(keyrepo: KeyRepo) -> None:
    make_bundled(keyrepo)
    keyrepo.commit("ios ships bundled")
    args = ("release", "--stack", "dev", "--client", "ios", "--now", "2026-12-01")
    proc = keyrepo.run(*args, "--app-version", "5.3.0", "--id", NEW)
    assert proc.returncode == 0, proc.stderr
    assert "  release 5.3.0 carries ios-2026-11" in proc.stdout.splitlines()
    assert keyrepo.decrypt("credentials/dev/ios.yaml")["releases"] == [
        {"app_version": "5.3.0", "credential_id": NEW, "recorded": "2026-12-01"}
    ]
    keyrepo.commit("release 5.3.0")
    again = keyrepo.run(*args, "--app-version", "5.3.0", "--id", NEW)
    assert (again.returncode, again.stdout) == (0, "credentials/dev/ios.yaml: nothing to change\n")
    other = keyrepo.run(*args, "--app-version", "5.3.0", "--id", OLD)
    assert other.returncode == 2
    assert other.stderr == (
        "error: release 5.3.0 is already recorded with ios-2026-11. A shipped release's key does "
        "not change: record the new build under a new app version.\n"
    )
    unknown = keyrepo.run(*args, "--app-version", "5.4.0", "--id", "ios-2099-01")
    assert unknown.returncode == 2 and "has no credential 'ios-2099-01'" in unknown.stderr
    bad = keyrepo.run(*args, "--app-version", "five", "--id", NEW)
    assert bad.stderr.startswith("error: --app-version 'five' is not a semantic version.")


def test_release_refuses_a_served_client(keyrepo: KeyRepo) -> None:
    proc = keyrepo.run(
        "release", "--stack", "dev", "--client", "ios", "--app-version", "5.3.0", "--id", NEW
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith(
        "error: credentials/dev/ios.yaml is a served client; release records are for bundled "
        "clients"
    )


def test_a_release_record_naming_no_credential_fails_validation(keyrepo: KeyRepo) -> None:
    make_bundled(keyrepo, [*RELEASES, {"app_version": "5.1.0", "credential_id": "ios-2099-01",
                                      "recorded": "2026-05-05"}])  # fmt: skip
    proc = keyrepo.run("check", "--format", "json")
    found = [(f["rule"], f["message"]) for f in json.loads(proc.stdout)["findings"]]
    assert ("release-record", "release 5.1.0 names ios-2099-01, which client ios does not have "
            "(its credentials: ios-2026-05, ios-2026-11)") in found  # fmt: skip
    assert ("release-record", "release 5.1.0 is recorded twice (ios-2026-05 and ios-2099-01); "
            "one app version carries one key") in found  # fmt: skip


def test_export_points_to_the_release_record(keyrepo: KeyRepo, tmp_path: Path) -> None:
    make_bundled(keyrepo, RELEASES)
    keyrepo.commit("ios ships bundled")
    out = str(tmp_path / "ios.json")
    base = ("export", "--stack", "dev", "--client", "ios", "--format", "json", "--out", out)
    proc = keyrepo.run(*base, "--app-version", "5.3.0")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines()[-1] == (
        "next: record the release that carries ios-2026-11, so adoption can be counted by app "
        "version: keyops release --stack dev --client ios --app-version 5.3.0 --id ios-2026-11"
    )
    recorded = keyrepo.run(*base, "--app-version", "5.2.0")
    assert recorded.stderr.splitlines()[-1] == (
        "release 5.2.0 is recorded with ios-2026-11 (credentials/dev/ios.yaml)"
    )
    clash = keyrepo.run(*base, "--app-version", "5.1.0")
    assert clash.returncode == 2
    assert clash.stderr.startswith(
        "error: release 5.1.0 of ios is recorded with ios-2026-05, but the active credential is "
        "now ios-2026-11."
    )


# -- the evidence file ----------------------------------------------------------------------------


def evidence_file(tmp_path: Path, document: Any) -> Path:
    path = tmp_path / "adoption.json"
    path.write_text(json.dumps(document) if not isinstance(document, str) else document)
    return path


RICH = {
    "format": "keyops-adoption/2",
    "generated": "2026-12-01T10:00:00Z",
    "method": "cloudwatch-distinct",
    "window": {"start": "2026-11-17T10:00:00Z", "end": "2026-12-01T10:00:00Z"},
    "credentials": {
        OLD: {
            "stack": "dev",
            "client": "ios",
            "percent": 0.4,
            "unit": "installs",
            "count": 12,
            "total": 3000,
            "sources": [{"source": "cloudwatch logs eu-west-1", "count": 12, "total": 3000}],
        }
    },
}


def test_the_evidence_form_and_the_bare_form_both_load(tmp_path: Path) -> None:
    rich = load_adoption(evidence_file(tmp_path, RICH))[OLD]
    assert rich.describe() == (
        "12 of 3,000 installs; distinct install hashes from CloudWatch Logs Insights "
        "count_distinct; 2026-11-17T10:00:00Z to 2026-12-01T10:00:00Z; sources: cloudwatch logs "
        "eu-west-1 12/3,000"
    )
    assert load_adoption(evidence_file(tmp_path, {OLD: 0.4}))[OLD].percent == 0.4


def _with(**changes: Any) -> dict[str, Any]:
    document = json.loads(json.dumps(RICH))
    document["credentials"][OLD].update(changes)
    return document


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            _with(percent=4.0),
            "at $.credentials.ios-2026-05.percent: is 4 but count/total gives 0.4",
        ),
        (_with(count=4000), "count 4,000 is more than total 3,000"),
        (_with(total=None), "at $.credentials.ios-2026-05: count and total go together"),
        (_with(total=-1), ".total: must be a number from 0, got -1"),
        (_with(unit="sessions"), ".unit: must be one of installs, requests"),
        (_with(extra=1), "at $.credentials.ios-2026-05.extra: is not a known field"),
        (_with(stack="Not A Stack"), ".stack: must be a short printable string"),
        (_with(sources="x"), ".sources: must be a list of at most 1000 items"),
        ({**RICH, "format": "keyops-adoption/9"}, "this keyops reads 'keyops-adoption/2'"),
        ("[" * 100_000, "is nested too deeply"),
        ('{"a": 1e999}', "'a' has inf; percentages are numbers 0..100"),
        ('{"a": true}', "'a' has True; percentages are numbers 0..100"),
    ],
)
def test_bad_evidence_is_a_clear_error(
    keyrepo: KeyRepo, tmp_path: Path, document: Any, message: str
) -> None:
    path = evidence_file(tmp_path, document)
    proc = keyrepo.run("check", "--adoption", str(path))
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr.startswith(f"error: --adoption {path}")
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_evidence_for_another_stack_does_not_apply(keyrepo: KeyRepo, tmp_path: Path) -> None:
    base = keyrepo.git("rev-parse", "HEAD")
    doc = keyrepo.decrypt("credentials/dev/ios.yaml")
    doc["credentials"][1].update(state="retired", retired="2026-12-10")
    keyrepo.write_doc("credentials/dev/ios.yaml", doc)
    keyrepo.commit("retire")
    path = evidence_file(tmp_path, _with(stack="prod"))
    proc = keyrepo.run("check", "--base", base, "--now", "2026-12-10", "--adoption", str(path),
                       "--format", "json")  # fmt: skip
    found = [f["message"] for f in json.loads(proc.stdout)["findings"] if f["rule"] == "adoption"]
    assert found == [
        "ios-2026-05 is retired without adoption evidence; pass --adoption FILE showing at most "
        "1% of installs still use it"
    ]
