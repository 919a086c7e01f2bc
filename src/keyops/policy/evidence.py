"""The adoption file: how many installs still use each credential, and how that is known.

``keyops check --adoption FILE`` and ``keyops retire --adoption FILE`` read it; ``keyops
adoption`` writes it (docs/adoption.md). Two forms are accepted:

- the bare form ``{"<credential id>": percent}``: a share with nothing behind it;
- the evidence form (``"format": "keyops-adoption/2"``): per credential the share, the counts it
  comes from (``count`` of ``total`` installs or requests), the method and window used, and the
  count of every source (each region, endpoint or versions file) so a reviewer can check it.

The adoption rule prints this evidence behind its decision. Everything here is read as hostile
input: any problem is an :class:`~keyops.core.errors.InputError` naming the JSON path.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keyops.core import patterns
from keyops.core.errors import InputError

FORMAT = "keyops-adoption/2"
UNITS = ("installs", "requests")
#: What each method counts, in words (the file carries the short name).
METHODS = {
    "cloudwatch-requests": "answers by held credential from the CloudWatch metric Served",
    "cloudwatch-distinct": "distinct install hashes from CloudWatch Logs Insights count_distinct",
    "endpoint-installs": "distinct installs from the endpoint's /metrics (keyops_installs)",
    "endpoint-requests": "answers by held credential from the endpoint's /metrics",
    "versions": "active installs per app version, matched to release records",
}
MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_ITEMS = 1000
MAX_TEXT = 300
ID_RE = patterns.CREDENTIAL_ID
STACK_RE = re.compile(r"[a-z][a-z0-9-]{1,30}")
#: Rounding of percentages in files (and the tolerance between percent and count/total).
DECIMALS = 3


@dataclass(frozen=True)
class Source:
    """One source's numbers: a region, an endpoint, a versions file."""

    name: str
    count: float | None = None
    total: float | None = None
    note: str | None = None

    def describe(self) -> str:
        if self.note:
            return f"{self.name}: {self.note}"
        if self.count is not None and self.total is not None:
            return f"{self.name} {_num(self.count)}/{_num(self.total)}"
        return self.name

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"source": self.name}
        for name in ("count", "total", "note"):
            if getattr(self, name) is not None:
                out[name] = _plain(getattr(self, name))
        return out


@dataclass(frozen=True)
class Window:
    start: str
    end: str

    def describe(self) -> str:
        return f"{self.start} to {self.end}"


@dataclass(frozen=True)
class Evidence:
    """The share of installs (or requests) that still hold one credential, and its grounds."""

    percent: float
    method: str | None = None
    unit: str | None = None
    count: float | None = None
    total: float | None = None
    window: Window | None = None
    stack: str | None = None
    client: str | None = None
    sources: tuple[Source, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def of_what(self) -> str:
        return "requests" if self.unit == "requests" else "installs"

    def applies_to(self, stack: str, client: str) -> bool:
        return self.stack in (None, stack) and self.client in (None, client)

    def describe(self) -> str:
        """The evidence in one line: numbers, method, window and each source's numbers."""
        if self.method is None and self.count is None and not self.sources:
            return "a bare percentage, with no method, window or source behind it"
        parts = []
        if self.count is not None and self.total is not None:
            parts.append(f"{_num(self.count)} of {_num(self.total)} {self.of_what}")
        if self.method is not None:
            parts.append(METHODS.get(self.method, self.method))
        parts.append(self.window.describe() if self.window else "no window given")
        if self.sources:
            parts.append("sources: " + ", ".join(s.describe() for s in self.sources))
        parts.extend(self.notes)
        return "; ".join(parts)

    def short(self) -> str:
        """For the one-line change summary: ``0.4% (12 of 3000 installs, cloudwatch-distinct)``."""
        if self.count is None or self.total is None:
            return f"{self.percent:g}%"
        how = f", {self.method}" if self.method else ""
        return f"{self.percent:g}% = {_num(self.count)} of {_num(self.total)} {self.of_what}{how}"

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in ("stack", "client", "percent", "unit", "count", "total", "method"):
            if getattr(self, name) is not None:
                out[name] = _plain(getattr(self, name))
        if self.window is not None:
            out["window"] = {"start": self.window.start, "end": self.window.end}
        if self.sources:
            out["sources"] = [s.as_json() for s in self.sources]
        if self.notes:
            out["notes"] = list(self.notes)
        return out


def evidence_of(value: float | Evidence) -> Evidence:
    """Bare shares (as older callers pass them) as evidence with nothing behind them."""
    return value if isinstance(value, Evidence) else Evidence(percent=float(value))


def share(count: float, total: float) -> float:
    return round(100.0 * count / total, DECIMALS) if total else 0.0


def _plain(value: Any) -> Any:
    """Whole counts as JSON integers (``3``, not ``3.0``)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _num(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,.3f}"


# -- writing -----------------------------------------------------------------------------------


def dump(
    evidence: Mapping[str, Evidence],
    *,
    generated: str,
    method: str,
    window: Window | None,
    notes: tuple[str, ...] = (),
) -> str:
    """The evidence form as JSON text (sorted, stable, ends with a newline)."""
    doc: dict[str, Any] = {"format": FORMAT, "generated": generated, "method": method}
    if window is not None:
        doc["window"] = {"start": window.start, "end": window.end}
    if notes:
        doc["notes"] = list(notes)
    doc["credentials"] = {key: evidence[key].as_json() for key in sorted(evidence)}
    return json.dumps(doc, indent=2) + "\n"


# -- reading -----------------------------------------------------------------------------------


def load_adoption(path: Path) -> dict[str, Evidence]:
    """``--adoption FILE``: credential id -> evidence (either form)."""
    label = f"--adoption {path}"
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise InputError(f"{label} does not exist", "Check the path.") from None
    except OSError as exc:
        raise InputError(
            f"{label} cannot be read: {exc.strerror or exc}", "Check the file."
        ) from None
    if len(data) > MAX_FILE_BYTES:
        raise InputError(f"{label} is larger than {MAX_FILE_BYTES} bytes", _FIX)
    try:
        document = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise InputError(f"{label} is not UTF-8 text", _FIX) from None
    except RecursionError:
        raise InputError(f"{label} is nested too deeply", _FIX) from None
    except ValueError as exc:
        line = getattr(exc, "lineno", "?")
        raise InputError(f"{label} is not valid JSON (line {line})", _FIX) from None
    return parse_adoption(document, label)


_FIX = 'Use the file keyops adoption writes, or {"<credential id>": percent}.'


def parse_adoption(document: Any, label: str) -> dict[str, Evidence]:
    if not isinstance(document, dict):
        raise InputError(
            f"{label} must be a JSON object {{credential_id: percent}} or keyops adoption output",
            'Example: {"ios-2026-05": 0.4}.',
        )
    if "format" not in document:
        return {
            str(key): Evidence(percent=_percent(value, label, key))
            for key, value in document.items()
        }
    return _parse_evidence(document, label)


def _percent(value: Any, label: str, key: str) -> float:
    if not _is_number(value) or not 0 <= value <= 100:
        raise InputError(
            f"{label}: {key!r} has {_shown(value)}; percentages are numbers 0..100",
            "Fix the value.",
        )
    return float(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class _Reader:
    def __init__(self, label: str) -> None:
        self.label = label

    def fail(self, where: str, problem: str) -> InputError:
        return InputError(f"{self.label} at {where}: {problem}", _FIX)

    def obj(self, value: Any, where: str, allowed: frozenset[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(where, "must be a JSON object")
        unknown = sorted(set(value) - allowed)
        if unknown:
            raise self.fail(f"{where}.{unknown[0]}", "is not a known field")
        return value

    def text(self, value: Any, where: str, pattern: re.Pattern[str] | None = None) -> str:
        if (
            not isinstance(value, str)
            or not value
            or len(value) > MAX_TEXT
            or not value.isprintable()
            or (pattern is not None and not pattern.fullmatch(value))
        ):
            raise self.fail(where, f"must be a short printable string, got {_shown(value)}")
        return value

    def count(self, value: Any, where: str) -> float | None:
        if value is None:
            return None
        if not _is_number(value) or value < 0 or value > 1e15:
            raise self.fail(where, f"must be a number from 0, got {_shown(value)}")
        return float(value)

    def items(self, value: Any, where: str) -> list[Any]:
        if not isinstance(value, list) or len(value) > MAX_ITEMS:
            raise self.fail(where, f"must be a list of at most {MAX_ITEMS} items")
        return value

    def window(self, value: Any, where: str) -> Window | None:
        if value is None:
            return None
        data = self.obj(value, where, frozenset({"start", "end"}))
        return Window(
            self.text(data.get("start"), f"{where}.start"),
            self.text(data.get("end"), f"{where}.end"),
        )


def _parse_evidence(document: dict[str, Any], label: str) -> dict[str, Evidence]:
    r = _Reader(label)
    top = r.obj(
        document,
        "$",
        frozenset({"format", "generated", "method", "window", "notes", "credentials"}),
    )
    if top["format"] != FORMAT:
        raise r.fail("$.format", f"is {_shown(top['format'])}; this keyops reads {FORMAT!r}")
    method = r.text(top["method"], "$.method") if "method" in top else None
    window = r.window(top.get("window"), "$.window")
    notes = tuple(
        r.text(n, f"$.notes[{i}]") for i, n in enumerate(r.items(top.get("notes", []), "$.notes"))
    )
    credentials = top.get("credentials")
    if not isinstance(credentials, dict) or len(credentials) > MAX_ITEMS:
        raise r.fail("$.credentials", f"must be an object of at most {MAX_ITEMS} credential ids")
    out: dict[str, Evidence] = {}
    for key, value in credentials.items():
        where = f"$.credentials.{key}"
        r.text(key, where, ID_RE)
        out[key] = _parse_one(r, value, where, method, window, notes)
    return out


def _parse_one(
    r: _Reader,
    value: Any,
    where: str,
    method: str | None,
    window: Window | None,
    notes: tuple[str, ...],
) -> Evidence:
    allowed = frozenset(
        {
            "stack",
            "client",
            "percent",
            "unit",
            "count",
            "total",
            "method",
            "window",
            "sources",
            "notes",
        }
    )
    data = r.obj(value, where, allowed)
    if "percent" not in data:
        raise r.fail(f"{where}.percent", "is missing")
    percent = data["percent"]
    if not _is_number(percent) or not 0 <= percent <= 100:
        raise r.fail(f"{where}.percent", f"must be a number 0..100, got {_shown(percent)}")
    unit = data.get("unit")
    if unit is not None and unit not in UNITS:
        raise r.fail(f"{where}.unit", f"must be one of {', '.join(UNITS)}")
    count, total = (
        r.count(data.get("count"), f"{where}.count"),
        r.count(data.get("total"), f"{where}.total"),
    )
    if (count is None) != (total is None):
        raise r.fail(where, "count and total go together")
    if count is not None and total is not None:
        if count > total:
            raise r.fail(where, f"count {_num(count)} is more than total {_num(total)}")
        if abs(share(count, total) - percent) > 10**-DECIMALS:
            raise r.fail(
                f"{where}.percent", f"is {percent:g} but count/total gives {share(count, total):g}"
            )
    sources = []
    for i, item in enumerate(r.items(data.get("sources", []), f"{where}.sources")):
        at = f"{where}.sources[{i}]"
        s = r.obj(item, at, frozenset({"source", "count", "total", "note"}))
        sources.append(
            Source(
                r.text(s.get("source"), f"{at}.source"),
                r.count(s.get("count"), f"{at}.count"),
                r.count(s.get("total"), f"{at}.total"),
                r.text(s["note"], f"{at}.note") if "note" in s else None,
            )
        )
    own_notes = tuple(
        r.text(n, f"{where}.notes[{i}]")
        for i, n in enumerate(r.items(data.get("notes", []), f"{where}.notes"))
    )
    return Evidence(
        percent=float(percent),
        method=r.text(data["method"], f"{where}.method") if "method" in data else method,
        unit=unit,
        count=count,
        total=total,
        window=r.window(data["window"], f"{where}.window") if "window" in data else window,
        stack=r.text(data["stack"], f"{where}.stack", STACK_RE) if "stack" in data else None,
        client=r.text(data["client"], f"{where}.client", ID_RE) if "client" in data else None,
        sources=tuple(sources),
        notes=own_notes or notes,
    )
