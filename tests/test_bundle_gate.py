"""What may and may not stop `keyops build`."""

from __future__ import annotations

from pathlib import Path

from support.repo import KeyRepo


def test_an_overdue_rotation_does_not_block_the_bundle(keyrepo: KeyRepo, tmp_path: Path) -> None:
    # By mid-2027 every sample credential is past max_age_days: `check` says so as an error ...
    check = keyrepo.run("check", "--stack", "dev", "--now", "2027-06-01")
    assert check.returncode == 1
    assert "error[max-age] server-2026-01 is 505 days old" in check.stdout
    # ... but refusing to rebuild would let the served bundle expire: build still succeeds.
    out = tmp_path / "bundle"
    build = keyrepo.run(
        "build",
        "--stack",
        "dev",
        "--out",
        str(out),
        "--now",
        "2027-06-01T00:00:00",
        "--allow-future",
    )
    assert build.returncode == 0, build.stderr
    assert (out / "bundle.jws").is_file()


def test_a_safety_error_blocks_the_bundle(keyrepo: KeyRepo, tmp_path: Path) -> None:
    doc = keyrepo.decrypt("credentials/dev/web.yaml")
    doc["credentials"][0]["state"] = "retiring"
    doc["credentials"][0]["retiring_since"] = "2026-11-20"
    keyrepo.write_doc("credentials/dev/web.yaml", doc)
    out = tmp_path / "bundle"
    build = keyrepo.run("build", "--stack", "dev", "--out", str(out))
    assert build.returncode == 1
    assert "single-active" in build.stderr + build.stdout
    assert not out.exists()
