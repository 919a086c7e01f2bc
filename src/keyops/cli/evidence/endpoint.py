"""Adoption from running endpoints' ``/metrics`` (``keyops serve``, or a saved copy).

When the endpoint exposes distinct installs (``keyops_installs``, see
:mod:`keyops.endpoint.installs`) the evidence counts installs; an endpoint without them is read
as before, from ``keyops_served_total`` request counts, and the evidence says so.
"""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from keyops.cli.evidence.tally import Tally
from keyops.core.errors import InputError
from keyops.endpoint import installs

TIMEOUT_SECONDS = 10.0
MAX_BYTES = 16 * 1024 * 1024
SAMPLE_RE = re.compile(
    r"^(?P<name>[a-z_]+)\{(?P<labels>[^}]*)\}\s+(?P<value>[0-9]+(?:\.[0-9]+)?(?:[eE]\+?[0-9]+)?)\s*$"
)
LABEL_RE = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
SERVED_METRIC = "keyops_served_total"


@dataclass
class Metrics:
    """What one ``/metrics`` text says, by stack."""

    source: str
    installs: Tally
    requests: Tally
    ids: dict[str, set[str]] = field(default_factory=dict)
    stacks: set[str] = field(default_factory=set)
    window_seconds: float | None = None
    saturated: list[tuple[str, str]] = field(default_factory=list)
    has_installs: bool = False


def fetch(source: str) -> str:
    if not source.startswith(("http://", "https://")):
        try:
            with open(source, "rb") as handle:
                data = handle.read(MAX_BYTES + 1)
            if len(data) > MAX_BYTES:
                raise InputError(f"--from {source} is larger than {MAX_BYTES} bytes", "")
            return data.decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(
                f"--from {source} cannot be read: {exc}", "Pass a URL or file."
            ) from None
    url = source if source.rstrip("/").endswith("/metrics") else source.rstrip("/") + "/metrics"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as answer:  # noqa: S310
            body: bytes = answer.read(MAX_BYTES + 1)
            if len(body) > MAX_BYTES:
                raise InputError(f"{url} answered more than {MAX_BYTES} bytes", "")
            return body.decode("utf-8")
    except (urllib.error.URLError, OSError, UnicodeDecodeError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise InputError(
            f"cannot read metrics from {url}: {reason}", "Check the URL and that it is up."
        ) from None


def parse(text: str, source: str) -> Metrics:
    """The counts of one ``/metrics`` text; unknown lines are ignored, hostile ones too."""
    out = Metrics(source, Tally(source), Tally(source))
    for line in text.splitlines():
        match = SAMPLE_RE.match(line.strip())
        if not match:
            continue
        try:
            value = int(float(match["value"]))
        except (ValueError, OverflowError):
            continue
        labels = dict(LABEL_RE.findall(match["labels"]))
        name, client, held = match["name"], labels.get("client", ""), labels.get("held", "")
        if labels.get("stack"):
            out.stacks.add(labels["stack"])
        if name == SERVED_METRIC:
            ids = out.ids.setdefault(client, set())
            ids.add(labels.get("credential", ""))
            if held == installs.UNKNOWN:
                out.requests.unknown[client] += value
            elif held != installs.NONE:
                ids.add(held)
                out.requests.held[(client, held)] += value
                out.requests.total[client] += value
        elif name == installs.INSTALLS_METRIC and held not in installs.SKIP:
            out.has_installs = True
            out.ids.setdefault(client, set()).add(held)
            out.installs.held[(client, held)] += value
        elif name == installs.REPORTING_METRIC:
            out.installs.total[client] += value
        elif name == installs.UNKNOWN_METRIC:
            out.installs.unknown[client] += value
        elif name == installs.SATURATED_METRIC and value and held not in installs.SKIP:
            out.saturated.append((client, held))
        elif name == installs.WINDOW_METRIC:
            out.window_seconds = float(value)
    return out


def read(source: str) -> Metrics:
    label = source if source.startswith(("http://", "https://")) else Path(source).name
    return parse(fetch(source), f"endpoint {label}")


def merged_ids(readings: list[Metrics]) -> dict[str, set[str]]:
    ids: dict[str, set[str]] = {}
    for reading in readings:
        for client, found in reading.ids.items():
            ids.setdefault(client, set()).update(i for i in found if i)
    return ids


def counts(readings: list[Metrics], kind: str) -> list[Tally]:
    return [r.installs if kind == "installs" else r.requests for r in readings]
