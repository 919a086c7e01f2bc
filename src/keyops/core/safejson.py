"""Parsing JSON that keyops did not write: from the network, a cache file or a bundle.

``json.loads`` lets several exception types escape on hostile input: ``RecursionError`` for a
document nested a few thousand deep, ``ValueError`` for an integer of more than 4,300 digits,
``UnicodeDecodeError`` for bytes that are not text. And it accepts ``NaN`` and ``Infinity``,
which are not JSON. :func:`parse` turns every one of these into a ``ValueError`` with a short
reason, so a caller handles one exception type and never lets a parser's exception escape.

Deliberately free of other keyops imports: the reference client must stay portable.
"""

from __future__ import annotations

import json
from typing import Any


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse(data: bytes | str) -> Any:
    """The decoded document; ``ValueError`` (with a reason) for anything that is not JSON."""
    try:
        return json.loads(data, parse_constant=_refuse_constant)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    except UnicodeDecodeError:
        raise ValueError("not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc.msg})") from None
    except ValueError as exc:  # an integer too long to convert, or a NaN / Infinity
        raise ValueError(f"not JSON ({exc})") from None
