"""Strict YAML: duplicate keys, anchors/aliases, tabs and unquoted dates, each with its line."""

from __future__ import annotations

import pytest

from keyops.store import yamlload
from support.repo import KeyRepo
from support.validate import findings, run

REL = "credentials/dev/extra.yaml"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "client: extra\nplatform: web\nclient: other\n",
            [
                f"{REL}::$.client: error[schema] duplicate key 'client' (first on line 1); "
                "keep one "
                "(line 3)"
            ],
        ),
        (
            'client: extra\npusher: &p\n  app_id: "1"\nother: *p\n',
            [
                f"{REL}::$: error[schema] anchor &p is not allowed; write each value out (line 2)",
                f"{REL}::$: error[schema] alias *p is not allowed; write the value out (line 4)",
            ],
        ),
        (
            'client: extra\npusher:\n\tapp_id: "1"\ncredentials:\n\t- id: x\n',
            [
                f"{REL}::$: error[schema] tab character; indent YAML with spaces only (line 3)",
                f"{REL}::$: error[schema] tab character; indent YAML with spaces only (line 5)",
            ],
        ),
        (
            "client: extra\ncredentials:\n  - id: x\n    created: 2026-11-01\n"
            "    activated: 2026-11-02T10:00:00Z\n",
            [
                f"{REL}::$.credentials[0].created: error[schema] unquoted date 2026-11-01; quote "
                'it ("2026-11-01") so sops keeps it a string (line 4)',
                f"{REL}::$.credentials[0].activated: error[schema] unquoted date "
                '2026-11-02T10:00:00Z; quote it ("2026-11-02T10:00:00Z") so sops keeps it a '
                "string (line 5)",
            ],
        ),
        (
            "client: extra\n<<: {platform: web}\n",
            [f"{REL}::$: error[schema] merge keys (<<) are not allowed (line 2)"],
        ),
        (
            "client: extra\n---\nclient: again\n",
            [f"{REL}::$: error[schema] the file holds several YAML documents; keep one"],
        ),
        (
            "client: extra\n1: one\n",
            [f"{REL}::$: error[schema] mapping keys must be plain strings (at $) (line 2)"],
        ),
    ],
    ids=[
        "duplicate-key",
        "anchor-alias",
        "tabs",
        "unquoted-dates",
        "merge-key",
        "two-docs",
        "int-key",
    ],
)
def test_strict_yaml_through_the_cli(keyrepo: KeyRepo, text: str, expected: list[str]) -> None:
    keyrepo.write_bytes(REL, text.encode())
    proc = run(keyrepo, "validate", "--no-decrypt", REL)
    assert proc.returncode == 1
    assert findings(proc) == expected
    assert proc.stderr == ""


def test_lines_point_at_the_key() -> None:
    doc = yamlload.load(b"a: 1\nsops:\n  mac: x\nlist:\n  - id: y\n    key: z\n")
    assert doc.line_of("$.sops") == 2
    assert doc.line_of("$.sops.mac") == 3
    assert doc.line_of("$.list[0]") == 5
    assert doc.line_of("$.list[0].key") == 6
    assert doc.line_of("$.list[0].missing") == 5


def test_impossible_date_stays_a_string() -> None:
    """sops writes 2026-02-30 back unquoted, so it must not be reported as an unquoted date."""
    assert yamlload.load(b"created: 2026-02-30\n").data == {"created": "2026-02-30"}


def test_quoted_dates_and_plain_values_are_accepted() -> None:
    doc = yamlload.load(b'created: "2026-11-01"\nport: 8080\nname: x\n')
    assert doc.data == {"created": "2026-11-01", "port": 8080, "name": "x"}


def test_all_problems_are_collected() -> None:
    with pytest.raises(yamlload.YamlRejected) as caught:
        yamlload.load(b"a: 1\na: 2\nb: &x 3\nc: *x\nd: 2026-01-01\n")
    assert [(p.line, p.message) for p in caught.value.problems] == [
        (3, "anchor &x is not allowed; write each value out"),
        (4, "alias *x is not allowed; write the value out"),
    ]
    with pytest.raises(yamlload.YamlRejected) as caught:
        yamlload.load(b"a: 1\na: 2\nd: 2026-01-01\n")
    assert [(p.line, p.message) for p in caught.value.problems] == [
        (2, "duplicate key 'a' (first on line 1); keep one"),
        (3, 'unquoted date 2026-01-01; quote it ("2026-01-01") so sops keeps it a string'),
    ]
