"""First end-to-end checks of `keyops validate` and `keyops status` on a real sops repo."""

from __future__ import annotations

import json

from conftest import KeyRepo


def test_sample_repository_is_clean(keyrepo: KeyRepo) -> None:
    proc = keyrepo.run("validate")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert proc.stdout == "ok: 5 file(s) validated, no findings\n"
    assert proc.stderr == ""


def test_status_reads_cleartext_without_key(keyrepo: KeyRepo) -> None:
    proc = keyrepo.run("status", "--now", "2026-11-27", "--format", "json", key=False)
    assert proc.returncode == 0, proc.stderr
    rows = {r["credential"]: r for r in json.loads(proc.stdout)["rows"]}
    assert rows["ios-2026-05"]["state"] == "retiring"
    assert rows["ios-2026-05"]["next_action"] == "retire from 2026-12-03"
    assert rows["ios-2026-11"]["served"] == "100%"
