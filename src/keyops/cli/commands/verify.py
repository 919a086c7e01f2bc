"""``keyops verify``: does Pusher accept each key the repository holds, and refuse the dead ones?

For every credential of the selected stacks and clients it makes one signed, read-only call to
the Pusher Channels HTTP API with that credential's key and secret (``GET
/apps/{app_id}/channels``, signed as the official server libraries sign it; docs/verify.md). The
default URL is the client's cluster, ``https://api-{cluster}.pusher.com``; ``--api-url`` names
another Pusher-protocol server. Each credential gets one result:

  live         accepted: a 200 whose JSON body lists channels
  rejected     refused, or an answer carrying an error
  unreachable  no usable answer (network, timeout, 5xx, 429), with the reason
  skipped      not called (unchanged since --base, or the total deadline passed first)

What a result means depends on the credential's state: active and pending keys must be live
(anything else is an error); retiring keys are expected live (a warning otherwise); a live
retired key is a warning, a live revoked key an error (the revocation is incomplete until the key
is deleted in the Pusher dashboard).

Exit codes: 0 no error, 1 errors, 2 usage or environment problems, including a run in which no
call got an answer at all. Secrets appear nowhere: not in the output, the URL (only the signature
travels) or the local cache of results that ``keyops status`` shows.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from keyops import __version__
from keyops.build.stacks import load_stack
from keyops.cli import reporters, verify_cache
from keyops.cli.reporters import Report
from keyops.cli.reporters.markdown import cell
from keyops.cli.reporters.text import use_colour
from keyops.client.transport import Request, http_transport
from keyops.core.atomic import append_nofollow
from keyops.core.dates import NOW_HELP, parse_now
from keyops.core.errors import (
    EXIT_FINDINGS,
    EXIT_OK,
    InputError,
    KeyopsError,
    PusherUnreachable,
    TransportError,
    UsageError,
)
from keyops.core.findings import Finding, Severity, has_errors, summarize
from keyops.core.model import ClientFile, Credential, Stack
from keyops.pusher import api
from keyops.store import loader, repo, settings
from keyops.store.settings import Settings
from keyops.store.sources import GitSource, WorktreeSource

#: Calls in flight at once: enough for a stack's keys, gentle on the API's rate limits.
PARALLEL = 8
DEFAULT_TIMEOUT = 10.0
DEFAULT_DEADLINE = 60.0
RULE = "verify"
_STACK_NAME = re.compile(r"\A[a-z0-9][a-z0-9_-]*\Z")


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--stack", action="append", metavar="S", help="the stack (repeatable; see --base)"
    )
    parser.add_argument(
        "--client", action="append", metavar="C", help="only this client (repeatable)"
    )
    parser.add_argument(
        "--id", action="append", metavar="ID", dest="ids", help="only this credential (repeatable)"
    )
    parser.add_argument(
        "--api-url",
        metavar="URL",
        help="a Pusher-protocol HTTP API, http(s)://HOST[:PORT] "
        "(default: https://api-<cluster>.pusher.com of each client)",
    )
    parser.add_argument(
        "--base",
        metavar="REF",
        help="only credentials added, or whose key, secret, app or cluster changed, since this "
        "git revision; without --stack, every stack with such a change",
    )
    parser.add_argument(
        "--skip-stacks",
        default="",
        metavar="LIST",
        help="stacks to leave out, comma- or space-separated (e.g. one whose CI has no "
        "network path to Pusher)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="S",
        help=f"seconds per call (default {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument(
        "--deadline",
        type=float,
        default=DEFAULT_DEADLINE,
        metavar="S",
        help=f"seconds for all calls together (default {DEFAULT_DEADLINE:g})",
    )
    parser.add_argument("--now", metavar="WHEN", help=NOW_HELP)
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument(
        "--summary", metavar="FILE", type=Path, help="append a markdown report to FILE"
    )


# -- what is checked ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    stack: str
    client: ClientFile
    cred: Credential
    url: str
    #: Why it is not called, when it is not.
    skip: str | None = None


@dataclass
class Outcome:
    target: Target
    result: str
    detail: str
    severity: str = "ok"
    message: str = ""


@dataclass
class Plan:
    targets: list[Target] = field(default_factory=list)
    stacks: list[str] = field(default_factory=list)
    skipped_stacks: list[str] = field(default_factory=list)
    #: Every credential id of each verified stack now (the cache forgets the others).
    known: dict[str, set[str]] = field(default_factory=dict)


def api_base(raw: str | None) -> str | None:
    """``--api-url`` as ``scheme://host[:port]``; the URL itself is never echoed back (it could
    carry a password)."""
    if raw is None:
        return None
    problem = "is not an http(s) URL"
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError:
        parts, port = None, None
    if parts is not None and parts.scheme in ("http", "https") and parts.hostname:
        if parts.username is not None or parts.password is not None:
            problem = "carries a user name or password"
        elif parts.path not in ("", "/") or parts.query or parts.fragment:
            problem = "has a path, query or fragment"
        else:
            host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
            return f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")
    raise UsageError(
        f"--api-url {problem}",
        "Give the API's base as http(s)://HOST[:PORT], e.g. https://api-eu.pusher.com.",
    )


def skip_list(raw: str) -> list[str]:
    names = [n for n in re.split(r"[\s,]+", raw.strip()) if n]
    for name in names:
        if not _STACK_NAME.match(name):
            raise UsageError(
                f"--skip-stacks holds {name!r}, which is not a stack name",
                "List stack names separated by commas or spaces, e.g. 'dev,staging'.",
            )
    return names


def changed_stacks(root: Path, base: GitSource) -> list[str]:
    """Stacks with a credential file that is new or different at the working tree."""
    head = WorktreeSource(root)
    head_files = [e.relpath for e in head.entries() if e.kind == "file"]
    base_files = {e.relpath for e in base.entries() if e.kind == "file"}
    before = base.read_many([rel for rel in head_files if rel in base_files])
    return sorted({rel.split("/")[1] for rel in head_files if before.get(rel) != head.read(rel)})


def material(client: ClientFile, cred: Credential) -> tuple[str, ...]:
    """What a call depends on: a credential whose material is unchanged needs no new call."""
    return (client.app_id, client.cluster, cred.key or "", cred.secret or "")


def base_material(root: Path, base: GitSource, stack: str) -> dict[str, tuple[str, ...]]:
    result = loader.load(root, base, stacks=[stack], decrypt=True)
    before = result.stacks.get(stack)
    if before is None:
        return {}
    return {cred.id: material(client, cred) for client, cred in before.credentials()}


def select(
    stack: Stack, clients: Sequence[str] | None, ids: Sequence[str] | None
) -> list[tuple[ClientFile, Credential]]:
    chosen = [
        (client, cred)
        for client, cred in stack.credentials()
        if (not clients or client.client in clients) and (not ids or cred.id in ids)
    ]
    return sorted(chosen, key=lambda pair: (pair[0].client, pair[1].index))


def plan(args: argparse.Namespace, root: Path, api_url: str | None) -> Plan:
    skipped = skip_list(args.skip_stacks)
    base = GitSource(root, args.base) if args.base else None
    if args.stack:
        loader.check_stacks(root, WorktreeSource(root), args.stack)
        stacks = list(dict.fromkeys(args.stack))
    elif base is not None:
        stacks = changed_stacks(root, base)
    else:
        raise UsageError(
            "name the stack to verify with --stack S",
            "Or pass --base REF to verify what changed since REF in every stack.",
        )
    result = Plan(
        stacks=[s for s in stacks if s not in skipped],
        skipped_stacks=[s for s in stacks if s in skipped],
    )
    seen_clients: set[str] = set()
    seen_ids: set[str] = set()
    for name in result.stacks:
        stack = load_stack(root, name, purpose="verify the keys")
        result.known[name] = {cred.id for _, cred in stack.credentials()}
        seen_clients |= set(stack.clients)
        seen_ids |= result.known[name]
        before = base_material(root, base, name) if base is not None else None
        for client, cred in select(stack, args.client, args.ids):
            url = api_url or f"https://api-{client.cluster}.pusher.com"
            skip = None
            if before is not None and before.get(cred.id) == material(client, cred):
                skip = f"unchanged since {args.base}"
            result.targets.append(Target(name, client, cred, url, skip))
    for option, wanted, seen in (
        ("--client", args.client, seen_clients),
        ("--id", args.ids, seen_ids),
    ):
        unknown = sorted(set(wanted or []) - seen)
        if unknown and result.stacks:
            raise InputError(
                f"{option} {', '.join(unknown)}: not in stack(s) {', '.join(result.stacks)}",
                f"Known: {', '.join(sorted(seen)) or 'none'}.",
            )
    return result


# -- the calls ---------------------------------------------------------------------------------
Caller = Callable[[Target, float], api.Answer]


def call(target: Target, timeout: float) -> api.Answer:
    """One signed, read-only call with this credential; never raises for a network problem."""
    key, secret = target.cred.key, target.cred.secret
    if key is None or secret is None:  # load_stack decrypts; this guards a future caller
        return api.Answer("unreachable", "the credential is not decrypted")
    path = api.channels_request(
        target.client.app_id, key=key, secret=secret, timestamp=int(time.time())
    )
    request = Request(
        "GET",
        target.url + path,
        {"Accept": "application/json", "User-Agent": f"keyops-verify/{__version__}"},
        timeout=timeout,
    )
    try:
        response = http_transport(request)
    except TransportError as exc:
        return api.Answer("unreachable", str(exc))
    answer = api.judge(response.status, response.body)
    # The server never saw the secret, but its words are foreign text: make sure.
    return api.Answer(answer.word, answer.detail.replace(secret, "[redacted]"))


def call_all(
    targets: Sequence[Target], *, timeout: float, deadline: float, caller: Caller = call
) -> list[api.Answer | None]:
    """Answers in ``targets`` order; None for a call that never started before the deadline.

    Threads are daemons: a server that holds a connection past the deadline cannot hold
    keyops too, and an answer that comes after it is not used. Each call also stops at its own
    timeout (the transport enforces it over the whole exchange).
    """
    end = time.monotonic() + deadline
    gate = threading.Semaphore(PARALLEL)
    lock = threading.Lock()
    answers: list[api.Answer | None] = [None] * len(targets)
    started = [False] * len(targets)

    def work(index: int) -> None:
        with gate:
            left = end - time.monotonic()
            if left <= 0:
                return
            with lock:
                started[index] = True
            answer = caller(targets[index], timeout)
            with lock:
                answers[index] = answer

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(len(targets))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, end - time.monotonic()))
    with lock:
        late = api.Answer("unreachable", f"no answer within the total deadline of {deadline:g} s")
        return [
            answer if answer is not None else (late if was_started else None)
            for answer, was_started in zip(answers, started, strict=True)
        ]


# -- what a result means -----------------------------------------------------------------------
def judge_state(
    target: Target, result: str, detail: str, today: dt.date, rules: Settings
) -> tuple[str, str]:
    """(severity, message) for a result, given the credential's state."""
    cred = target.cred
    name = f"{cred.id} ({cred.state})"
    if result == "skipped":
        return "ok", ""
    if cred.state in ("active", "pending"):
        if result == "live":
            return "ok", ""
        if result == "rejected":
            return "error", (
                f"{name} is rejected by Pusher ({detail}): apps given this key cannot connect. "
                f"Compare its key, secret and app id {target.client.app_id} with the Pusher "
                "dashboard (App Keys): a typo, a secret of another key or app, or key and secret "
                "swapped all look like this"
            )
        return "error", (
            f"{name} could not be checked ({detail}); it must be live. Check the network path "
            "to the API and run keyops verify again"
        )
    if cred.state == "retiring":
        if result == "live":
            return "ok", ""
        if result == "rejected":
            return "warning", (
                f"{name} is rejected by Pusher ({detail}): installs still holding it cannot "
                "connect until they fetch the active key. Was it deleted at Pusher before "
                "keyops retire?"
            )
        return "warning", f"{name} could not be checked ({detail})"
    if cred.state not in ("retired", "revoked") or result == "rejected":
        return "ok", ""  # a retired or revoked key refused by Pusher: deleted, as it must be
    if result != "live":
        return "warning", (
            f"{cred.id} ({cred.state}) could not be checked ({detail}): its deletion at Pusher "
            "is not confirmed; run keyops verify again"
        )
    ended = cred.ended_on()
    since = f" on {ended.isoformat()}" if ended else ""
    if cred.state == "revoked":
        return "error", (
            f"{cred.id} was revoked{since} but is still live at Pusher: the revocation is "
            "incomplete until the key is deleted in the Pusher dashboard (App Keys)"
        )
    removable = rules.removable_from(ended) if ended else None
    if removable is not None and today >= removable:
        return "warning", (
            f"{cred.id} was retired{since} and is still live at Pusher; its tombstone period "
            f"ended on {removable.isoformat()}, so it can be deleted at Pusher now: delete it in "
            "the Pusher dashboard (App Keys), then remove its entry from the file"
        )
    return "warning", (
        f"{cred.id} was retired{since} and is still live at Pusher: nothing serves it any more; "
        "delete it in the Pusher dashboard (App Keys)"
    )


def outcomes(
    targets: Sequence[Target],
    answers: Sequence[api.Answer | None],
    *,
    today: dt.date,
    rules: Settings,
    deadline: float,
) -> list[Outcome]:
    done: list[Outcome] = []
    answered = iter(answers)
    for target in targets:
        if target.skip is not None:
            result, detail = "skipped", target.skip
        else:
            answer = next(answered)
            if answer is None:
                result, detail = (
                    "skipped",
                    f"not called: the total deadline of {deadline:g} s passed",
                )
            else:
                result, detail = answer.word, answer.detail
        severity, message = judge_state(target, result, detail, today, rules)
        done.append(Outcome(target, result, detail, severity, message))
    return done


def findings(done: Sequence[Outcome]) -> list[Finding]:
    return [
        Finding(
            path=o.target.client.path,
            pointer=o.target.cred.pointer,
            rule=RULE,
            severity=Severity(o.severity),
            message=o.message,
            credential_id=o.target.cred.id,
        )
        for o in done
        if o.severity != "ok"
    ]


# -- output ------------------------------------------------------------------------------------
def render_text(plan_: Plan, done: Sequence[Outcome], api_url: str | None) -> str:
    out: list[str] = []
    where = api_url or "https://api-<cluster>.pusher.com"
    for stack in plan_.stacks:
        rows = [o for o in done if o.target.stack == stack]
        out.append(f"verify {stack}: {len(rows)} credential(s) against {where}")
        table = [("CLIENT", "CREDENTIAL", "STATE", "RESULT", "DETAIL")] + [
            (o.target.client.client, o.target.cred.id, o.target.cred.state, o.result, o.detail)
            for o in rows
        ]
        widths = [max(len(row[i]) for row in table) for i in range(4)]
        for row in table:
            cells = [c.ljust(w) for c, w in zip(row[:4], widths, strict=True)]
            out.append("  " + "  ".join([*cells, row[4]]).rstrip())
    for stack in plan_.skipped_stacks:
        out.append(f"verify {stack}: skipped (--skip-stacks)")
    return "\n".join(out) + "\n"


def render_json(
    plan_: Plan, done: Sequence[Outcome], found: Sequence[Finding], checked_at: str
) -> str:
    payload = {
        "checked_at": checked_at,
        "stacks": plan_.stacks,
        "skipped_stacks": plan_.skipped_stacks,
        "results": [
            {
                "stack": o.target.stack,
                "client": o.target.client.client,
                "credential": o.target.cred.id,
                "state": o.target.cred.state,
                "api_url": o.target.url,
                "result": o.result,
                "detail": o.detail,
                "severity": o.severity,
            }
            for o in done
        ],
        "findings": [f.as_json() for f in found],
        "summary": {
            **{
                word: sum(o.result == word for o in done)
                for word in (*verify_cache.RESULTS, "skipped")
            },
            **summarize(found, len({o.target.client.path for o in done})),
        },
    }
    return json.dumps(payload, indent=2) + "\n"


def _md(text: str) -> str:
    """A table cell from text a server may have chosen: no HTML, no table breaks."""
    return cell(text).replace("<", "&lt;").replace(">", "&gt;")


def render_markdown(
    plan_: Plan, done: Sequence[Outcome], found: Sequence[Finding], why: str
) -> str:
    counts = summarize(found, 0)
    verdict = "❌ fails" if counts["errors"] else "✅ passes"
    out = ["## keyops verify", ""]
    if not done:
        out += [f"Nothing to verify: {why}.", ""]
    else:
        out += [
            f"**{verdict}**: {counts['errors']} error(s), {counts['warnings']} warning(s) for "
            f"{len(done)} credential(s). Each key was checked with one signed, read-only call "
            "to the Pusher HTTP API.",
            "",
            "| stack | client | credential | state | result | detail |",
            "|---|---|---|---|---|---|",
        ]
        for o in done:
            out.append(
                f"| {o.target.stack} | {o.target.client.client} | {o.target.cred.id} | "
                f"{o.target.cred.state} | **{o.result}** | {_md(o.detail)} |"
            )
        out.append("")
        out += [f"- {f.severity.value}: {_md(f.message)}" for f in found]
    if plan_.skipped_stacks and plan_.stacks:
        out.append(f"Skipped stacks (--skip-stacks): {', '.join(plan_.skipped_stacks)}.")
    return "\n".join(out).rstrip("\n") + "\n\n"


def remember(root: Path, plan_: Plan, done: Sequence[Outcome], checked_at: str) -> None:
    """Cache what was called for ``keyops status``; a cache that cannot be written only warns."""
    for stack in plan_.stacks:
        fresh = {
            o.target.cred.id: verify_cache.Entry(
                client=o.target.client.client,
                state=o.target.cred.state,
                result=o.result,
                severity=o.severity,
                detail=o.detail,
                checked_at=checked_at,
                api_url=o.target.url,
            )
            for o in done
            if o.target.stack == stack and o.result != "skipped"
        }
        if not fresh:
            continue
        try:
            verify_cache.update(root, stack, fresh, plan_.known[stack])
        except KeyopsError as exc:
            print(
                f"warning: the results were not cached for keyops status: {exc.what}",
                file=sys.stderr,
            )


def verify(args: argparse.Namespace) -> int:
    if not 0 < args.timeout <= 600 or not 0 < args.deadline <= 3600:
        raise UsageError(
            "--timeout must be in (0, 600] and --deadline in (0, 3600] seconds",
            f"The defaults are {DEFAULT_TIMEOUT:g} and {DEFAULT_DEADLINE:g}.",
        )
    api_url = api_base(args.api_url)
    now = parse_now(args.now)
    checked_at = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    root = repo.find_root(args.repo)
    rules = settings.load(root)
    plan_ = plan(args, root, api_url)
    called = [t for t in plan_.targets if t.skip is None]
    answers = call_all(called, timeout=args.timeout, deadline=args.deadline)
    done = outcomes(plan_.targets, answers, today=now.date(), rules=rules, deadline=args.deadline)
    found = findings(done)
    if not plan_.targets:
        why = (
            f"no credential added or changed since {args.base}"
            if args.base
            else "no credential matches the selection"
        )
        if plan_.skipped_stacks and not plan_.stacks:
            why = f"every stack is skipped ({', '.join(plan_.skipped_stacks)})"
    else:
        why = ""
    if args.format == "json":
        sys.stdout.write(render_json(plan_, done, found, checked_at))
    else:
        if not done:
            sys.stdout.write(f"verify: nothing to verify: {why}\n")
        else:
            sys.stdout.write(render_text(plan_, done, api_url))
            sys.stdout.write(
                reporters.render(
                    "text",
                    Report(
                        found,
                        len({o.target.client.path for o in done}),
                        command="verify",
                        what="verified",
                        colour=use_colour(sys.stdout.isatty()),
                    ),
                )
            )
    if args.summary is not None:
        # Appended: every step of the job adds its section to the runner's one summary file.
        append_nofollow(args.summary, render_markdown(plan_, done, found, why).encode("utf-8"))
    remember(root, plan_, done, checked_at)
    results = [o.result for o in done]
    if results and "unreachable" in results and not {"live", "rejected"} & set(results):
        first = next(o for o in done if o.result == "unreachable")
        raise PusherUnreachable(
            f"no call got an answer: every credential is unreachable (first: {first.detail})",
            "Check the network path to the API (outbound HTTPS to api-<cluster>.pusher.com) "
            "or --api-url, then run keyops verify again.",
        )
    return EXIT_FINDINGS if has_errors(found) else EXIT_OK
