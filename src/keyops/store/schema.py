"""JSON Schema (2020-12) validation of credential and stack files, with readable messages.

The published schemas accept ``ENC[...]`` for encrypted fields, so editors can validate the
encrypted file as you type. When keyops validates *decrypted* content it swaps the ``encrypted``
definition for ``false``, so secrets must then be in their clear format. Messages never echo a
value of a field marked ``x-keyops-secret``.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from keyops.store.yamlload import child_pointer

CREDENTIAL_SCHEMA = "credential-file.schema.json"
STACK_SCHEMA = "stack-file.schema.json"


@cache
def load_schema(name: str) -> dict[str, Any]:
    text = resources.files("keyops").joinpath("schemas", name).read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


@cache
def _validator(name: str, strict: bool, file_stem: str | None) -> Draft202012Validator:
    schema = copy.deepcopy(load_schema(name))
    if strict:
        schema["$defs"]["encrypted"] = False
    if file_stem is not None:
        field = "client" if name == CREDENTIAL_SCHEMA else "stack"
        prop = dict(schema["properties"][field])
        schema["properties"][field] = {
            "allOf": [prop, {"const": file_stem, "x-keyops-const": field}]
        }
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def pointer_of(error: ValidationError) -> str:
    pointer = "$"
    for part in error.absolute_path:
        pointer = child_pointer(pointer, part)
    return pointer


def _is_secret(error: ValidationError) -> bool:
    return bool(isinstance(error.schema, dict) and error.schema.get("x-keyops-secret"))


def _leaf_errors(error: ValidationError) -> list[ValidationError]:
    """Descend anyOf/oneOf: keep the branch that is not the ``false`` encrypted placeholder."""
    if error.validator in ("anyOf", "oneOf") and error.context:
        real = [e for e in error.context if not _is_encrypted_branch(e)]
        chosen = real or list(error.context)
        out: list[ValidationError] = []
        for sub in chosen:
            out.extend(_leaf_errors(sub))
        return out
    if error.validator == "allOf" and error.context:
        out = []
        for sub in error.context:
            out.extend(_leaf_errors(sub))
        return out
    return [error]


def _is_encrypted_branch(error: ValidationError) -> bool:
    """True for the error of the ``ENC[...]`` alternative (or its ``false`` strict form)."""
    if error.validator is None or error.message.startswith("False schema"):
        return True
    schema = error.schema if isinstance(error.schema, dict) else {}
    return str(schema.get("pattern", "")).startswith("^ENC")


def _state_of(error: ValidationError) -> str | None:
    """The state of the credential whose branch produced this error, if any."""
    instance = error.instance
    if isinstance(instance, dict) and isinstance(instance.get("state"), str):
        return str(instance["state"])
    parent = error.parent
    while parent is not None:
        if isinstance(parent.instance, dict) and isinstance(parent.instance.get("state"), str):
            return str(parent.instance["state"])
        parent = parent.parent
    return None


def _resolve(document: Any, path: list[Any]) -> Any:
    node = document
    for part in path:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return None
    return node


def _message(error: ValidationError, file_stem: str | None, document: Any) -> str:
    schema = error.schema if isinstance(error.schema, dict) else {}
    custom = schema.get("x-keyops-message")
    validator = error.validator
    field = error.absolute_path[-1] if error.absolute_path else None
    if validator == "required":
        required: list[str] = list(error.validator_value)  # type: ignore[arg-type]
        instance: Any = error.instance
        missing = [name for name in required if name not in instance]
        names = ", ".join(repr(n) for n in missing)
        in_branch = "then" in error.relative_schema_path or "then" in error.schema_path
        state = _state_of(error) if in_branch else None
        if state:
            return f"state {state!r} requires {names}"
        if "app_auth" in missing and in_branch:
            return "a served client needs an app_auth list (the HMAC secrets its builds sign with)"
        return f"missing required field {names}"
    if validator == "not" and schema.get("x-keyops-forbidden"):
        if "additionalProperties" in error.schema_path:
            return f"unknown field {field!r}; remove it or check its spelling"
        if field == "app_auth":
            return "app_auth is only for served clients; remove it"
        owner = _resolve(document, list(error.absolute_path)[:-1])
        state = owner.get("state") if isinstance(owner, dict) else None
        if isinstance(state, str):
            return f"field {field!r} is not allowed when state is {state!r}"
        return f"field {field!r} is not allowed here"
    if validator == "const" and schema.get("x-keyops-const"):
        what = schema["x-keyops-const"]
        place = "file name" if what == "client" else "directory name"
        return (
            f"{what} is {error.instance!r} but the {place} says {file_stem!r}; they must be equal"
        )
    if validator == "format" and error.validator_value == "date":
        return f'{error.instance!r} is not a calendar date; use a real day, quoted: "YYYY-MM-DD"'
    if custom:
        if _is_secret(error):
            return str(custom)
        return (
            f"{error.instance!r} {custom}"
            if not isinstance(error.instance, (dict, list))
            else str(custom)
        )
    if validator == "enum":
        options = ", ".join(repr(v) for v in error.validator_value)  # type: ignore[union-attr]
        return f"{error.instance!r} is not one of {options}"
    if validator == "type":
        return f"must be of type {error.validator_value}, not {type(error.instance).__name__}"
    if validator == "minItems":
        return f"must list at least {error.validator_value} item(s)"
    if validator == "format":
        return f"{error.instance!r} is not a valid {error.validator_value}"
    if _is_secret(error):
        return f"invalid value ({validator})"
    return str(error.message)


def validate(
    document: Any, schema_name: str, *, strict: bool, file_stem: str | None
) -> list[tuple[str, str]]:
    """Return ``(pointer, message)`` for every schema violation, in document order."""
    validator = _validator(schema_name, strict, file_stem)
    results: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for error in sorted(
        validator.iter_errors(document), key=lambda e: list(map(str, e.absolute_path))
    ):
        for leaf in _leaf_errors(error):
            item = (pointer_of(leaf), _message(leaf, file_stem, document))
            if item not in seen:
                seen.add(item)
                results.append(item)
    return results
