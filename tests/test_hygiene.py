"""``keyops hygiene issues`` and ``keyops hygiene bundles`` in the form hygiene.yml runs them,
on real git repositories, against recorded GitHub API responses served on 127.0.0.1, and (for
bundles) against a real ``keyops serve`` and real bundles from ``keyops build``.

On 2026-11-27 the sample dev stack has one credential past ``warn_age_days`` (300):
server-2026-01, created 2026-01-12, 319 days old. The recorded open issues hold an outdated issue
for it (#57), a pull request quoting its marker (#58, not an issue), a resolved dev credential
(#31) and one of a stack this repository does not have (#40).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from keyops.cli.commands.hygiene import AgeIssue, marker, sync_issues
from keyops.cli.github import GitHub, Request, Response
from support.github import SLUG, TOKEN, Answer, Replay, Routes, RouteTable
from support.net import free_port
from support.repo import KeyRepo
from support.serve import point_endpoints, start_serve

ISSUES = "/repos/acme/keyops/issues"
LABEL = "/repos/acme/keyops/labels/keyops-hygiene"
OPEN = f"{ISSUES}?state=open&labels=keyops-hygiene&per_page=100"
SERVER_TITLE = "Rotate server-2026-01 (dev/server): nearing its maximum age"


def issue_routes(open_fixture: str | None = "issues_open_hygiene.json") -> Routes:
    return {
        ("GET", LABEL): [Answer(200, "label_keyops_hygiene.json")],
        ("GET", OPEN): [Answer(200, open_fixture)] if open_fixture else [Json([])],
        ("POST", ISSUES): [Answer(201, "issue_created.json")],
        ("PATCH", f"{ISSUES}/57"): [Answer(200, "issue_updated.json")],
        ("PATCH", f"{ISSUES}/31"): [Answer(200, "issue_closed.json")],
        ("PATCH", f"{ISSUES}/40"): [Answer(200, "issue_closed.json")],
        ("POST", f"{ISSUES}/31/comments"): [Answer(201, "comment_created.json")],
        ("POST", f"{ISSUES}/40/comments"): [Answer(201, "comment_created.json")],
        ("POST", "/repos/acme/keyops/labels"): [Answer(201, "label_created.json")],
    }


class Json(Answer):
    """An answer whose body is built in the test (GitHub's empty list, a healthz document)."""

    def __init__(self, data: Any, status: int = 200) -> None:
        super().__init__(status)
        self.data = data

    def body(self) -> bytes:
        return json.dumps(self.data).encode()


def hygiene_issues(keyrepo: KeyRepo, server: Replay, *extra: str, now: str = "2026-11-27") -> Any:
    proc = keyrepo.run(
        "hygiene", "issues", "--repo-slug", SLUG, "--now", now, *extra, env=server.env()
    )
    assert TOKEN not in proc.stdout + proc.stderr
    return proc


def test_one_issue_per_old_credential_is_updated_and_resolved_ones_close(
    keyrepo: KeyRepo, replay: Any
) -> None:
    server = replay(issue_routes())
    proc = hygiene_issues(keyrepo, server)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        f"updated #57: {SERVER_TITLE}",
        "closed #31: dev/web-2025-06 resolved",
        "closed #40: prod/api-2025-10 resolved",
    ]
    (update,) = server.table.sent("PATCH", f"{ISSUES}/57")
    assert update["title"] == SERVER_TITLE
    body = update["body"]
    assert body.startswith("<!-- keyops:max-age dev/server-2026-01 -->\n")
    assert (
        "> warning: server-2026-01 is 319 days old (active); rotate before it is 365 days old "
        "(warn_age_days is 300)"
    ) in body
    assert "`keyops rotate --stack dev --client server --pr`" in body
    # The pull request that quotes the marker is neither edited nor closed; nothing is created.
    assert server.table.calls("POST") == [
        ("POST", f"{ISSUES}/31/comments"),
        ("POST", f"{ISSUES}/40/comments"),
    ]
    assert server.table.sent("PATCH", f"{ISSUES}/31") == [
        {"state": "closed", "state_reason": "completed"}
    ]
    (comment,) = server.table.sent("POST", f"{ISSUES}/31/comments")
    assert comment == {
        "body": "`web-2025-06` no longer trips the `max-age` rule as of 2026-11-27 "
        "(rotated, retired, removed or waived). Closing."
    }


def test_only_the_named_stack_is_touched(keyrepo: KeyRepo, replay: Any) -> None:
    server = replay(issue_routes())
    proc = hygiene_issues(keyrepo, server, "--stack", "dev")
    assert proc.returncode == 0, proc.stderr
    assert "#40" not in proc.stdout
    assert ("PATCH", f"{ISSUES}/40") not in server.table.calls()


def test_a_first_run_creates_the_label_and_the_issue(keyrepo: KeyRepo, replay: Any) -> None:
    routes = issue_routes(open_fixture=None)
    routes[("GET", LABEL)] = [Answer(404, "error_not_found.json")]
    server = replay(routes)
    proc = hygiene_issues(keyrepo, server)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "created label keyops-hygiene",
        f"opened #61: {SERVER_TITLE}",
    ]
    (label,) = server.table.sent("POST", "/repos/acme/keyops/labels")
    assert label["name"] == "keyops-hygiene"
    (created,) = server.table.sent("POST", ISSUES)
    assert created["title"] == SERVER_TITLE
    assert created["labels"] == ["keyops-hygiene"]
    assert created["body"].startswith(marker("dev/server-2026-01"))


def test_past_the_maximum_age_the_title_says_so(keyrepo: KeyRepo, replay: Any) -> None:
    server = replay(issue_routes(open_fixture=None))
    proc = hygiene_issues(keyrepo, server, now="2027-01-20")
    assert proc.returncode == 0, proc.stderr
    titles = sorted(body["title"] for body in server.table.sent("POST", ISSUES))
    assert titles == [
        "Rotate android-2026-03 (dev/android): nearing its maximum age",
        "Rotate server-2026-01 (dev/server): past its maximum age",
    ]
    past = next(b for b in server.table.sent("POST", ISSUES) if "server" in b["title"])
    assert (
        "> error: server-2026-01 is 373 days old (active); max_age_days is 365: rotate it now"
        in (past["body"])
    )


def test_dry_run_reads_but_writes_nothing(keyrepo: KeyRepo, replay: Any) -> None:
    server = replay(issue_routes())
    proc = hygiene_issues(keyrepo, server, "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        f"would update #57: {SERVER_TITLE}",
        "would close #31: dev/web-2025-06 resolved",
        "would close #40: prod/api-2025-10 resolved",
    ]
    assert server.table.calls("POST") == server.table.calls("PATCH") == []


def test_dry_run_without_a_token_asks_github_nothing(keyrepo: KeyRepo) -> None:
    # No GITHUB_TOKEN and no API URL: any request would fail, so success shows none was made.
    no_token = {"GITHUB_TOKEN": ""}
    proc = keyrepo.run(
        "hygiene", "issues", "--repo-slug", SLUG, "--now", "2027-01-20", "--dry-run", env=no_token
    )
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout.splitlines() == [
        "note: GITHUB_TOKEN is not set, so the open issues were not read; these are the issues "
        "that should be open (with a token, --dry-run also says which exist, would change or "
        "would close)",
        "would open or keep: Rotate android-2026-03 (dev/android): nearing its maximum age",
        "would open or keep: Rotate server-2026-01 (dev/server): past its maximum age",
    ]
    without_dry_run = keyrepo.run("hygiene", "issues", "--repo-slug", SLUG, env=no_token)
    assert (without_dry_run.returncode, without_dry_run.stderr) == (
        2,
        "error: GITHUB_TOKEN is not set. Export a token with access to the repository (in "
        "Actions: env: GITHUB_TOKEN: ${{ github.token }}).\n",
    )


def test_an_issue_already_up_to_date_is_left_alone() -> None:
    want = AgeIssue("dev/server-2026-01", SERVER_TITLE, marker("dev/server-2026-01") + "\nbody\n")
    current = {"number": 57, "title": want.title, "body": want.body, "state": "open"}
    table = RouteTable(
        {
            ("GET", LABEL): [Answer(200, "label_keyops_hygiene.json")],
            ("GET", OPEN): [Json([current])],
        },
        "https://api.github.com",
    )

    def send(request: Request) -> Response:
        path = request.url.removeprefix(table.base)
        return table.answer(request.method, path, dict(request.headers), request.body or b"")

    github = GitHub(SLUG, TOKEN, transport=send)
    lines = sync_issues(
        github, {want.key: want}, None, "keyops-hygiene", dt.date(2026, 11, 27), dry_run=False
    )
    assert lines == [f"unchanged #57: {SERVER_TITLE}"]
    assert table.calls("PATCH") == table.calls("POST") == []


# -- bundles ------------------------------------------------------------------------------------
def build(keyrepo: KeyRepo, out: Path, *extra: str) -> None:
    proc = keyrepo.run("build", "--stack", "dev", "--out", str(out), *extra)
    assert proc.returncode == 0, proc.stderr


def test_a_local_bundle_within_the_window_needs_a_redeploy(
    keyrepo: KeyRepo, tmp_path: Path
) -> None:
    out = tmp_path / "bundle"
    build(keyrepo, out, "--now", "2026-11-27T00:00:00Z")  # 30 days: exp 2026-12-27T00:00Z
    proc = keyrepo.run("hygiene", "bundles", "--bundle", str(out), "--now", "2026-12-21T12:00:00Z")
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.splitlines() == [
        f"dev  {out}  expires in 5d 12h  -> redeploy",
        "redeploy needed: dev (pass --dispatch deploy.yml to trigger it)",
    ]
    proc = keyrepo.run("hygiene", "bundles", "--bundle", str(out), "--now", "2026-12-01")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        f"dev  {out}  expires in 26d 0h  -> ok",
        "no bundle expires within 7 day(s)",
    ]


@pytest.fixture
def served(keyrepo: KeyRepo, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real ``keyops serve`` on 127.0.0.1 with a bundle expiring in 5 days."""
    out = tmp_path / "bundle"
    build(keyrepo, out, "--ttl-days", "5")
    server = start_serve(keyrepo, ["--bundle", str(out)], tmp_path / "serve.log")
    try:
        yield server.url, out
    finally:
        server.stop()


def test_an_endpoint_serving_an_expiring_bundle_gets_a_dispatched_redeploy(
    keyrepo: KeyRepo, served: tuple[str, Path], replay: Any
) -> None:
    url, _ = served
    point_endpoints(keyrepo, [url], commit=False)
    dispatch = "/repos/acme/keyops/actions/workflows/deploy.yml/dispatches"
    server = replay({("POST", dispatch): [Answer(204)]})
    proc = keyrepo.run(
        "hygiene",
        "bundles",
        "--within-days",
        "7",
        "--repo-slug",
        SLUG,
        "--dispatch",
        "deploy.yml",
        "--ref",
        "main",
        env=server.env(),
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith(f"dev  {url}/healthz  expires in 4d 23h")
    assert lines[0].endswith("-> redeploy")
    assert lines[1] == "dispatched deploy.yml on main with stack=dev"
    assert server.table.sent("POST", dispatch) == [{"ref": "main", "inputs": {"stack": "dev"}}]


def test_a_fresh_bundle_needs_nothing_and_an_unreachable_endpoint_is_reported(
    keyrepo: KeyRepo, served: tuple[str, Path], replay: Any
) -> None:
    url, _ = served
    closed = f"http://127.0.0.1:{free_port()}"
    point_endpoints(keyrepo, [url, closed], commit=False)
    server = replay({})
    proc = keyrepo.run(
        "hygiene", "bundles", "--within-days", "3", "--timeout", "2", env=server.env()
    )
    assert proc.returncode == 1, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].endswith("-> ok")
    assert lines[1].startswith(f"dev  {closed}/healthz  no answer (")
    assert lines[1].endswith("-> unreachable")
    assert lines[2] == "1 endpoint(s) could not be asked; no other bundle expires within 3 day(s)"
    assert server.table.seen == []  # nothing dispatched without --dispatch


def test_an_endpoint_without_a_valid_bundle_needs_a_redeploy(keyrepo: KeyRepo, replay: Any) -> None:
    # The contract's 503 answer for a missing or expired bundle (docs/protocol.md).
    problem = {"type": "about:blank", "title": "Not ready", "status": 503, "code": "not-ready"}
    endpoint = replay({("GET", "/healthz"): [Json(problem, 503)]})
    point_endpoints(keyrepo, [endpoint.url], commit=False)
    proc = keyrepo.run("hygiene", "bundles")
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.splitlines() == [
        f"dev  {endpoint.url}/healthz  no valid bundle (503 not-ready)  -> redeploy",
        "redeploy needed: dev (pass --dispatch deploy.yml to trigger it)",
    ]
    # The endpoint never sees a GitHub token.
    assert "Authorization" not in endpoint.table.seen[0].headers
