"""``keyops adoption``: turn the endpoint's /metrics into the ``--adoption`` file of keyops check.

For each credential id, the percentage of credential requests whose app said it *held* that
credential (the ``held`` claim), among the requests that said what they held. Several ``--from``
sources (one per region) are summed. Requests with no ``held`` claim are left out of the share:
they carry no evidence either way. Each install asks at start-up and every ``refresh_after``, so
the request share approximates the share of active installs.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

from keyops.core.atomic import write_atomic
from keyops.core.errors import EXIT_OK, InputError

SERVED_RE = re.compile(r"^keyops_served_total\{(?P<labels>[^}]*)\}\s+(?P<value>[0-9.eE+]+)\s*$")
LABEL_RE = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
NOT_IDS = ("none", "other")
TIMEOUT_SECONDS = 10.0


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--from",
        dest="sources",
        action="append",
        required=True,
        metavar="URL",
        help="an endpoint base URL or /metrics URL, or a saved metrics file (repeatable)",
    )
    parser.add_argument("--out", type=Path, metavar="FILE", help="write here (default: stdout)")


def fetch(source: str) -> str:
    if not source.startswith(("http://", "https://")):
        try:
            return Path(source).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(
                f"--from {source} cannot be read: {exc}", "Pass a URL or file."
            ) from None
    url = source if source.rstrip("/").endswith("/metrics") else source.rstrip("/") + "/metrics"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as answer:  # noqa: S310
            text: str = answer.read().decode("utf-8")
            return text
    except (urllib.error.URLError, OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "reason", exc)
        raise InputError(
            f"cannot read metrics from {url}: {reason}", "Check the URL and that it is up."
        ) from None


def parse(text: str) -> Counter[tuple[str, str, str]]:
    """``(client, served credential, held) -> count`` from Prometheus text."""
    counts: Counter[tuple[str, str, str]] = Counter()
    for line in text.splitlines():
        match = SERVED_RE.match(line.strip())
        if not match:
            continue
        labels = dict(LABEL_RE.findall(match["labels"]))
        key = (labels.get("client", ""), labels.get("credential", ""), labels.get("held", ""))
        counts[key] += int(float(match["value"]))
    return counts


def shares(counts: Counter[tuple[str, str, str]]) -> dict[str, float]:
    reporting: Counter[str] = Counter()
    held_by: Counter[tuple[str, str]] = Counter()
    ids: set[tuple[str, str]] = set()
    for (client, credential, held), value in counts.items():
        ids.add((client, credential))
        if held == "none":
            continue
        reporting[client] += value
        if held not in NOT_IDS:
            held_by[(client, held)] += value
            ids.add((client, held))
    out: dict[str, float] = {}
    for client, credential in sorted(ids):
        total = reporting[client]
        if total:
            out[credential] = round(100.0 * held_by[(client, credential)] / total, 3)
    return out


def adoption(args: argparse.Namespace) -> int:
    counts: Counter[tuple[str, str, str]] = Counter()
    for source in args.sources:
        counts.update(parse(fetch(source)))
    result = shares(counts)
    text = json.dumps(result, indent=2, sort_keys=True) + "\n"
    if args.out is None:
        sys.stdout.write(text)
        return EXIT_OK
    write_atomic(args.out, text.encode())
    print(f"wrote adoption of {len(result)} credential(s) to {args.out}", file=sys.stderr)
    return EXIT_OK
