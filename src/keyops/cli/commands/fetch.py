"""``keyops fetch``: run the reference client once, the way an app does at start-up.

It reads the bootstrap config (``keyops client-config`` output), asks the endpoints in order,
verifies the answer against the pinned keys, and prints the credential it would connect to
Pusher with and where it came from: an endpoint URL, ``cache`` or ``bundled``. Failed attempts
are listed on stderr. Exit 0 with a usable key, 1 with none, 2 when the config is unusable.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from keyops.cli import options
from keyops.client import config as client_config
from keyops.client.cache import Cache
from keyops.client.fetcher import Attempt, Fetcher, Policy, Result
from keyops.client.token import Identity, new_install_id
from keyops.core.errors import EXIT_OK, NothingUsable, UsageError


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        required=True,
        type=Path,
        metavar="FILE",
        help="the bootstrap JSON from 'keyops client-config'",
    )
    options.add_endpoint(parser, "the config's endpoints")
    parser.add_argument(
        "--cache",
        type=Path,
        metavar="PATH",
        help="the last-known-good cache file (created 0600; default: none)",
    )
    parser.add_argument(
        "--app-version",
        default="0.0.0",
        metavar="V",
        help="the app's semantic version (default 0.0.0)",
    )
    parser.add_argument(
        "--install-id",
        metavar="ID",
        help="8-64 chars of [A-Za-z0-9_-] (default: a new random id per run)",
    )
    parser.add_argument(
        "--held", metavar="ID", help="the credential id the app holds now (default: the cached one)"
    )
    parser.add_argument(
        "--timeout", type=float, default=3.0, metavar="S", help="seconds per attempt (default 3)"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        metavar="N",
        help="passes over the endpoint list before falling back (default 3)",
    )
    parser.add_argument(
        "--refresh",
        action="store_true",
        help="ask the endpoints even when the cache is still fresh",
    )
    parser.add_argument("--format", choices=("text", "json"), default="text")


def describe(attempt: Attempt) -> str:
    return f"{attempt.url}: {attempt.outcome} ({attempt.detail})"


def render_text(result: Result) -> str:
    rows = [
        ("credential_id", result.credential_id),
        ("key", result.key),
        ("cluster", result.cluster),
        ("bundle_version", "-" if result.bundle_version is None else str(result.bundle_version)),
        ("source", result.source + (" (every endpoint failed)" if result.stale else "")),
    ]
    return "".join(f"{name:<15}{value}\n" for name, value in rows)


def render_json(result: Result) -> str:
    document = {
        "credential_id": result.credential_id,
        "key": result.key,
        "cluster": result.cluster,
        "bundle_version": result.bundle_version,
        "source": result.source,
        "stale": result.stale,
        "attempts": [
            {"url": a.url, "ok": a.ok, "outcome": a.outcome, "detail": a.detail}
            for a in result.attempts
        ],
        "notes": list(result.notes),
    }
    return json.dumps(document, indent=2) + "\n"


def fetch(args: argparse.Namespace) -> int:
    if args.timeout <= 0 or args.rounds < 1:
        raise UsageError("--timeout must be > 0 and --rounds >= 1", "")
    config = client_config.load(args.config)
    if args.endpoint:
        config = dataclasses.replace(config, endpoints=tuple(args.endpoint))
    identity = Identity(args.app_version, args.install_id or new_install_id(), args.held)
    fetcher = Fetcher(
        config,
        identity,
        cache=Cache(args.cache) if args.cache else None,
        policy=Policy(attempt_timeout=args.timeout, max_rounds=args.rounds),
    )
    try:
        result = fetcher.refresh() if args.refresh else fetcher.get()
    except NothingUsable as exc:
        for attempt in exc.attempts:
            print(f"attempt failed: {describe(attempt)}", file=sys.stderr)
        for note in exc.notes:
            print(f"note: {note}", file=sys.stderr)
        raise
    for attempt in result.attempts:
        if not attempt.ok:
            print(f"attempt failed: {describe(attempt)}", file=sys.stderr)
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    sys.stdout.write(render_json(result) if args.format == "json" else render_text(result))
    return EXIT_OK
