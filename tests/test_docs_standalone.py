"""The docs stand on their own: no citation of files outside the repository, links that resolve,
tables that render, and a file-format contract that covers every field and move."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from keyops.cli.main import EPILOG, build_parser
from keyops.policy.rules.lifecycle import ALLOWED
from keyops.store.schema import CREDENTIAL_SCHEMA, STACK_SCHEMA, load_schema
from support.repo import PROJECT

#: Citations of documents that are not in this repository.
OUTSIDE = re.compile(r"DESIGN\.md|\.\./shared|\bsection \d+ of\b|\bissue \d+\b", re.IGNORECASE)
#: Data files whose text is not prose (recorded API answers, vectors, encrypted files).
NOT_PROSE = ("credentials/", "tests/fixtures/", "tests/vectors/", "tests/events/")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def tracked(*suffixes: str) -> list[Path]:
    """The repository's files (committed or not, ignored ones left out) ending in a suffix."""
    names = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [PROJECT / n for n in names if n.endswith(suffixes) and not n.startswith(NOT_PROSE)]


def test_nothing_cites_a_document_outside_the_repository() -> None:
    found = []
    files = tracked(".md", ".py", ".yaml", ".yml", ".ts", ".mjs", ".sh", "Makefile", "run")
    for path in files:
        if path == Path(__file__):
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if OUTSIDE.search(line):
                found.append(f"{path.relative_to(PROJECT)}:{number}: {line.strip()}")
    assert found == []


def test_no_help_text_cites_one() -> None:
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command")
    texts = [parser.format_help()]
    texts += [child.format_help() for child in commands.choices.values()]  # type: ignore[attr-defined]
    assert [t for t in texts if OUTSIDE.search(t)] == []


@pytest.mark.parametrize(
    "doc", [PROJECT / "README.md", *sorted((PROJECT / "docs").glob("*.md"))], ids=lambda p: p.name
)
def test_relative_links_resolve(doc: Path) -> None:
    broken = []
    for target in LINK.findall(doc.read_text()):
        if target.startswith(("http://", "https://", "mailto:", "#")):
            continue
        path = target.split("#", 1)[0]
        if not (doc.parent / path).exists():
            broken.append(target)
    assert broken == []


def _table(text: str, header: str) -> list[list[str]]:
    lines = text.splitlines()
    start = lines.index(header)
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def test_the_readme_exit_code_table_renders_and_matches_the_cli() -> None:
    rows = _table((PROJECT / "README.md").read_text(), "| code | meaning |")
    assert rows[1] == ["---", "---"]
    assert all(len(row) == 2 for row in rows)
    codes = [row[0] for row in rows[2:]]
    assert codes == re.findall(r"^  (\d+) ", EPILOG, re.MULTILINE)


def _fields(schema: dict[str, object]) -> set[str]:
    """Every property name in a schema, at any depth."""
    out: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for name, value in node.items():
                if name == "properties" and isinstance(value, dict):
                    out.update(value)
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(schema)
    return out - {"sops"}


def test_file_format_names_every_field_of_both_schemas() -> None:
    text = (PROJECT / "docs" / "file-format.md").read_text()
    # `pusher.app_id` and `signing_keys[].kid` name both of their parts.
    named = {
        part
        for token in re.findall(r"`([a-z_.\[\]]+)`", text)
        for part in re.split(r"\[\]\.|\.", token)
    }
    for schema in (CREDENTIAL_SCHEMA, STACK_SCHEMA):
        assert _fields(load_schema(schema)) <= named, schema


def test_file_format_moves_are_the_transition_rules() -> None:
    text = (PROJECT / "docs" / "file-format.md").read_text()
    rows = _table(text, "| from | to | command | what else |")[2:]
    documented = {(row[0].strip("`"), row[1].strip("`")) for row in rows}
    allowed = {(old, new) for old, targets in ALLOWED.items() for new in targets}
    assert documented == allowed | {("(new)", "pending"), ("(new)", "active")}
    states = _table(text, _state_header(text))[2:]
    assert [row[0].strip("`") for row in states] == list(ALLOWED)


def _state_header(text: str) -> str:
    return next(line for line in text.splitlines() if line.startswith("| state | served client"))
