"""A recorded GitHub REST API on loopback (``Replay``) and its route tables, for the tests of
``keyops approval`` and ``keyops hygiene``: real HTTP, answers from tests/fixtures/github."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from keyops.cli.github import Request, Response, Transport

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "github"
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
