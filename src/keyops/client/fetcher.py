"""The reference client: get a verified Pusher key, from the endpoints, the cache or the app.

State machine (docs/client.md draws it):

    START ──load cache──> HAVE_CACHE or EMPTY
    get(): cached payload still fresh (now < fetched_at + refresh_after)?  ── yes ──> use it
           otherwise FETCH:
             round 0..max_rounds-1 (a backoff sleep with full jitter before each round but
             the first), each endpoint in order, one attempt each (per-attempt timeout):
               200 + JWE opens + JWS verifies + payload checks  ──> STORE cache, use it
               no answer / 408 / 425 / 429 / 5xx                 ──> next endpoint; retry next round
                 (503 replay-cache-full too: Retry-After is not waited for)
               401 stale-token                                   ──> correct clock skew from Date,
                                                                      retry this endpoint once
               401 replayed-token                                ──> mint a new token (new jti
                                                                      and epk), retry this
                                                                      endpoint once
               other 4xx / verification failure                 ──> next endpoint; not retried
               an answer it cannot read at all (any exception)  ──> next endpoint; not retried
           every endpoint failed:
               unexpired cached payload  ──> use it (stale)
               bundled fallback key      ──> use it
               otherwise                 ──> NothingUsable
    on_pusher_error(code): 4001/4003/4009 refetch once per credential; 4004/4100 back off.
"""

from __future__ import annotations

import email.utils
import random as _random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from joserfc.jwk import ECKey

from keyops.client import token as tokens
from keyops.client.backoff import Backoff
from keyops.client.cache import Cache, CacheEntry
from keyops.client.config import ClientConfig
from keyops.client.transport import Request, Response, Transport, http_transport
from keyops.client.verify import Verified, open_response, verify_signed
from keyops.core import safejson
from keyops.core.errors import CacheError, NothingUsable, TransportError, VerifyError
from keyops.core.text import printable

PATH = "/v1/credentials"
#: Statuses after which the same endpoint may well answer differently a moment later.
RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
#: Pusher close codes meaning "this key is not valid": refetch the key once.
REFETCH_CODES = frozenset({4001, 4003, 4009})
#: Pusher close codes meaning "valid key, come back later": per-code backoff (base, cap) seconds.
#: Over quota (4004) lasts until the quota resets, so waiting seconds is pointless.
BACKOFF_CODES: dict[int, Backoff] = {4004: Backoff(30.0, 900.0), 4100: Backoff(1.0, 60.0)}
RECONNECT_BACKOFF = Backoff(1.0, 60.0)
#: Answers that a new token can cure: the same endpoint is asked once more, within the attempt.
STALE = "http-401:stale-token"
REPLAYED = "http-401:replayed-token"

Source = str  # an endpoint base URL, "cache" or "bundled"


@dataclass(frozen=True)
class Attempt:
    url: str
    ok: bool
    #: "ok", "unreachable", "http-<status>[:<problem code>]" or "verify:<reason>".
    outcome: str
    detail: str
    retryable: bool


@dataclass(frozen=True)
class Result:
    credential_id: str
    key: str
    cluster: str
    #: None for the bundled key, which carries no signed payload.
    bundle_version: int | None
    source: Source
    #: True when served from the cache because every endpoint failed.
    stale: bool = False
    attempts: tuple[Attempt, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Reaction:
    """What the app should do after Pusher closed its connection with a code."""

    action: Literal["reconnect", "wait", "stop"]
    #: Seconds to wait before reconnecting (0 for an immediate reconnect).
    delay: float
    #: The key to connect with next (None with "stop").
    result: Result | None
    reason: str


@dataclass
class Policy:
    """Timing knobs. The defaults suit an app start-up: at most ~3 s per endpoint per round."""

    attempt_timeout: float = 3.0
    max_rounds: int = 3
    round_backoff: Backoff = field(default_factory=lambda: Backoff(0.25, 4.0))


class Fetcher:
    """One per app process. Not thread-safe: call it from one place (e.g. a serial queue)."""

    def __init__(
        self,
        config: ClientConfig,
        identity: tokens.Identity,
        *,
        cache: Cache | None = None,
        transport: Transport = http_transport,
        policy: Policy | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        random: Callable[[], float] = _random.random,
    ) -> None:
        self.config = config
        self.identity = identity
        self.cache = cache
        self.transport = transport
        self.policy = policy or Policy()
        self.clock = clock
        self.sleep = sleep
        self.random = random
        self._current: Verified | None = None
        self._fetched_at = 0.0
        self._source: Source = "cache"
        #: Highest bundle_version accepted so far (the rollback watermark).
        self._high_water = 0
        #: Seconds to add to the local clock for ``iat`` (learned from a stale-token answer).
        self._skew = 0.0
        #: Things worth telling the user that did not stop the fetch (cache problems).
        self._notes: list[str] = []
        self._refetched_for: str | None = None
        self._pusher_failures = 0
        #: True while the app runs on the bundled key (then it is the ``held`` one).
        self._holding_bundled = False
        self._load_cache()

    # -- the app's entry points -------------------------------------------------------------
    def get(self) -> Result:
        """The key to connect with: the cached one while fresh, else a fetch (with fallbacks)."""
        now = self.clock()
        current = self._current
        # A fetch time in the future means the device clock was set back: treat it as stale
        # rather than trusting the cache for however long the jump was.
        fresh_until = min(self._fetched_at + current.refresh_after, current.exp) if current else 0
        if current is not None and self._fetched_at <= now < fresh_until:
            return self._result(current, self._source)
        return self.refresh()

    def refresh(self) -> Result:
        """Fetch now, whatever ``refresh_after`` says; fall back to cache, then bundled key."""
        attempts: list[Attempt] = []
        fetched = self._fetch(attempts)
        if fetched is not None:
            verified, url = fetched
            self._accept(verified, url)
            return self._result(verified, url, attempts=attempts)
        now = self.clock()
        current = self._current
        if current is not None and current.exp > now:
            return self._result(current, "cache", stale=True, attempts=attempts)
        bundled = self.config.bundled
        if bundled is not None:
            self._holding_bundled = True
            return Result(
                bundled.credential_id,
                bundled.key,
                bundled.cluster,
                None,
                "bundled",
                stale=True,
                attempts=tuple(attempts),
                notes=self._take_notes(),
            )
        raise NothingUsable(tuple(attempts), self._take_notes())

    def on_pusher_error(self, code: int) -> Reaction:
        """React to a Pusher WebSocket close code (docs/client.md, section 5)."""
        if code in REFETCH_CODES:
            held = self._in_use()
            if held is not None and self._refetched_for == held:
                return Reaction(
                    "stop", 0.0, None, f"Pusher refused {held} again after a refetch ({code})"
                )
            self._refetched_for = held
            try:
                result = self.refresh()
            except NothingUsable:
                return Reaction("stop", 0.0, None, f"Pusher refused the key ({code}), no other")
            return Reaction("reconnect", 0.0, result, f"refetched after close code {code}")
        policy = BACKOFF_CODES.get(code)
        if policy is None and 4100 <= code <= 4199:
            policy = RECONNECT_BACKOFF
        if policy is not None:
            delay = policy.delay(self._pusher_failures, self.random)
            self._pusher_failures += 1
            return Reaction("wait", delay, self._last_result(), f"backing off after {code}")
        if 4200 <= code <= 4299:
            return Reaction("reconnect", 0.0, self._last_result(), f"reconnect now after {code}")
        if 4000 <= code <= 4099:
            return Reaction("stop", 0.0, None, f"Pusher close code {code}: do not reconnect")
        # Not a Pusher code (e.g. 1006, network lost): reconnect with backoff.
        delay = RECONNECT_BACKOFF.delay(self._pusher_failures, self.random)
        self._pusher_failures += 1
        return Reaction("wait", delay, self._last_result(), f"connection closed ({code})")

    def on_connected(self) -> None:
        """Call once Pusher reports the connection established: resets the error state."""
        self._pusher_failures = 0
        self._refetched_for = None

    # -- internals ----------------------------------------------------------------------------
    def _take_notes(self) -> tuple[str, ...]:
        """Notes since the last result: each is reported once, so they never pile up."""
        notes = tuple(self._notes)
        self._notes.clear()
        return notes

    def _in_use(self) -> str | None:
        """The id of the credential the app runs on now: the bundled one, or the verified one."""
        if self._holding_bundled and self.config.bundled is not None:
            return self.config.bundled.credential_id
        return self._current.credential_id if self._current is not None else None

    def _last_result(self) -> Result | None:
        return self._result(self._current, self._source) if self._current else None

    def _result(
        self,
        verified: Verified,
        source: Source,
        *,
        stale: bool = False,
        attempts: list[Attempt] | None = None,
    ) -> Result:
        return Result(
            verified.credential_id,
            verified.key,
            verified.cluster,
            verified.bundle_version,
            source,
            stale=stale,
            attempts=tuple(attempts or ()),
            notes=self._take_notes(),
        )

    def _load_cache(self) -> None:
        if self.cache is None:
            return
        entry = self.cache.load()
        if self.cache.problem:
            self._notes.append(self.cache.problem)
        if entry is None:
            return
        if (entry.stack, entry.client) != (self.config.stack, self.config.client):
            self._notes.append(
                f"the cache holds {entry.stack}/{entry.client}, not "
                f"{self.config.stack}/{self.config.client}; ignoring it"
            )
            return
        self._high_water = entry.high_water
        try:
            verified = verify_signed(entry.signed, self.config, self.clock(), 0)
        except VerifyError as exc:
            self._notes.append(f"the cached payload is not usable: {exc.what}")
            return
        self._high_water = max(self._high_water, verified.bundle_version)
        self._current = verified
        self._fetched_at = entry.fetched_at
        self._source = "cache"

    def _accept(self, verified: Verified, url: str) -> None:
        self._holding_bundled = False
        self._current = verified
        self._fetched_at = self.clock()
        self._source = url
        self._high_water = max(self._high_water, verified.bundle_version)
        if self.cache is None:
            return
        entry = CacheEntry(
            stack=verified.stack,
            client=verified.client,
            signed=verified.signed,
            fetched_at=self._fetched_at,
            source=url,
            high_water=self._high_water,
        )
        try:
            self.cache.store(entry)
        except CacheError as exc:
            self._notes.append(exc.what)

    def _fetch(self, attempts: list[Attempt]) -> tuple[Verified, str] | None:
        given_up: set[str] = set()
        for round_no in range(self.policy.max_rounds):
            if round_no:
                self.sleep(self.policy.round_backoff.delay(round_no - 1, self.random))
            retry = False
            for url in self.config.endpoints:
                if url in given_up:
                    continue
                verified, attempt = self._attempt(url)
                attempts.append(attempt)
                if verified is not None:
                    return verified, url
                if attempt.retryable:
                    retry = True
                else:
                    given_up.add(url)
            if not retry:
                break
        return None

    def _attempt(self, url: str) -> tuple[Verified | None, Attempt]:
        """One attempt at ``url``. Each answer a new token may cure is resent once, to the same
        endpoint (every ``_send`` mints a new token); the last answer is the attempt."""
        resent: set[str] = set()
        while True:
            verified, attempt, response = self._send(url)
            if attempt.outcome in resent or not self._curable(attempt, response):
                return verified, attempt
            resent.add(attempt.outcome)

    def _curable(self, attempt: Attempt, response: Response | None) -> bool:
        if response is None:
            return False
        if attempt.outcome == REPLAYED:
            # The server accepted this very token before: something on the way resent the
            # request. A new token (new jti and epk) is one it has not seen.
            return True
        if attempt.outcome == STALE:
            # The device clock is off. The server's Date header tells by how much; the token's
            # iat is the only thing it is used for (exp is still checked on the local clock).
            return self._learn_skew(response)
        return False

    def _learn_skew(self, response: Response) -> bool:
        date = response.header("Date")
        if not date:
            return False
        try:
            server = email.utils.parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError, OverflowError, OSError):  # a date no calendar holds
            return False
        self._skew = server - self.clock()
        return True

    def _send(self, url: str) -> tuple[Verified | None, Attempt, Response | None]:
        held = self.identity.held or self._in_use()
        identity = tokens.Identity(self.identity.app_version, self.identity.install_id, held)
        signed = tokens.build(self.config, identity, self.clock() + self._skew)
        request = Request(
            "GET",
            url + PATH,
            {"Authorization": f"Bearer {signed.token}", "Accept": "application/jose"},
            timeout=self.policy.attempt_timeout,
        )
        try:
            response = self.transport(request)
        except TransportError as exc:
            return None, Attempt(url, False, "unreachable", str(exc), True), None
        try:
            verified, attempt = self._classify(url, response, signed.ephemeral)
        except Exception as exc:  # the last resort: an answer must never crash the app
            detail = f"the answer could not be read ({type(exc).__name__})"
            return None, Attempt(url, False, "verify:unreadable", detail, False), response
        return verified, attempt, response

    def _classify(
        self, url: str, response: Response, ephemeral: ECKey
    ) -> tuple[Verified | None, Attempt]:
        """What one answer means (docs/client.md, section 2.3), checked as in section 2.4."""
        if response.status != 200:
            return None, _http_failure(url, response)
        media = (response.header("Content-Type") or "").split(";")[0].strip().lower()
        if media != "application/jose":
            detail = f"200 with Content-Type {media or 'none'!r}, not application/jose"
            return None, Attempt(url, False, "http-200:wrong-type", detail, False)
        try:
            verified = open_response(
                response.body, ephemeral, self.config, self.clock(), self._high_water
            )
        except VerifyError as exc:
            return None, Attempt(url, False, f"verify:{exc.reason}", exc.what, False)
        return verified, Attempt(url, True, "ok", f"{verified.credential_id}", False)


def _http_failure(url: str, response: Response) -> Attempt:
    code = title = ""
    try:
        problem = safejson.parse(response.body)
    except ValueError:
        problem = None  # not a problem document: the status alone says it
    if isinstance(problem, dict):
        code = printable(_text(problem.get("code")), 40)
        title = printable(_text(problem.get("title")), 120)
    outcome = f"http-{response.status}" + (f":{code}" if code else "")
    detail = (
        f"HTTP {response.status}" + (f" {code}" if code else "") + (f": {title}" if title else "")
    )
    retryable = response.status in RETRYABLE_STATUSES or response.status >= 500
    return Attempt(url, False, outcome, detail, retryable)


def _text(value: object) -> str:
    """A problem member as text; one too odd to print (a deeply nested list, say) is dropped."""
    if not value:
        return ""
    try:
        return str(value)
    except (ValueError, RecursionError):
        return ""
