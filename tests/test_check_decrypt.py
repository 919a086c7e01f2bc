"""``keyops check`` decrypts each file once per side, and an unchanged file only once in all;
and it works on the committed sample in a fresh clone of this repository."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from keyops.policy.shared_sops import SharedSops
from keyops.store import loader
from keyops.store.sources import GitSource, WorktreeSource
from support.repo import PROJECT, KeyRepo, clean_env


def test_unchanged_files_are_decrypted_once_for_both_sides(keyrepo: KeyRepo) -> None:
    base = keyrepo.git("rev-parse", "HEAD")
    doc = keyrepo.read_doc("credentials/dev/web.yaml")
    doc["credentials"][0]["min_app_version"] = "2.0.0"
    keyrepo.write_doc("credentials/dev/web.yaml", doc)
    sops = SharedSops(keyrepo.root, env=keyrepo.env())
    before = loader.load(keyrepo.root, GitSource(keyrepo.root, base), sops=sops)
    assert sops.decrypted == 5
    after = loader.load(keyrepo.root, WorktreeSource(keyrepo.root), sops=sops)
    assert sops.decrypted == 6  # only the edited file is decrypted again
    for rel, record in after.records.items():
        if rel != "credentials/dev/web.yaml":
            assert record.plain == before.records[rel].plain
    assert after.records["credentials/dev/web.yaml"].plain["credentials"][0]["min_app_version"] == (
        "2.0.0"
    )


def test_check_on_the_committed_sample_in_a_fresh_clone(tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    subprocess.run(
        ["git", "clone", "--quiet", str(PROJECT), str(clone)], check=True, capture_output=True
    )
    env = clean_env(tmp_path)
    env["SOPS_AGE_KEY_FILE"] = str(clone / "keys" / "dev-TEST-ONLY.agekey")
    proc = subprocess.run(
        [sys.executable, "-m", "keyops", "check", "--base", "HEAD", "--now", "2026-11-27"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.stderr == ""
    assert proc.returncode == 0, proc.stdout
    assert proc.stdout.endswith("in 6 file(s)\n") or proc.stdout.startswith("ok: 6 file(s)")


def test_both_sides_loading_at_once_still_decrypt_each_blob_once(keyrepo: KeyRepo) -> None:
    from concurrent.futures import ThreadPoolExecutor

    base = keyrepo.git("rev-parse", "HEAD")
    doc = keyrepo.read_doc("credentials/dev/ios.yaml")
    doc["credentials"][0]["min_app_version"] = "3.0.0"
    keyrepo.write_doc("credentials/dev/ios.yaml", doc)
    sops = SharedSops(keyrepo.root, env=keyrepo.env())
    with ThreadPoolExecutor(2) as pool:
        before = pool.submit(loader.load, keyrepo.root, GitSource(keyrepo.root, base), sops=sops)
        after = pool.submit(loader.load, keyrepo.root, WorktreeSource(keyrepo.root), sops=sops)
        old, new = before.result(), after.result()
    assert sops.decrypted == 6
    assert (
        old.records["credentials/dev/web.yaml"].plain
        == new.records["credentials/dev/web.yaml"].plain
    )
    assert "min_app_version" not in old.records["credentials/dev/ios.yaml"].plain["credentials"][0]
