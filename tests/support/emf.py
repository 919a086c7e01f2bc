"""Checking CloudWatch Embedded Metric Format lines against the specification.

:func:`emf_document` validates one line with the JSON Schema of the envelope
(tests/fixtures/emf/envelope.schema.json) and then the rules JSON Schema cannot express: every
dimension a directive names is a root member holding a non-empty ASCII string of at most 1024
characters, and every metric it names is a root member holding a number or an array of at most
100 numbers.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import jsonschema

SCHEMA_FILE = Path(__file__).resolve().parents[1] / "fixtures" / "emf" / "envelope.schema.json"
_VALIDATOR = jsonschema.Draft202012Validator(json.loads(SCHEMA_FILE.read_text()))


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def emf_problems(line: str) -> list[str]:
    """Why ``line`` is not a valid EMF log event (empty when it is)."""
    if "\n" in line:
        return ["an EMF log event is one line"]
    try:
        document = json.loads(line)
    except ValueError:
        return ["not JSON"]
    problems = [
        f"{'/'.join(map(str, e.absolute_path)) or '$'}: {e.message}"
        for e in _VALIDATOR.iter_errors(document)
    ]
    if problems:
        return problems
    for directive in document["_aws"]["CloudWatchMetrics"]:
        for dimension_set in directive["Dimensions"]:
            for name in dimension_set:
                value = document.get(name)
                if not (isinstance(value, str) and 0 < len(value) <= 1024 and value.isascii()):
                    problems.append(f"dimension {name!r} is not a string member: {value!r}")
        for metric in directive["Metrics"]:
            value = document.get(metric["Name"])
            values = value if isinstance(value, list) else [value]
            if not (values and len(values) <= 100 and all(map(_number, values))):
                problems.append(f"metric {metric['Name']!r} is not a number member: {value!r}")
    return problems


def emf_document(line: str) -> dict[str, Any]:
    """The parsed line, after asserting that it is valid EMF."""
    problems = emf_problems(line)
    assert problems == [], problems
    document: dict[str, Any] = json.loads(line)
    return document
