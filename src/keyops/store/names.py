"""Stack and client names: what the schemas allow, and the one way to say a name is unknown.

A stack is a directory (``credentials/<stack>/``) and a client a file
(``credentials/<stack>/<client>.yaml``), so a name given on the command line becomes part of a
path. Every ``--stack`` and ``--client`` is checked here against the schemas' own patterns
before any path is built: ``../dev/web``, ``dev/web`` or ``Dev`` never reach the file system.

An unknown name is answered the same way by every command: what does not exist, the closest
known name when one is close (``difflib``), and the list of known names.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Sequence
from functools import cache
from importlib import resources
from pathlib import Path

from keyops.core.errors import InputError, UsageError
from keyops.store.sources import CREDENTIALS_DIR, STACK_FILE


@cache
def _rule(schema: str, *where: str) -> tuple[re.Pattern[str], str]:
    """The pattern and the human wording of one schema property (read without jsonschema)."""
    text = resources.files("keyops").joinpath("schemas", schema).read_text(encoding="utf-8")
    node = json.loads(text)
    for key in where:
        node = node[key]
    return re.compile(node["pattern"]), str(node["x-keyops-message"])


def stack_rule() -> tuple[re.Pattern[str], str]:
    return _rule("stack-file.schema.json", "properties", "stack")


def client_rule() -> tuple[re.Pattern[str], str]:
    # ``client`` refers to the id definition: a client name follows the credential-id rule.
    return _rule("credential-file.schema.json", "$defs", "id")


def _check(value: str, option: str, kind: str, names: str, example: str) -> str:
    pattern, wording = stack_rule() if kind == "stack" else client_rule()
    if not pattern.fullmatch(value):
        raise UsageError(
            f"{option} {value!r} is not a valid {kind} name: a {kind} name {wording}",
            f"It names {names}; pass the bare name, e.g. {option} {example}.",
        )
    return value


def check_stack(value: str, option: str = "--stack") -> str:
    """``value`` when it is a stack name the schema allows; :class:`UsageError` otherwise."""
    return _check(value, option, "stack", f"the directory {CREDENTIALS_DIR}/<stack>/", "dev")


def check_client(value: str, option: str = "--client") -> str:
    """``value`` when it is a client name the schema allows; :class:`UsageError` otherwise."""
    return _check(
        value, option, "client", f"the file {CREDENTIALS_DIR}/<stack>/<client>.yaml", "ios"
    )


#: Attributes of parsed arguments that hold stack or client names, and how each is checked.
_ARGUMENTS = (("stack", "--stack", check_stack), ("client", "--client", check_client))


def check_arguments(args: object) -> None:
    """Check every ``--stack``/``--client`` value of a parsed command line (str or list)."""
    for attribute, option, check in _ARGUMENTS:
        value = getattr(args, attribute, None)
        values = value if isinstance(value, list) else [value]
        for item in values:
            if isinstance(item, str):
                check(item, option)


# -- unknown names ---------------------------------------------------------------------------


def closest(name: str, known: Iterable[str]) -> str | None:
    """The known name closest to ``name``, when one is close enough to be a likely typo."""
    matches = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return matches[0] if matches else None


def suggestion(name: str, known: Sequence[str], what: str) -> str:
    """``Did you mean 'x'? Known <what>: a, b.`` (the first sentence only when one is close)."""
    near = closest(name, known)
    listing = f"Known {what}: {', '.join(known) or 'none'}."
    return f"Did you mean {near!r}? {listing}" if near else listing


def stacks_in(root: Path) -> list[str]:
    """The stacks of the working tree that hold at least one credential file."""
    base = root / CREDENTIALS_DIR
    folders = sorted(base.iterdir()) if base.is_dir() else []
    return [d.name for d in folders if not d.name.startswith(".") and _files(d)]


def clients_in(root: Path, stack: str) -> list[str]:
    """The clients of one stack in the working tree (file stems, the stack file left out)."""
    folder = root / CREDENTIALS_DIR / stack
    return sorted(p.stem for p in _files(folder) if p.name != STACK_FILE)


def _files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return [p for p in folder.glob("*.yaml") if not p.name.startswith(".")]


def unknown_stack(stack: str, known: Sequence[str], *, empty: bool = False) -> InputError:
    """The error for a stack that does not exist (or, with ``empty``, holds no file)."""
    where = f"{CREDENTIALS_DIR}/{stack}/"
    what = (
        f"stack {stack!r} has no credential files ({where} holds no file)"
        if empty
        else f"stack {stack!r} does not exist (no {where} directory)"
    )
    return InputError(what, suggestion(stack, known, "stacks"))


def unknown_client(stack: str, client: str, known: Sequence[str]) -> InputError:
    """The error for a client the stack does not have."""
    return InputError(
        f"client {client!r} does not exist in stack {stack!r} "
        f"(no {CREDENTIALS_DIR}/{stack}/{client}.yaml)",
        suggestion(client, known, f"clients of {stack}"),
    )


def require_client(root: Path, stack: str, client: str) -> str:
    """The client file's repository-relative path; refuses a client the stack does not have.

    The stack itself is the caller's to check first (``loader.check_stacks``).
    """
    check_stack(stack)
    check_client(client)
    relpath = f"{CREDENTIALS_DIR}/{stack}/{client}.yaml"
    if not (root / relpath).is_file():
        raise unknown_client(stack, client, clients_in(root, stack))
    return relpath
