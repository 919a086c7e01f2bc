"""``keyops adoption``: the adoption evidence ``keyops check`` and ``keyops retire`` take.

For each credential: the share of installs that still hold it, with the counts, method, window
and sources behind it (docs/adoption.md). Sources:

- ``--from URL`` (repeatable; or a saved ``/metrics`` file): running endpoints. Distinct installs
  when they expose ``keyops_installs``, else request counts (``keyops_served_total``); several
  endpoints are summed.
- ``--from cloudwatch --stack S``: a deployed stack, every region of ``stacks/Pulumi.S.yaml``
  summed: the metric ``Served`` (requests) with ``GetMetricData``, or distinct install hashes with
  Logs Insights (``--distinct``), over the last ``--days`` days. ``--for-change REF`` fetches
  only for the stacks whose change from REF retires a served credential (for CI).
- ``--from versions FILE --stack S --client C``: a bundled client, from active installs per app
  version (CSV) and the client's release records (``keyops release``).

Installs (or requests) that named no credential, or an id the client does not have, are left out
of the denominator and named. A source with no data is named, never counted as zero. The output
is JSON on stdout or ``--out FILE``; a summary goes to stderr.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from keyops.cli.evidence import endpoint, tally, versions
from keyops.cli.evidence.deployment import Deployment
from keyops.cli.evidence.deployment import load as load_deployment
from keyops.core.atomic import write_atomic
from keyops.core.dates import NOW_HELP, parse_now
from keyops.core.errors import EXIT_OK, InputError, UsageError
from keyops.core.model import ClientFile
from keyops.policy.evidence import METHODS, Evidence, Window, dump
from keyops.store import loader, repo
from keyops.store.sources import GitSource, WorktreeSource

CLOUDWATCH, VERSIONS = "cloudwatch", "versions"
DEFAULT_DAYS = 14
MAX_DAYS = 455  # CloudWatch keeps daily data points for 455 days


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--from",
        dest="sources",
        action="append",
        required=True,
        metavar="SOURCE",
        help="an endpoint URL or saved /metrics file (repeatable), or 'cloudwatch', or "
        "'versions' followed by a CSV file",
    )
    parser.add_argument(
        "file", nargs="?", type=Path, metavar="FILE", help="with --from versions: the CSV"
    )
    parser.add_argument("--stack", metavar="S", help="the stack (cloudwatch, versions)")
    parser.add_argument("--client", metavar="C", help="the bundled client (versions)")
    parser.add_argument(
        "--days",
        type=int,
        default=DEFAULT_DAYS,
        metavar="N",
        help=f"cloudwatch: the window, the last N days (default {DEFAULT_DAYS})",
    )
    parser.add_argument(
        "--distinct",
        action="store_true",
        help="cloudwatch: count distinct installs with Logs Insights instead of requests",
    )
    parser.add_argument(
        "--endpoint-url", metavar="URL", help="cloudwatch: another AWS API endpoint (emulators)"
    )
    parser.add_argument(
        "--for-change",
        metavar="REF",
        help="cloudwatch: only for stacks whose change from REF retires a served credential",
    )
    parser.add_argument("--now", metavar="WHEN", help=NOW_HELP)
    parser.add_argument("--out", type=Path, metavar="FILE", help="write here (default: stdout)")


def adoption(args: argparse.Namespace) -> int:
    now = parse_now(args.now).replace(microsecond=0)
    kinds = {
        CLOUDWATCH if s == CLOUDWATCH else VERSIONS if s == VERSIONS else "url"
        for s in args.sources
    }
    _check_usage(args, kinds)
    if CLOUDWATCH in kinds:
        text, summary = from_cloudwatch(args, now)
    elif VERSIONS in kinds:
        text, summary = from_versions(args, now)
    else:
        text, summary = from_endpoints(args, now)
    for line in summary:
        print(line, file=sys.stderr)
    if args.out is None:
        sys.stdout.write(text)
    else:
        write_atomic(args.out, text.encode())
        print(f"wrote {args.out}", file=sys.stderr)
    return EXIT_OK


def _check_usage(args: argparse.Namespace, kinds: set[str]) -> None:
    special = kinds & {CLOUDWATCH, VERSIONS}
    if special and len(args.sources) > 1:
        raise UsageError(
            f"--from {special.pop()} cannot be combined with another --from",
            "Run keyops adoption once per kind of source.",
        )
    if (args.file is not None) != (VERSIONS in kinds):
        raise UsageError(
            "a CSV file goes with --from versions, and only with it",
            "Example: keyops adoption --from versions installs.csv --stack S --client C.",
        )
    cloud_only = {
        "--distinct": args.distinct,
        "--endpoint-url": args.endpoint_url,
        "--for-change": args.for_change,
        "--days": args.days != DEFAULT_DAYS,
    }
    if CLOUDWATCH not in kinds:
        used = [name for name, value in cloud_only.items() if value]
        if used:
            raise UsageError(f"{used[0]} goes with --from cloudwatch", "Remove it.")
    if not 1 <= args.days <= MAX_DAYS:
        raise UsageError(f"--days {args.days} is out of range", f"Use 1 to {MAX_DAYS}.")
    if CLOUDWATCH in kinds and not (args.stack or args.for_change):
        raise UsageError("--from cloudwatch needs --stack S (or --for-change REF)", "")
    if VERSIONS in kinds and not (args.stack and args.client):
        raise UsageError("--from versions needs --stack S and --client C", "")


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _summary(title: str, evidence: dict[str, Evidence], notes: list[str]) -> list[str]:
    lines = [title]
    for ident, item in sorted(evidence.items()):
        sources = ", ".join(s.describe() for s in item.sources)
        lines.append(f"  {ident}: {item.short()} ({sources})")
    if not evidence:
        lines.append("  no credential has evidence")
    lines += [f"  note: {n}" for n in notes]
    return lines


# -- running endpoints -------------------------------------------------------------------------


def from_endpoints(args: argparse.Namespace, now: dt.datetime) -> tuple[str, list[str]]:
    readings = [endpoint.read(source) for source in args.sources]
    use_installs = all(r.has_installs for r in readings)
    notes = [
        f"{r.source} does not expose distinct installs: request counts are used"
        for r in readings
        if not r.has_installs
    ]
    saturated = [s for r in readings for s in r.saturated]
    if use_installs and saturated:
        client, held = saturated[0]
        raise InputError(
            f"the install count of {held} ({client}) reached the endpoint's cap: it is a lower "
            "bound, not evidence",
            "Use --from cloudwatch --distinct, or raise the endpoint's cap.",
        )
    stacks = sorted({s for r in readings for s in r.stacks})
    window = None
    if use_installs:
        seconds = max(r.window_seconds or 0.0 for r in readings)
        window = Window(_iso(now - dt.timedelta(seconds=seconds)), _iso(now))
        method, unit = "endpoint-installs", "installs"
        tallies = [r.installs for r in readings]
    else:
        method, unit = "endpoint-requests", "requests"
        tallies = [r.requests for r in readings]
        notes.append("request counters since each endpoint process started")
    evidence = tally.to_evidence(
        tallies,
        endpoint.merged_ids(readings),
        stack=stacks[0] if len(stacks) == 1 else None,
        method=method,
        unit=unit,
        window=window,
        notes=tuple(notes),
    )
    text = dump(evidence, generated=_iso(now), method=method, window=window, notes=tuple(notes))
    title = f"adoption from {len(readings)} endpoint(s): {METHODS[method]}"
    return text, _summary(title, evidence, [])


# -- CloudWatch ----------------------------------------------------------------------------------


def served_clients(root: Path, stack: str) -> dict[str, tuple[str, ...]]:
    """Each served client of the stack and all its credential ids (cleartext: no key needed)."""
    source = WorktreeSource(root)
    loader.check_stacks(root, source, [stack])
    result = loader.load(root, source, stacks=[stack], decrypt=False)
    model = result.stacks.get(stack)
    clients = model.clients.values() if model else []
    found = {
        c.client: tuple(x.id for x in c.credentials) for c in clients if c.delivery == "served"
    }
    if not found:
        raise InputError(f"stack {stack} has no served client", "Check --stack.")
    return found


def retiring_stacks(root: Path, ref: str) -> list[str]:
    """Stacks in which the change from ``ref`` to the working tree retires a served credential."""
    if ref.startswith("-"):
        raise UsageError(f"--for-change {ref!r} is not a revision", "Pass e.g. origin/main.")
    base = loader.load(root, GitSource(root, ref), decrypt=False)
    head = loader.load(root, WorktreeSource(root), decrypt=False)
    found = set()
    for name, stack in head.stacks.items():
        before = base.stacks.get(name)
        for client in stack.clients.values():
            old = before.clients.get(client.client) if before else None
            if client.delivery != "served" or old is None:
                continue
            for cred in client.in_state("retired"):
                previous = old.by_id(cred.id)
                if previous is not None and previous.state == "retiring":
                    found.add(name)
    return sorted(found)


def from_cloudwatch(args: argparse.Namespace, now: dt.datetime) -> tuple[str, list[str]]:
    root = repo.find_root(args.repo)
    method = "cloudwatch-distinct" if args.distinct else "cloudwatch-requests"
    start = now - dt.timedelta(days=args.days)
    window = Window(_iso(start), _iso(now))
    stacks = [args.stack] if args.stack else []
    if args.for_change:
        changed = retiring_stacks(root, args.for_change)
        stacks = [s for s in changed if not stacks or s in stacks]
        if not stacks:
            note = (
                f"no served credential is retired by the change from {args.for_change}: "
                "nothing fetched"
            )
            text = dump({}, generated=_iso(now), method=method, window=window, notes=(note,))
            return text, [f"adoption: {note}"]
    # Imported here: boto3 is the optional 'aws' extra, needed by this source only.
    from keyops.cli.evidence import cloudwatch

    evidence: dict[str, Evidence] = {}
    summary: list[str] = []
    notes: list[str] = []
    for stack in stacks:
        deployment: Deployment = load_deployment(root, stack)
        clients = served_clients(root, deployment.credentials_stack)
        fetch = cloudwatch.distinct_tallies if args.distinct else cloudwatch.served_tallies
        tallies = fetch(deployment, clients, start, now, endpoint_url=args.endpoint_url)
        empty = [f"{t.name}: {t.note}" for t in tallies if t.note]
        if len(empty) == len(tallies):
            raise InputError(
                f"no adoption data for stack {stack} in any of its regions "
                f"({', '.join(deployment.regions)}) in the last {args.days} days",
                "Check that the endpoint is deployed and writes its metric lines; see "
                "docs/rotation.md.",
            )
        found = tally.to_evidence(
            tallies,
            clients,
            stack=deployment.credentials_stack,
            method=method,
            unit="installs" if args.distinct else "requests",
            window=window,
        )
        clash = sorted(set(found) & set(evidence))
        if clash:
            raise InputError(
                f"credential id {clash[0]} is in more than one of the stacks {', '.join(stacks)}",
                "Run keyops adoption once per stack (--stack S).",
            )
        evidence.update(found)
        notes += empty
        title = (
            f"adoption of stack {stack} from CloudWatch ({METHODS[method]}, summed over "
            f"{', '.join(deployment.regions)}), {window.describe()}:"
        )
        summary += _summary(title, found, empty)
    text = dump(evidence, generated=_iso(now), method=method, window=window, notes=tuple(notes))
    return text, summary


# -- app versions --------------------------------------------------------------------------------


def bundled_client(root: Path, stack: str, name: str) -> ClientFile:
    source = WorktreeSource(root)
    loader.check_stacks(root, source, [stack])
    rel = f"credentials/{stack}/{name}.yaml"
    result = loader.load(root, source, paths=[rel], decrypt=False)
    model = result.stacks.get(stack)
    client = model.clients.get(name) if model else None
    if client is None:
        raise InputError(
            f"{rel} does not exist or fails validation", "Check --client; run keyops validate."
        )
    if client.delivery != "bundled":
        raise UsageError(
            f"{rel} is a {client.delivery} client; --from versions is for bundled clients",
            f"Served clients: keyops adoption --from cloudwatch --stack {stack}.",
        )
    return client


def from_versions(args: argparse.Namespace, now: dt.datetime) -> tuple[str, list[str]]:
    root = repo.find_root(args.repo)
    client = bundled_client(root, args.stack, args.client)
    data = versions.read(args.file)
    evidence, uncovered = versions.evidence(client, data)
    notes = next(iter(evidence.values())).notes if evidence else ()
    text = dump(evidence, generated=_iso(now), method="versions", window=None, notes=notes)
    title = (
        f"adoption of {args.stack}/{args.client} from {args.file.name} ({METHODS['versions']}, "
        f"{len(client.releases)} release record(s)):"
    )
    lines = _summary(title, evidence, list(notes))
    if uncovered:
        lines.append(
            "  record them: "
            + "; ".join(
                f"keyops release --stack {args.stack} --client {args.client} --app-version {v} "
                "--id <credential>"
                for v in uncovered[:3]
            )
        )
    return text, lines
