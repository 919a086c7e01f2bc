"""Options several commands share, defined once so they mean the same everywhere.

- ``--now`` (and ``--allow-future`` for commands that record a date in a file or a bundle);
- ``--endpoint URL`` (repeatable), checked to be an http(s) base URL at parse time;
- ``--stack S`` (repeatable) and ``--all-stacks`` for the commands that decrypt what they can.

Stack and client names are checked for every command in ``keyops.cli.main`` (see
``keyops.store.names``).
"""

from __future__ import annotations

import argparse
import datetime as dt
from urllib.parse import urlsplit

from keyops.core.dates import NOW_HELP, parse_now

ALLOW_FUTURE_HELP = (
    "accept a --now more than a day after the real clock (the dates this command records "
    "would lie in the future)"
)


def add_now(parser: argparse.ArgumentParser, *, records: bool) -> None:
    """``--now``; with ``records`` (the command writes the date down) also ``--allow-future``."""
    parser.add_argument("--now", metavar="WHEN", help=NOW_HELP)
    if records:
        parser.add_argument("--allow-future", action="store_true", help=ALLOW_FUTURE_HELP)


def add_stack_selection(parser: argparse.ArgumentParser) -> None:
    """``--stack`` (repeatable) and ``--all-stacks`` of ``validate`` and ``check``."""
    parser.add_argument(
        "--stack", action="append", metavar="S", help="only this stack (repeatable)"
    )
    parser.add_argument(
        "--all-stacks",
        action="store_true",
        help="every stack must be decrypted here: one no key here can decrypt is an error "
        "(exit 2) instead of being skipped, as CI needs",
    )


def recorded_now(args: argparse.Namespace) -> dt.datetime:
    """The instant a date-recording command acts as of: no further ahead than a day, unless
    ``--allow-future``."""
    return parse_now(args.now, allow_future=bool(getattr(args, "allow_future", False)))


def endpoint_url(value: str) -> str:
    """An argparse type: an http(s) base URL, without a trailing slash."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not an http(s) base URL (e.g. https://keys.example.com)"
        )
    return value.rstrip("/")


def add_endpoint(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument(
        "--endpoint",
        action="append",
        type=endpoint_url,
        metavar="URL",
        help=f"an endpoint base URL (repeatable, tried in the order given; default: {default})",
    )
