"""The GitHub REST client, against recorded API responses (tests/fixtures/github/*.json).

Two ways to replay them, both at true seams: :func:`replay_transport` is a :data:`Transport` for
the client in-process, and :class:`Replay` is a real HTTP server on 127.0.0.1 that the real CLI
talks to through ``GITHUB_API_URL``, exactly as it would talk to GitHub Enterprise. Both answer
from the same route table and record every request, so tests assert what was sent.
"""

from __future__ import annotations

from typing import Any

import pytest

from keyops.cli.github import GitHub, Request, Response, next_link
from keyops.core.errors import GitHubError, UsageError
from support.github import (
    PAGE2,
    REVIEWS,
    SLUG,
    TOKEN,
    Answer,
    Routes,
    RouteTable,
    replay_transport,
    review_routes,
)


def client(routes: Routes, sleeps: list[float] | None = None) -> tuple[GitHub, RouteTable]:
    table = RouteTable(routes, "https://api.github.com")
    github = GitHub(
        SLUG,
        TOKEN,
        transport=replay_transport(table),
        sleep=(sleeps.append if sleeps is not None else lambda _: None),
    )
    return github, table


# -- the client ------------------------------------------------------------------------------
def test_reviews_follow_every_page_and_send_the_api_headers() -> None:
    github, table = client(review_routes())
    reviews = github.reviews(42)
    assert [r["id"] for r in reviews] == [
        2467101001,
        2467101002,
        2467101003,
        2467101004,
        2467101005,
    ]
    assert table.calls() == [
        ("GET", f"{REVIEWS}?per_page=100"),
        ("GET", PAGE2),
    ]
    headers = table.seen[0].headers
    assert headers["Authorization"] == f"Bearer {TOKEN}"
    assert headers["Accept"] == "application/vnd.github+json"
    assert headers["X-GitHub-Api-Version"] == "2022-11-28"


def test_a_link_to_another_host_never_receives_the_token() -> None:
    github, table = client(
        {
            ("GET", f"{REVIEWS}?per_page=100"): [
                Answer(
                    fixture="reviews_42_page1.json",
                    headers={"Link": '<https://evil.example/steal?page=2>; rel="next"'},
                )
            ]
        }
    )
    with pytest.raises(GitHubError) as caught:
        github.reviews(42)
    assert caught.value.render() == (
        "error: refusing to send the token to evil.example. "
        "Only https://api.github.com is contacted."
    )
    assert len(table.seen) == 1


def test_an_error_answer_says_what_and_how_to_fix_without_the_token() -> None:
    github, _ = client(
        {("GET", "/repos/acme/keyops/pulls/42"): [Answer(401, "error_bad_credentials.json")]}
    )
    with pytest.raises(GitHubError) as caught:
        github.pull(42)
    assert caught.value.status == 401
    assert caught.value.render() == (
        "error: GitHub answered 401 to GET /repos/acme/keyops/pulls/42: Bad credentials. "
        "GITHUB_TOKEN is invalid or expired."
    )
    assert TOKEN not in caught.value.render()


def test_transient_failures_are_retried_with_backoff() -> None:
    sleeps: list[float] = []
    github, table = client(
        {
            ("GET", "/repos/acme/keyops/pulls/42"): [
                Answer(502),
                Answer(503),
                Answer(200, "pull_42.json"),
            ]
        },
        sleeps,
    )
    assert github.pull(42)["user"]["login"] == "dev-carol"
    assert sleeps == [1, 2]
    assert len(table.seen) == 3


def test_an_unreachable_api_is_an_environment_error() -> None:
    sleeps: list[float] = []

    def down(request: Request) -> Response:
        raise ConnectionRefusedError(111, "Connection refused")

    github = GitHub(SLUG, TOKEN, transport=down, sleep=sleeps.append)
    with pytest.raises(GitHubError) as caught:
        github.pull(42)
    assert caught.value.exit_code == 2
    assert caught.value.render() == (
        "error: cannot reach api.github.com for GET /repos/acme/keyops/pulls/42: "
        "[Errno 111] Connection refused. Check the network, or GITHUB_API_URL."
    )
    assert sleeps == [1, 2, 4]


def test_the_token_comes_only_from_the_environment() -> None:
    with pytest.raises(UsageError) as caught:
        GitHub.from_env(SLUG, env={})
    assert caught.value.render().startswith("error: GITHUB_TOKEN is not set.")
    github = GitHub.from_env(
        SLUG, env={"GITHUB_TOKEN": TOKEN, "GITHUB_API_URL": "https://ghe.example/api/v3"}
    )
    assert github.api_url == "https://ghe.example/api/v3"
    assert TOKEN not in repr(github.__dict__.get("api_url"))


@pytest.mark.parametrize("slug", ["acme", "acme/keyops/x", "../etc", "acme/../x", "-x/y z"])
def test_a_bad_repo_slug_is_a_usage_error(slug: str) -> None:
    with pytest.raises(UsageError) as caught:
        GitHub(slug, TOKEN)
    assert caught.value.render() == (
        f"error: --repo-slug {slug!r} is not OWNER/REPO. Pass e.g. acme/keyops."
    )


def test_status_description_is_cut_to_githubs_limit() -> None:
    sha = "9f1c2e4b7a3d5f60818293a4b5c6d7e8f9a0b1c2"
    path = f"/repos/acme/keyops/statuses/{sha}"
    github, table = client({("POST", path): [Answer(201, "status_created.json")]})
    github.create_status(sha, "pending", "keyops/approval", "x" * 200, None)
    (sent,) = table.sent("POST", path)
    assert sent == {
        "state": "pending",
        "context": "keyops/approval",
        "description": "x" * 139 + "…",
    }


def test_a_missing_label_is_created_once() -> None:
    label = "/repos/acme/keyops/labels/keyops-hygiene"
    github, table = client(
        {
            ("GET", label): [
                Answer(404, "error_not_found.json"),
                Answer(200, "label_keyops_hygiene.json"),
            ],
            ("POST", "/repos/acme/keyops/labels"): [Answer(201, "label_created.json")],
        }
    )
    assert github.ensure_label("keyops-hygiene", "d93f0b", "old keys") is True
    assert github.ensure_label("keyops-hygiene", "d93f0b", "old keys") is False
    assert table.calls("POST") == [("POST", "/repos/acme/keyops/labels")]


def test_a_permission_error_points_at_the_setup_guide() -> None:
    sha = "9f1c2e4b7a3d5f60818293a4b5c6d7e8f9a0b1c2"
    path = f"/repos/acme/keyops/statuses/{sha}"
    github, _ = client({("POST", path): [Answer(403, "error_resource_not_accessible.json")]})
    with pytest.raises(GitHubError) as caught:
        github.create_status(sha, "success", "keyops/approval", "ok", None)
    assert caught.value.render() == (
        f"error: GitHub answered 403 to POST {path}: Resource not accessible by integration. "
        "The token lacks a permission this step needs (see docs/github-setup.md)."
    )


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ('<https://api.github.com/x?page=3>; rel="next"', "https://api.github.com/x?page=3"),
        (
            '<https://api.github.com/x?page=1>; rel="prev", '
            '<https://api.github.com/x?page=3>; rel="next"',
            "https://api.github.com/x?page=3",
        ),
        ('<https://api.github.com/x?page=1>; rel="first"', None),
    ],
)
def test_next_link(header: str | None, expected: str | None) -> None:
    assert next_link(header) == expected


def test_the_replay_server_is_a_real_http_server(replay: Any) -> None:
    server = replay({("GET", "/repos/acme/keyops/pulls/42"): [Answer(200, "pull_42.json")]})
    github = GitHub(SLUG, TOKEN, api_url=server.url)
    assert github.pull(42)["number"] == 42
    assert server.table.seen[0].headers["Authorization"] == f"Bearer {TOKEN}"


def test_a_moved_repository_is_followed_on_the_api_host_only() -> None:
    github, table = client(
        {
            ("GET", "/repos/acme/keyops/pulls/42"): [
                Answer(301, None, {"Location": "{base}/repositories/771031284/pulls/42"})
            ],
            ("GET", "/repositories/771031284/pulls/42"): [Answer(200, "pull_42.json")],
        }
    )
    assert github.pull(42)["number"] == 42
    assert table.calls() == [
        ("GET", "/repos/acme/keyops/pulls/42"),
        ("GET", "/repositories/771031284/pulls/42"),
    ]


def test_a_redirect_elsewhere_never_receives_the_token(replay: Any) -> None:
    elsewhere = replay({("GET", "/steal"): [Answer(200, "pull_42.json")]})
    api = replay(
        {
            ("GET", "/repos/acme/keyops/pulls/42"): [
                Answer(302, None, {"Location": f"{elsewhere.url}/steal"})
            ]
        }
    )
    github = GitHub(SLUG, TOKEN, api_url=api.url)
    with pytest.raises(GitHubError) as caught:
        github.pull(42)
    assert caught.value.render().startswith("error: refusing to send the token to 127.0.0.1:")
    # Neither urllib (which would follow redirects with the header) nor the client went there.
    assert elsewhere.table.seen == []


def test_a_short_rate_limit_is_waited_out() -> None:
    sleeps: list[float] = []
    github, _ = client(
        {
            ("GET", "/repos/acme/keyops/pulls/42"): [
                Answer(429, "error_resource_not_accessible.json", {"Retry-After": "2"}),
                Answer(200, "pull_42.json"),
            ]
        },
        sleeps,
    )
    assert github.pull(42)["number"] == 42
    assert sleeps == [2.0]
