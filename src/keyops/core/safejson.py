"""Parsing JSON that keyops did not write: from the network, a cache file or a bundle.

``json.loads`` lets several exception types escape on hostile input: ``RecursionError`` for a
document nested a few thousand deep, ``ValueError`` for an integer of more than 4,300 digits,
``UnicodeDecodeError`` for bytes that are not text. And it accepts ``NaN`` and ``Infinity``,
which are not JSON. :func:`parse` turns every one of these into a ``ValueError`` whose message
says why (``not JSON (nested too deeply)``), so a caller handles one exception type and never
lets a parser's exception escape.

Deliberately free of other keyops imports: the reference client must stay portable.
"""

from __future__ import annotations

import json
from typing import Any

#: CPython refuses to convert longer digit strings (sys.get_int_max_str_digits), with a message
#: that tells the user to call a Python function; this one says what is wrong instead.
MAX_DIGITS = 4300


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"not JSON ({name})")


def _integer(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_DIGITS:
        raise ValueError(f"not JSON (a number longer than {MAX_DIGITS} digits)")
    return int(digits)


def parse(data: bytes | str) -> Any:
    """The decoded document; ``ValueError("not JSON (<why>)")`` for anything that is not JSON.

    For a syntax error the ``ValueError``'s ``__cause__`` is the ``json.JSONDecodeError``, whose
    ``lineno`` and ``colno`` say where.
    """
    try:
        return json.loads(data, parse_constant=_refuse_constant, parse_int=_integer)
    except RecursionError:
        raise ValueError("not JSON (nested too deeply)") from None
    except UnicodeDecodeError:
        raise ValueError("not JSON (not UTF-8)") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc.msg})") from exc
