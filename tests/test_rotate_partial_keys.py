"""Rotating in one stack while this machine holds no key for another."""

from __future__ import annotations

import secrets

from support.repo import KeyRepo


def test_rotate_in_dev_names_the_stack_it_could_not_check(keyrepo: KeyRepo) -> None:
    keyrepo.add_stack_without_key()
    pair = f"{secrets.token_hex(10)}\n{secrets.token_hex(10)}\n"
    proc = keyrepo.run(
        "rotate", "--stack", "dev", "--client", "android", "--now", "2026-11-27", input=pair
    )
    assert proc.returncode == 0, proc.stderr
    assert (
        "  note: key uniqueness not checked against stack(s) prod (no decryption key here); "
        "CI's keyops check covers them\n"
    ) in proc.stdout
    assert keyrepo.decrypt("credentials/dev/android.yaml")["credentials"][0]["state"] == "pending"


def test_rotate_in_a_stack_without_its_key_is_refused(keyrepo: KeyRepo) -> None:
    keyrepo.add_stack_without_key()
    before = keyrepo.path("credentials/prod/server.yaml").read_bytes()
    pair = f"{secrets.token_hex(10)}\n{secrets.token_hex(10)}\n"
    proc = keyrepo.run(
        "rotate", "--stack", "prod", "--client", "server", "--now", "2026-11-27", input=pair
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: no key here can decrypt credentials/prod/_stack.yaml"), (
        proc.stderr
    )
    assert "Traceback" not in proc.stderr
    assert keyrepo.path("credentials/prod/server.yaml").read_bytes() == before
