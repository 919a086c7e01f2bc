"""``keyops status``: each stack's credentials, their state, age, serving share and next step.

It reads only cleartext lifecycle metadata, so it works without any decryption key. Where
``keyops verify`` ran on this machine, its last result per credential is shown too (from
``.keyops/verify/<stack>.json``, which holds no secret).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from dataclasses import asdict, dataclass
from typing import Any

from keyops.cli import verify_cache
from keyops.core.dates import NOW_HELP, parse_day
from keyops.core.errors import EXIT_OK
from keyops.core.model import ClientFile, Credential
from keyops.store import loader, repo, settings
from keyops.store.settings import Settings
from keyops.store.sources import WorktreeSource


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--stack", action="append", metavar="S", help="only this stack (repeatable)"
    )
    parser.add_argument("--now", metavar="WHEN", help=NOW_HELP)
    parser.add_argument("--format", choices=("text", "json"), default="text")


@dataclass(frozen=True)
class Row:
    stack: str
    client: str
    delivery: str
    credential: str
    state: str
    age_days: int | None
    served: str
    days_to_max_age: int | None
    next_action: str
    #: The last ``keyops verify`` result cached on this machine, if any.
    verify: verify_cache.Entry | None = None

    def as_json(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["verify"] = asdict(self.verify) if self.verify else None
        return data

    def verified(self) -> str:
        """``live 2026-11-27``; the state it had then, when it has moved since."""
        entry = self.verify
        if entry is None:
            return "-"
        text = f"{entry.result} {entry.checked_at[:10]}"
        return text if entry.state == self.state else f"{text} (as {entry.state})"


def served_share(client: ClientFile, cred: Credential) -> str:
    if client.delivery == "secret-store":
        return "keyring" if cred.live else "no"
    if client.delivery == "bundled":
        return "bundled" if cred.state == "active" else "no"
    pending = sum(c.rollout_percent or 0 for c in client.in_state("pending"))
    if cred.state == "active":
        return f"{max(0, 100 - pending)}%"
    if cred.state == "pending":
        return f"{cred.rollout_percent}%" if cred.rollout_percent else "0% (no rollout)"
    return "no"


def next_action(client: ClientFile, cred: Credential, today: dt.date, rules: Settings) -> str:
    age = cred.age_days(today)
    if cred.state == "pending":
        # What has to happen before `keyops promote` depends on how the key reaches its users.
        if client.delivery == "bundled":
            return "promote, then build the next release with keyops export"
        if client.delivery == "secret-store":
            return "deploy the auth keyring, move servers to it, then promote"
        if not cred.rollout_percent:
            return "start a rollout (keyops rollout) or promote"
        return "promote when its rollout is healthy"
    if cred.state == "retiring" and cred.retiring_since:
        earliest = rules.earliest_retirement(cred.retiring_since)
        if today < earliest:
            return f"retire from {earliest.isoformat()}"
        return f"retire now, once adoption is at most {rules.max_retire_adoption_percent:g}%"
    if cred.state in ("retired", "revoked"):
        ended = cred.ended_on()
        if ended:
            removable = rules.removable_from(ended)
            if today < removable:
                return f"keep until {removable.isoformat()} (tombstone)"
            return "may be removed from the file; then delete it at Pusher"
        return "-"
    if cred.state == "active" and age is not None:
        left = rules.max_age_days - age
        if left < 0:
            return f"rotate now: {-left} day(s) past the maximum age"
        if age >= rules.warn_age_days:
            return f"rotate within {left} day(s)"
    return "-"


def collect(
    stacks: dict[str, Any],
    today: dt.date,
    rules: Settings,
    verified: dict[str, dict[str, verify_cache.Entry]] | None = None,
) -> list[Row]:
    rows: list[Row] = []
    for stack_name in sorted(stacks):
        stack = stacks[stack_name]
        cached = (verified or {}).get(stack_name, {})
        for client_name in sorted(stack.clients):
            client = stack.clients[client_name]
            for cred in client.credentials:
                age = cred.age_days(today)
                days_left = rules.max_age_days - age if age is not None and cred.live else None
                rows.append(
                    Row(
                        stack=stack_name,
                        client=client_name,
                        delivery=client.delivery,
                        credential=cred.id,
                        state=cred.state,
                        age_days=age,
                        served=served_share(client, cred),
                        days_to_max_age=days_left,
                        next_action=next_action(client, cred, today, rules),
                        verify=cached.get(cred.id),
                    )
                )
    return rows


def render(rows: list[Row]) -> str:
    out: list[str] = []
    for stack in sorted({r.stack for r in rows}):
        # The VERIFIED column appears only where keyops verify has run on this machine.
        verified = any(r.verify for r in rows if r.stack == stack)
        headers: tuple[str, ...] = (
            "CLIENT", "DELIVERY", "CREDENTIAL", "STATE", "AGE", "SERVED", "MAX-AGE IN",
            *(("VERIFIED",) if verified else ()),
            "NEXT",
        )  # fmt: skip
        table = [
            (
                r.client,
                r.delivery,
                r.credential,
                r.state,
                "-" if r.age_days is None else f"{r.age_days}d",
                r.served,
                "-" if r.days_to_max_age is None else f"{r.days_to_max_age}d",
                *((r.verified(),) if verified else ()),
                r.next_action,
            )
            for r in rows
            if r.stack == stack
        ]
        widths = [max(len(h), *(len(row[i]) for row in table)) for i, h in enumerate(headers)]
        out.append(f"stack {stack}")
        out.append(
            "  " + "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()
        )
        for row in table:
            out.append(
                "  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
            )
        out.append("")
    return "\n".join(out)


def status(args: argparse.Namespace) -> int:
    root = repo.find_root(args.repo)
    today = parse_day(args.now)
    source = WorktreeSource(root)
    loader.check_stacks(root, source, args.stack)
    rules = settings.load(root)
    result = loader.load(root, source, stacks=args.stack, decrypt=False)
    verified: dict[str, dict[str, verify_cache.Entry]] = {}
    for name in sorted(result.stacks):
        verified[name], problem = verify_cache.read(root, name)
        if problem:
            print(
                f"warning: {verify_cache.path_for(root, name).relative_to(root)} is ignored: "
                f"{problem}; run keyops verify --stack {name} to replace it",
                file=sys.stderr,
            )
    rows = collect(result.stacks, today, rules, verified)
    unreadable = sorted({f.path for f in result.findings if f.rule == "schema"})
    if args.format == "json":
        payload = {
            "as_of": today.isoformat(),
            "rows": [r.as_json() for r in rows],
            "unreadable": unreadable,
        }
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
    else:
        sys.stdout.write(render(rows) if rows else "no credentials found\n")
        for path in unreadable:
            print(
                f"warning: {path} is not shown: it fails validation (run keyops validate)",
                file=sys.stderr,
            )
    return EXIT_OK
