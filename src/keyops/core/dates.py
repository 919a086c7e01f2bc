"""Dates and instants: one parser for the files, one meaning of ``--now`` for every command.

In credential and settings files a date is a quoted ``YYYY-MM-DD`` string (sops would turn a
bare YAML date into a timestamp), read with :func:`parse_date`.

``--now`` is the moment a command acts as of, the same for every command: either a date
(``2026-11-27``, meaning 00:00 UTC that day) or an ISO 8601 time (``2026-11-27T12:00:00Z``; a
time without an offset is UTC). Commands that reason in days (lifecycle edits, ``check``,
``status``) use its UTC date; commands that stamp an instant (``build``'s ``iat``) use the
instant itself.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from keyops.core.errors import UsageError

NOW_HELP = (
    "act as of this moment: a date (YYYY-MM-DD, 00:00 UTC) or an ISO 8601 time (default: now)"
)
#: How far past the real clock ``--now`` may record a date without ``--allow-future``.
FUTURE_SLACK = dt.timedelta(days=1)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def today() -> dt.date:
    return utcnow().date()


def parse_date(value: Any) -> dt.date | None:
    """A ``YYYY-MM-DD`` string from a file as a date; None for anything else."""
    if not isinstance(value, str):
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        return None


def as_utc(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def parse_now(
    raw: str | None,
    *,
    option: str = "--now",
    allow_future: bool = True,
    clock: Callable[[], dt.datetime] = utcnow,
) -> dt.datetime:
    """The instant ``--now`` names (UTC), or the real clock's when it is not given.

    With ``allow_future=False`` an instant more than a day after the real clock is refused: a
    command that records a date in a file must not backdate the future by a typo.
    """
    real = clock()
    if raw is None:
        return real
    try:
        if len(raw) == 10:
            value = dt.datetime.combine(dt.date.fromisoformat(raw), dt.time(), dt.UTC)
        else:
            value = as_utc(dt.datetime.fromisoformat(raw))
    except ValueError:
        raise UsageError(
            f"{option} {raw!r} is neither a date nor an ISO 8601 time",
            "Use YYYY-MM-DD (e.g. 2026-11-27) or a time such as 2026-11-27T12:00:00Z.",
        ) from None
    if not allow_future and value > real + FUTURE_SLACK:
        raise UsageError(
            f"{option} {raw} is more than a day after the real clock ({real.date().isoformat()}),"
            " so the date this command records would lie in the future",
            "Check the date, or pass --allow-future if you mean it.",
        )
    return value


def parse_day(raw: str | None, **kwargs: Any) -> dt.date:
    """The UTC date of :func:`parse_now`: what commands that reason in days use."""
    return parse_now(raw, **kwargs).date()
