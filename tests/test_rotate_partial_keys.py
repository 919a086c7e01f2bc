"""Rotating in one stack while this machine holds no key for another."""

from __future__ import annotations

import datetime as dt
import secrets

from keyops.store import sample
from support.repo import KeyRepo, new_identity, sops_rules


def _add_prod_without_its_key(keyrepo: KeyRepo) -> None:
    _, prod_recipient = new_identity()  # its private half is thrown away
    keyrepo.write_bytes(
        ".sops.yaml",
        sops_rules({"dev": [keyrepo.recipient], "prod": [prod_recipient]}).encode(),
    )
    today = dt.date(2026, 11, 20)
    keyrepo.write_doc("credentials/prod/_stack.yaml", sample.stack_document("prod", today))
    server = sample.dev_stack(today)["server"]
    server["credentials"][0]["id"] = "prod-server-2026-11"
    keyrepo.write_doc("credentials/prod/server.yaml", server)
    keyrepo.commit("prod stack, encrypted to a key this machine lacks")


def test_rotate_in_dev_names_the_stack_it_could_not_check(keyrepo: KeyRepo) -> None:
    _add_prod_without_its_key(keyrepo)
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
    _add_prod_without_its_key(keyrepo)
    before = keyrepo.path("credentials/prod/server.yaml").read_bytes()
    pair = f"{secrets.token_hex(10)}\n{secrets.token_hex(10)}\n"
    proc = keyrepo.run(
        "rotate", "--stack", "prod", "--client", "server", "--now", "2026-11-27", input=pair
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith(
        "error: no key available here can decrypt credentials/prod/_stack.yaml"
    ), proc.stderr
    assert "Traceback" not in proc.stderr
    assert keyrepo.path("credentials/prod/server.yaml").read_bytes() == before
