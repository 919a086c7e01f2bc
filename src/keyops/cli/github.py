"""A small client for the GitHub REST API, over urllib.

Only what the workflows need: pull requests and their reviews, commit statuses, issue comments,
issues and labels, and workflow dispatches. Every request goes through a :data:`Transport`, a
plain function from :class:`Request` to :class:`Response`; tests pass a transport that answers
with recorded API responses, so nothing here is patched and nothing reaches the network.

The token comes only from the ``GITHUB_TOKEN`` environment variable. It is sent in the
``Authorization`` header to the API host and nowhere else: pagination ``Link`` URLs that point at
another host are refused rather than followed. It never appears in errors or output.
"""

from __future__ import annotations

import json
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from keyops import __version__
from keyops.core.errors import GitHubError, UsageError

DEFAULT_API_URL = "https://api.github.com"
API_VERSION = "2022-11-28"
PER_PAGE = 100
#: A runaway ``Link`` chain stops here instead of looping forever (10,000 items at 100/page).
MAX_PAGES = 100
#: Transient answers that are retried, with a short backoff.
RETRY_STATUSES = frozenset({502, 503, 504})
RETRIES = 3
#: A rate-limited answer is retried when it asks for at most this many seconds.
MAX_RETRY_AFTER = 60
REDIRECTS = frozenset({301, 302, 307, 308})
MAX_REDIRECTS = 3

_SLUG = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_SHA = re.compile(r"^[0-9a-f]{40}$")
_LINK = re.compile(r'<([^>]+)>\s*;\s*rel="([^"]+)"')


@dataclass(frozen=True)
class Request:
    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    body: bytes | None = None


@dataclass(frozen=True)
class Response:
    status: int
    #: Header names in lower case.
    headers: Mapping[str, str]
    body: bytes


#: The seam: send one request, return the answer (any HTTP status), raise OSError when the
#: server cannot be reached.
Transport = Callable[[Request], Response]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """urllib would re-send the Authorization header to wherever a redirect points; instead,
    a redirect comes back as a response and :meth:`GitHub.request` decides (same host only)."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def urllib_transport(timeout: float = 30.0) -> Transport:
    """The real transport: one HTTP(S) request per call; redirects are returned, not followed."""
    opener = urllib.request.build_opener(_NoRedirect)

    def send(request: Request) -> Response:
        if not request.url.startswith(("https://", "http://")):
            raise GitHubError(f"refusing to request {request.url!r}", "Use an http(s) API URL.")
        req = urllib.request.Request(  # noqa: S310 - scheme checked above
            request.url, data=request.body, headers=dict(request.headers), method=request.method
        )
        try:
            with opener.open(req, timeout=timeout) as answer:
                return Response(
                    answer.status, {k.lower(): v for k, v in answer.headers.items()}, answer.read()
                )
        except urllib.error.HTTPError as exc:
            return Response(exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read())

    return send


def check_slug(slug: str) -> str:
    if not _SLUG.match(slug) or ".." in slug:
        raise UsageError(f"--repo-slug {slug!r} is not OWNER/REPO", "Pass e.g. acme/keyops.")
    return slug


def check_sha(sha: str) -> str:
    if not _SHA.match(sha):
        raise UsageError(
            f"--head-sha {sha!r} is not a full 40-character commit SHA",
            "Pass the pull request's head SHA.",
        )
    return sha


def next_link(header: str | None) -> str | None:
    """The ``rel="next"`` URL of a ``Link`` header, if any."""
    for url, rel in _LINK.findall(header or ""):
        if "next" in rel.split():
            return str(url)
    return None


class GitHub:
    """The REST API of one repository."""

    def __init__(
        self,
        slug: str,
        token: str,
        *,
        transport: Transport | None = None,
        api_url: str = DEFAULT_API_URL,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.slug = check_slug(slug)
        self._token = token
        self._send = transport or urllib_transport()
        self.api_url = api_url.rstrip("/")
        self._origin = urllib.parse.urlsplit(self.api_url)[:2]
        self._sleep = sleep

    @classmethod
    def from_env(
        cls, slug: str, *, transport: Transport | None = None, env: Mapping[str, str] | None = None
    ) -> GitHub:
        env = os.environ if env is None else env
        token = env.get("GITHUB_TOKEN", "")
        if not token:
            raise UsageError(
                "GITHUB_TOKEN is not set",
                "Export a token with access to the repository (in Actions: "
                "env: GITHUB_TOKEN: ${{ github.token }}).",
            )
        return cls(
            slug,
            token,
            transport=transport,
            api_url=env.get("GITHUB_API_URL") or DEFAULT_API_URL,
        )

    # -- plumbing ------------------------------------------------------------------------
    def _headers(self, has_body: bool) -> dict[str, str]:
        headers = {
            "Accept": "application/vnd.github+json",
            "Authorization": f"Bearer {self._token}",
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": f"keyops/{__version__}",
        }
        if has_body:
            headers["Content-Type"] = "application/json"
        return headers

    def _url(self, path: str, params: Mapping[str, str | int] | None = None) -> str:
        url = f"{self.api_url}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        return url

    def _redact(self, text: str) -> str:
        return text.replace(self._token, "***") if self._token else text

    def request(
        self, method: str, url: str, payload: Any = None, *, redirects: int = 0
    ) -> Response:
        """One call with retries on transient failures; an error status raises GitHubError."""
        if urllib.parse.urlsplit(url)[:2] != self._origin:
            # A Link header (or anything else) pointing elsewhere must not receive the token.
            raise GitHubError(
                f"refusing to send the token to {urllib.parse.urlsplit(url).netloc}",
                f"Only {self.api_url} is contacted.",
            )
        body = None if payload is None else json.dumps(payload).encode()
        request = Request(method, url, self._headers(body is not None), body)
        path = urllib.parse.urlsplit(url).path
        for attempt in range(RETRIES + 1):
            try:
                response = self._send(request)
            except OSError as exc:
                if attempt < RETRIES:
                    self._sleep(2**attempt)
                    continue
                raise GitHubError(
                    f"cannot reach {self._origin[1]} for {method} {path}: {self._redact(str(exc))}",
                    "Check the network, or GITHUB_API_URL.",
                ) from None
            if attempt < RETRIES:
                delay = self._retry_delay(response, attempt)
                if delay is not None:
                    self._sleep(delay)
                    continue
            if response.status in REDIRECTS and method == "GET" and "location" in response.headers:
                # A renamed or transferred repository: GitHub points at /repositories/<id>/….
                # Followed only on the API host (checked again by the recursive call).
                target = urllib.parse.urljoin(url, response.headers["location"])
                if redirects >= MAX_REDIRECTS:
                    raise GitHubError(f"too many redirects for GET {path}", "Check --repo-slug.")
                return self.request(method, target, payload, redirects=redirects + 1)
            if response.status >= 300:
                raise self._error(method, path, response)
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _retry_delay(response: Response, attempt: int) -> float | None:
        """Seconds to wait before retrying, or None when the answer is final."""
        if response.status in RETRY_STATUSES:
            return float(2**attempt)
        if response.status in (403, 429):
            # Secondary rate limits say how long to back off; a short wait is worth it.
            after = response.headers.get("retry-after", "")
            if after.isdigit() and int(after) <= MAX_RETRY_AFTER:
                return float(after)
        return None

    def _error(self, method: str, path: str, response: Response) -> GitHubError:
        try:
            message = str(json.loads(response.body).get("message", ""))
        except (ValueError, AttributeError):
            message = ""
        detail = f": {self._redact(message)}" if message else ""
        fixes = {
            401: "GITHUB_TOKEN is invalid or expired.",
            403: "The token lacks a permission this step needs (see docs/github-setup.md).",
            404: "Check --repo-slug and the number, and that the token can see the repository.",
            422: "GitHub rejected the request's content.",
            429: "GitHub rate-limited the token; run again later.",
        }
        return GitHubError(
            f"GitHub answered {response.status} to {method} {path}{detail}",
            "The repository moved: pass its new OWNER/REPO."
            if response.status in REDIRECTS
            else fixes.get(response.status, "Retry later; see https://www.githubstatus.com."),
            status=response.status,
        )

    @staticmethod
    def _json(response: Response) -> Any:
        if not response.body:
            return None
        try:
            return json.loads(response.body)
        except ValueError:
            raise GitHubError(
                "GitHub answered with a body that is not JSON", "Retry later."
            ) from None

    def get(self, path: str, params: Mapping[str, str | int] | None = None) -> Any:
        return self._json(self.request("GET", self._url(path, params)))

    def get_list(self, path: str, params: Mapping[str, str | int] | None = None) -> list[Any]:
        """Every item of a paginated list, following ``Link: rel="next"``."""
        url: str | None = self._url(path, {**(params or {}), "per_page": PER_PAGE})
        items: list[Any] = []
        pages = 0
        while url is not None:
            pages += 1
            if pages > MAX_PAGES:
                raise GitHubError(
                    f"more than {MAX_PAGES} pages for GET {path}", "Narrow the query."
                )
            response = self.request("GET", url)
            page = self._json(response)
            if not isinstance(page, list):
                raise GitHubError(f"GET {path} did not answer with a list", "Check the path.")
            items.extend(page)
            url = next_link(response.headers.get("link"))
        return items

    def send(self, method: str, path: str, payload: Any) -> Any:
        return self._json(self.request(method, self._url(path), payload))

    # -- the calls keyops makes ----------------------------------------------------------
    def pull(self, number: int) -> dict[str, Any]:
        data: dict[str, Any] = self.get(f"/repos/{self.slug}/pulls/{number}")
        return data

    def reviews(self, number: int) -> list[dict[str, Any]]:
        return self.get_list(f"/repos/{self.slug}/pulls/{number}/reviews")

    def create_status(
        self, sha: str, state: str, context: str, description: str, target_url: str | None
    ) -> dict[str, Any]:
        payload: dict[str, str] = {
            "state": state,
            "context": context,
            # GitHub rejects descriptions over 140 characters.
            "description": description if len(description) <= 140 else description[:139] + "…",
        }
        if target_url:
            payload["target_url"] = target_url
        data: dict[str, Any] = self.send("POST", f"/repos/{self.slug}/statuses/{sha}", payload)
        return data

    def issue_comments(self, number: int) -> list[dict[str, Any]]:
        return self.get_list(f"/repos/{self.slug}/issues/{number}/comments")

    def create_comment(self, number: int, body: str) -> dict[str, Any]:
        data: dict[str, Any] = self.send(
            "POST", f"/repos/{self.slug}/issues/{number}/comments", {"body": body}
        )
        return data

    def update_comment(self, comment_id: int, body: str) -> dict[str, Any]:
        data: dict[str, Any] = self.send(
            "PATCH", f"/repos/{self.slug}/issues/comments/{comment_id}", {"body": body}
        )
        return data

    def open_issues(self, label: str) -> list[dict[str, Any]]:
        """Open issues (not pull requests) carrying ``label``."""
        items = self.get_list(f"/repos/{self.slug}/issues", {"state": "open", "labels": label})
        return [item for item in items if "pull_request" not in item]

    def create_issue(self, title: str, body: str, labels: list[str]) -> dict[str, Any]:
        data: dict[str, Any] = self.send(
            "POST", f"/repos/{self.slug}/issues", {"title": title, "body": body, "labels": labels}
        )
        return data

    def update_issue(self, number: int, **fields: Any) -> dict[str, Any]:
        data: dict[str, Any] = self.send("PATCH", f"/repos/{self.slug}/issues/{number}", fields)
        return data

    def ensure_label(self, name: str, color: str, description: str) -> bool:
        """Create the label unless it exists; True when it was created."""
        try:
            self.get(f"/repos/{self.slug}/labels/{urllib.parse.quote(name, safe='')}")
            return False
        except GitHubError as exc:
            if exc.status != 404:
                raise
        self.send(
            "POST",
            f"/repos/{self.slug}/labels",
            {"name": name, "color": color, "description": description},
        )
        return True

    def dispatch_workflow(self, workflow: str, ref: str, inputs: Mapping[str, str]) -> None:
        self.send(
            "POST",
            f"/repos/{self.slug}/actions/workflows/{urllib.parse.quote(workflow, safe='')}"
            "/dispatches",
            {"ref": ref, "inputs": dict(inputs)},
        )
