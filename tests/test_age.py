"""age identities made in-process (keyops.store.age) and ``keyops keygen``.

The format is proven against the two other implementations at hand: pyrage (a binding of rage,
age's Rust implementation) reads every identity keyops writes and derives the same recipient,
and the real sops binary decrypts with a key file ``keyops keygen`` wrote.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pyrage
import pytest

from keyops.core.errors import UsageError
from keyops.store import age
from keyops.store.sops import Sops
from support.cli import run_in_process
from support.repo import PROJECT, clean_env, sops_rules

# BIP 173's own examples: valid strings (those whose data are whole bytes, as age's always are),
# and the ways a string is not Bech32.
VALID = [
    "A12UEL5L",
    "a12uel5l",
    "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw",
    "?1ezyfcl",
]
INVALID = [
    "pzry9x0s0muk",  # no separator
    "1pzry9x0s0muk",  # empty human-readable part
    "x1b4n0q5v",  # 'b' is not in the alphabet
    "li1dgmt3",  # checksum too short
    "A1G7SGD8",  # checksum of the upper-case form
    "a12uEL5L",  # mixed case
    "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxx",  # one character changed
]


@pytest.mark.parametrize("text", VALID)
def test_bech32_accepts_the_specification_examples(text: str) -> None:
    decoded = age.bech32_decode(text)
    assert decoded is not None
    hrp, payload = decoded
    assert age.bech32_encode(hrp, payload) == text.lower()


@pytest.mark.parametrize("text", INVALID)
def test_bech32_refuses_what_is_not_bech32(text: str) -> None:
    assert age.bech32_decode(text) is None


def test_identities_are_read_by_rage_with_the_same_recipient() -> None:
    for _ in range(50):
        identity = age.generate()
        assert identity.secret.startswith("AGE-SECRET-KEY-1") and identity.secret.isupper()
        assert identity.recipient.startswith("age1") and len(identity.recipient) == 62
        theirs = pyrage.x25519.Identity.from_str(identity.secret)
        assert str(theirs.to_public()) == identity.recipient
        sealed = pyrage.encrypt(b"hello", [pyrage.x25519.Recipient.from_str(identity.recipient)])
        assert pyrage.decrypt(sealed, [theirs]) == b"hello"


def test_recipients_of_rage_identities_and_of_the_committed_test_key() -> None:
    for _ in range(20):
        theirs = pyrage.x25519.Identity.generate()
        assert age.recipient_of(str(theirs)) == str(theirs.to_public())
    committed = (PROJECT / "keys" / "dev-TEST-ONLY.agekey").read_text()
    assert age.scan_identities(committed) == age.KeyFileScan((age.TEST_ONLY_RECIPIENT,))


def test_a_key_file_with_several_identities_comments_and_junk() -> None:
    one, two = age.generate(), age.generate()
    text = (
        "# created: 2026-11-27\n"
        f"{one.secret}\n\n  {two.secret}  \n"
        "AGE-PLUGIN-YUBIKEY-1QQQQQQQ\n"
        "not a key\n"
    )
    scan = age.scan_identities(text)
    assert scan.recipients == (one.recipient, two.recipient)
    assert (scan.plugins, scan.unreadable, scan.count) == (1, 1, 3)


def test_check_recipient_explains_without_showing_a_secret() -> None:
    good = age.generate().recipient
    assert age.check_recipient(good) == good
    with pytest.raises(UsageError) as caught:
        age.check_recipient(good[:-1] + ("q" if good[-1] != "q" else "p"))
    assert caught.value.render().startswith("error: --age age1")
    assert "is not a valid age recipient" in caught.value.render()
    secret = age.generate().secret
    with pytest.raises(UsageError) as caught:
        age.check_recipient(secret)
    assert secret not in caught.value.render()
    assert caught.value.render() == (
        "error: --age AGE-SECRET-KEY-… is not a valid age recipient. That is an identity (the "
        "private half): pass its recipient, which keyops keygen printed (age1…)."
    )


# -- keyops keygen ---------------------------------------------------------------------------


def _keygen(home: Path, *args: str) -> tuple[int, str, str]:
    proc = run_in_process(["keygen", *args], env=clean_env(home), cwd=home)
    return proc.returncode, proc.stdout, proc.stderr


def test_keygen_writes_a_private_file_that_sops_decrypts_with(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    out = home / "keys" / "team" / "staging.agekey"
    code, stdout, stderr = _keygen(home, "--out", str(out))
    assert code == 0, stderr
    recipient = stdout.strip()
    assert stdout == f"{recipient}\n" and age.check_recipient(recipient) == recipient
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert stat.S_IMODE(out.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(out.parent.parent.stat().st_mode) == 0o700
    assert stderr.startswith(f"wrote a new age identity to {out} (mode 0600)")
    lines = out.read_text().splitlines()
    assert lines[0].startswith("# created: ") and lines[1] == f"# public key: {recipient}"
    assert age.scan_identities(out.read_text()).recipients == (recipient,)
    assert lines[2] not in stdout + stderr
    # The real sops binary encrypts to the recipient and decrypts with the file.
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / ".sops.yaml").write_text(sops_rules({"staging": [recipient]}))
    env = clean_env(home) | {"SOPS_AGE_KEY_FILE": str(out)}
    sops = Sops(repo, env=env)
    sealed = sops.encrypt(b"key: 0123456789abcdef0123\n", "credentials/staging/x.yaml")
    assert b"0123456789abcdef0123" not in sealed
    assert json.loads(sops.decrypt_bytes(sealed, "credentials/staging/x.yaml")) == {
        "key": "0123456789abcdef0123"
    }


def test_keygen_never_overwrites(tmp_path: Path) -> None:
    out = tmp_path / "keys.txt"
    out.write_text("# an identity the user already has\n")
    code, stdout, stderr = _keygen(tmp_path, "--out", str(out))
    assert code == 2 and stdout == ""
    assert stderr == (
        f"error: {out} already exists; keyops never overwrites a key file. Name a new file. sops "
        "reads several identities at once (docs/getting-started.md).\n"
    )
    assert out.read_text() == "# an identity the user already has\n"
    os.symlink(tmp_path / "elsewhere", tmp_path / "link")
    code, _, stderr = _keygen(tmp_path, "--out", str(tmp_path / "link"))
    assert code == 2 and "already exists" in stderr
    assert not (tmp_path / "elsewhere").exists()


def test_keygen_into_sops_default_key_file_says_so(tmp_path: Path) -> None:
    out = tmp_path / ".config" / "sops" / "age" / "keys.txt"
    code, _, stderr = _keygen(tmp_path, "--out", str(out))
    assert code == 0, stderr
    assert "sops reads this file without any setting" in stderr
