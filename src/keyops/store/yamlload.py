"""Strict YAML reading with line numbers.

Credential files are small and hand-reviewed, so keyops accepts a deliberately narrow YAML:
one document, no anchors or aliases (they hide what a reviewer reads), no duplicate keys, no tabs,
and no unquoted dates (sops would turn them into timestamps). Every problem carries its line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from keyops.core.errors import YamlRejected

MAX_FILE_BYTES = 1024 * 1024

#: libyaml's parser when PyYAML was built with it (it keeps line marks and is ~15x faster than
#: the pure-Python one, which dominated the per-file cost of ``keyops check``).
_FastLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class YamlProblem:
    line: int | None
    message: str
    pointer: str = "$"


@dataclass
class YamlDocument:
    data: Any
    #: JSON-path pointer (``$.credentials[0].key``) -> 1-based line of that node.
    lines: dict[str, int] = field(default_factory=dict)

    def line_of(self, pointer: str) -> int | None:
        """The line of ``pointer`` or of its nearest ancestor that has one."""
        probe = pointer
        while True:
            if probe in self.lines:
                return self.lines[probe]
            cut = max(probe.rfind("."), probe.rfind("["))
            if cut <= 0:
                return self.lines.get("$")
            probe = probe[:cut]


def child_pointer(parent: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{parent}[{key}]"
    if key.replace("_", "a").replace("-", "a").isalnum():
        return f"{parent}.{key}"
    return f"{parent}[{key!r}]"


def too_large(size: int) -> str:
    return (
        f"the file is {size:,} bytes, over the {MAX_FILE_BYTES:,}-byte limit for a credential "
        "file; a credential file holds a few credentials, so this is not one (remove it or "
        "move it out of credentials/)"
    )


def decode_text(raw: bytes) -> str:
    """Refuse binary content before YAML sees it."""
    if b"\x00" in raw:
        raise YamlRejected(
            [YamlProblem(None, "the file is binary (it contains NUL bytes), not YAML")]
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise YamlRejected(
            [YamlProblem(line, f"the file is not UTF-8 text (invalid byte at offset {exc.start})")]
        ) from exc


def load(raw: bytes) -> YamlDocument:
    """Parse ``raw`` strictly; raise :class:`YamlRejected` listing every problem found."""
    if len(raw) > MAX_FILE_BYTES:
        raise YamlRejected([YamlProblem(None, too_large(len(raw)))])
    text = decode_text(raw)
    problems: list[YamlProblem] = []
    for number, content in enumerate(text.splitlines(), start=1):
        if "\t" in content:
            problems.append(YamlProblem(number, "tab character; indent YAML with spaces only"))
    if problems:
        raise YamlRejected(problems)
    try:
        node = _parse(text, _FastLoader, problems)
    except yaml.YAMLError:
        # Syntax errors are rare: re-parse with the pure-Python parser so the message a user
        # sees does not depend on whether PyYAML was built with libyaml.
        problems.clear()
        try:
            node = _parse(text, yaml.SafeLoader, problems)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            where = mark.line + 1 if mark is not None else None
            what = exc.problem or "invalid YAML"
            raise YamlRejected([YamlProblem(where, f"not valid YAML: {what}")]) from exc
        except yaml.YAMLError as exc:
            raise YamlRejected([YamlProblem(None, f"not valid YAML: {exc}")]) from exc
    if node is None:
        raise YamlRejected([YamlProblem(None, "the file is empty")])
    doc = YamlDocument(data=None)
    _walk(node, "$", doc, problems)
    if problems:
        raise YamlRejected(problems)
    loader = yaml.SafeLoader("")
    try:
        doc.data = loader.construct_document(node)
    finally:
        loader.dispose()
    return doc


def _parse(
    text: str, loader: type[yaml.SafeLoader], problems: list[YamlProblem]
) -> yaml.Node | None:
    """Refuse anchors, aliases and several documents; then compose the node tree."""
    documents = 0
    for event in yaml.parse(text, Loader=loader):
        line = event.start_mark.line + 1 if event.start_mark is not None else None
        if isinstance(event, yaml.AliasEvent):
            problems.append(
                YamlProblem(line, f"alias *{event.anchor} is not allowed; write the value out")
            )
        elif anchor := getattr(event, "anchor", None):
            problems.append(
                YamlProblem(line, f"anchor &{anchor} is not allowed; write each value out")
            )
        elif isinstance(event, yaml.DocumentStartEvent):
            documents += 1
    if documents > 1:
        problems.append(YamlProblem(None, "the file holds several YAML documents; keep one"))
    if problems:
        raise YamlRejected(problems)
    node: yaml.Node | None = yaml.compose(text, Loader=loader)
    return node


_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_STR = "tag:yaml.org,2002:str"


def _real_date(node: yaml.ScalarNode) -> bool:
    loader = yaml.SafeLoader("")
    try:
        loader.construct_yaml_timestamp(node)
    except (ValueError, OverflowError):
        return False
    finally:
        loader.dispose()
    return True


def _walk(node: yaml.Node, pointer: str, doc: YamlDocument, problems: list[YamlProblem]) -> None:
    doc.lines[pointer] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if key_node.tag == "tag:yaml.org,2002:merge":
                problems.append(YamlProblem(line, "merge keys (<<) are not allowed", pointer))
                continue
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != _STR:
                problems.append(
                    YamlProblem(line, f"mapping keys must be plain strings (at {pointer})", pointer)
                )
                continue
            key = str(key_node.value)
            if key == "<<":
                problems.append(YamlProblem(line, "merge keys (<<) are not allowed", pointer))
                continue
            if key in seen:
                problems.append(
                    YamlProblem(
                        line,
                        f"duplicate key {key!r} (first on line {seen[key]}); keep one",
                        child_pointer(pointer, key),
                    )
                )
                continue
            seen[key] = line
            child = child_pointer(pointer, key)
            _walk(value_node, child, doc, problems)
            # A reader looks for the key ("sops:"), not where its nested value begins.
            doc.lines[child] = line
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, child_pointer(pointer, index), doc, problems)
    elif isinstance(node, yaml.ScalarNode) and node.tag == _TIMESTAMP and not _real_date(node):
        # Looks like a date but is none (2026-02-30): sops writes it back unquoted as a plain
        # string, so asking to quote it would be impossible to follow. Keep it a string and let
        # the schema say "not a valid date".
        node.tag = _STR
    elif isinstance(node, yaml.ScalarNode) and node.tag == _TIMESTAMP:
        problems.append(
            YamlProblem(
                node.start_mark.line + 1,
                f'unquoted date {node.value}; quote it ("{node.value}") so sops keeps it a string',
                pointer,
            )
        )


def load_metadata_only(raw: bytes) -> dict[str, Any] | None:
    """Best-effort parse of an encrypted file's ``sops`` mapping (for error messages)."""
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError:
        return None
    if isinstance(data, dict) and isinstance(data.get("sops"), dict):
        return data["sops"]  # type: ignore[no-any-return]
    return None
