"""The last ``keyops verify`` result of each credential, kept on this machine for ``keyops status``.

One file per stack, ``.keyops/verify/<stack>.json`` under the repository root (``.keyops/`` is
git-ignored: the results are this machine's observations, not repository state)::

    {"version": 1, "stack": "dev",
     "credentials": {"web-2026-06": {"client": "web", "state": "active", "result": "live",
                                     "severity": "ok", "detail": "HTTP 200, channels listed",
                                     "checked_at": "2026-11-27T10:00:00Z",
                                     "api_url": "https://api-eu.pusher.com"}}}

It holds no key and no secret: ids, states, the result word and the server's reason. A run
replaces the entries of the credentials it called and keeps the others. The file is read as
hostile input: anything malformed is reported and ignored, never trusted or crashed on.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from keyops.core.atomic import PUBLIC, make_dirs, write_atomic
from keyops.core.text import printable

VERSION = 1
DIRECTORY = Path(".keyops") / "verify"
RESULTS = ("live", "rejected", "unreachable")
SEVERITIES = ("ok", "warning", "error")
#: A cache larger than this is not one keyops wrote.
MAX_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Entry:
    client: str
    state: str
    result: str
    severity: str
    detail: str
    checked_at: str
    api_url: str


def path_for(root: Path, stack: str) -> Path:
    return root / DIRECTORY / f"{stack}.json"


def read(root: Path, stack: str) -> tuple[dict[str, Entry], str | None]:
    """The cached entries by credential id, and a problem (then no entries) or None.

    No file is no problem: nothing was verified here yet.
    """
    path = path_for(root, stack)
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
    except FileNotFoundError:
        return {}, None
    except OSError as exc:
        return {}, f"cannot read it ({exc.strerror or type(exc).__name__})"
    if len(raw) > MAX_BYTES:
        return {}, f"it is larger than {MAX_BYTES} bytes"
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return {}, "it is not JSON"
    if not isinstance(document, dict) or document.get("version") != VERSION:
        return {}, f"it is not a version {VERSION} verify cache"
    items = document.get("credentials")
    if not isinstance(items, dict):
        return {}, "$.credentials is not an object"
    entries: dict[str, Entry] = {}
    for credential_id, item in items.items():
        entry = _entry(item)
        if entry is None:
            return {}, f"$.credentials[{json.dumps(printable(credential_id, 80))}] is malformed"
        entries[credential_id] = entry
    return entries, None


def _entry(item: object) -> Entry | None:
    if not isinstance(item, dict):
        return None
    fields = {name: item.get(name) for name in Entry.__dataclass_fields__}
    if not all(isinstance(value, str) and len(value) <= 400 for value in fields.values()):
        return None
    if fields["result"] not in RESULTS or fields["severity"] not in SEVERITIES:
        return None
    return Entry(**{name: str(value) for name, value in fields.items()})


def update(root: Path, stack: str, fresh: Mapping[str, Entry], keep: Iterable[str]) -> Path:
    """Replace the entries of ``fresh``; keep earlier ones whose id is in ``keep`` (the stack's
    credentials now), so that a credential removed from the file leaves the cache too."""
    earlier, _problem = read(root, stack)
    known = set(keep)
    merged = {cid: entry for cid, entry in earlier.items() if cid in known}
    merged.update(fresh)
    document = {
        "version": VERSION,
        "stack": stack,
        "credentials": {cid: asdict(merged[cid]) for cid in sorted(merged)},
    }
    path = path_for(root, stack)
    make_dirs(path.parent)
    write_atomic(path, (json.dumps(document, indent=2) + "\n").encode(), mode=PUBLIC)
    return path
