"""The GitHub REST client, against recorded API responses (tests/fixtures/github/*.json).

Two ways to replay them, both at true seams: :func:`replay_transport` is a :data:`Transport` for
the client in-process, and :class:`Replay` is a real HTTP server on 127.0.0.1 that the real CLI
talks to through ``GITHUB_API_URL``, exactly as it would talk to GitHub Enterprise. Both answer
from the same route table and record every request, so tests assert what was sent.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from keyops.cli.github import GitHub, Request, Response, Transport, next_link
from keyops.core.errors import GitHubError, UsageError

FIXTURES = Path(__file__).parent / "fixtures" / "github"
TOKEN = "ghs_TESTtokenTESTtokenTESTtoken0123456789"
SLUG = "acme/keyops"


@dataclass
class Answer:
    status: int = 200
    fixture: str | None = None
    #: ``{base}`` is replaced by the server's URL (for Link headers).
    headers: dict[str, str] = field(default_factory=dict)

    def body(self) -> bytes:
        return (FIXTURES / self.fixture).read_bytes() if self.fixture else b""


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


Routes = dict[tuple[str, str], list[Answer]]


class RouteTable:
    """Answers by (method, path with query); each route's answers are used in order, the last
    one repeating. An unknown route answers 404 in GitHub's format and is recorded."""

    def __init__(self, routes: Routes, base: str) -> None:
        self.routes = {key: list(answers) for key, answers in routes.items()}
        self.base = base
        self.seen: list[Seen] = []
        self._lock = threading.Lock()

    def answer(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Response:
        with self._lock:
            self.seen.append(Seen(method, path, headers, json.loads(body) if body else None))
            answers = self.routes.get((method, path))
            if not answers:
                return Response(404, {}, (FIXTURES / "error_not_found.json").read_bytes())
            answer = answers.pop(0) if len(answers) > 1 else answers[0]
        out_headers = {k.lower(): v.replace("{base}", self.base) for k, v in answer.headers.items()}
        out_headers.setdefault("content-type", "application/json; charset=utf-8")
        return Response(answer.status, out_headers, answer.body())

    def calls(self, method: str | None = None) -> list[tuple[str, str]]:
        return [(s.method, s.path) for s in self.seen if method in (None, s.method)]

    def sent(self, method: str, path: str) -> list[Any]:
        return [s.body for s in self.seen if (s.method, s.path) == (method, path)]


def replay_transport(table: RouteTable) -> Transport:
    def send(request: Request) -> Response:
        prefix = table.base
        assert request.url.startswith(prefix), request.url
        return table.answer(
            request.method, request.url[len(prefix) :], dict(request.headers), request.body or b""
        )

    return send


class Replay:
    """A real HTTP server on 127.0.0.1 answering from a :class:`RouteTable`."""

    def __init__(self, routes: Routes) -> None:
        table_ref: list[RouteTable] = []

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                response = table_ref[0].answer(
                    self.command, self.path, {k: v for k, v in self.headers.items()}, body
                )
                self.send_response(response.status)
                for key, value in response.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(response.body)))
                self.end_headers()
                self.wfile.write(response.body)

            do_GET = do_POST = do_PATCH = _serve

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.table = RouteTable(routes, self.url)
        table_ref.append(self.table)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def env(self) -> dict[str, str]:
        return {"GITHUB_API_URL": self.url, "GITHUB_TOKEN": TOKEN}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def replay() -> Iterator[Any]:
    servers: list[Replay] = []

    def start(routes: Routes) -> Replay:
        server = Replay(routes)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def client(routes: Routes, sleeps: list[float] | None = None) -> tuple[GitHub, RouteTable]:
    table = RouteTable(routes, "https://api.github.com")
    github = GitHub(
        SLUG,
        TOKEN,
        transport=replay_transport(table),
        sleep=(sleeps.append if sleeps is not None else lambda _: None),
    )
    return github, table


REVIEWS = "/repos/acme/keyops/pulls/42/reviews"
# GitHub's next links name the repository by id.
PAGE2 = "/repositories/771031284/pulls/42/reviews?per_page=100&page=2"


def review_routes() -> Routes:
    return {
        ("GET", f"{REVIEWS}?per_page=100"): [
            Answer(
                fixture="reviews_42_page1.json",
                headers={"Link": f'<{{base}}{PAGE2}>; rel="next", <{{base}}{PAGE2}>; rel="last"'},
            )
        ],
        ("GET", PAGE2): [
            Answer(
                fixture="reviews_42_page2.json",
                headers={
                    "Link": f'<{{base}}{REVIEWS}?per_page=100&page=1>; rel="prev", '
                    f'<{{base}}{REVIEWS}?per_page=100&page=1>; rel="first"'
                },
            )
        ],
    }


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
