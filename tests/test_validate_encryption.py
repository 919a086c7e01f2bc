"""`keyops validate` on files that are not, partly, or wrongly encrypted, and on key trouble."""

from __future__ import annotations

from typing import Any

from support.repo import KeyRepo, new_identity, sops_rules
from support.validate import enc_value, expect_findings, findings, run

WEB = "credentials/dev/web.yaml"
NONE_SET = (
    "none (SOPS_AGE_KEY_FILE, SOPS_AGE_KEY, SOPS_AGE_KEY_CMD, ~/.config/sops/age/keys.txt and "
    "AWS credentials are all unset)"
)
KEY_FIX = (
    "  Point SOPS_AGE_KEY_FILE at a file with the age identity of one of them (several may share "
    "a file, one per line).\n"
    "  Or run keyops validate --no-decrypt: only the checks that need no key.\n"
)


def _plain_web(keyrepo: KeyRepo) -> dict[str, Any]:
    return keyrepo.decrypt(WEB)


def test_unencrypted_file(keyrepo: KeyRepo) -> None:
    keyrepo.write_doc(WEB, _plain_web(keyrepo), encrypt=False)
    expected = [
        "credentials/dev/web.yaml::$: error[encrypted] the file is not sops-encrypted (it has no "
        "sops metadata) and holds 3 secret value(s) in clear text; encrypt it: sops encrypt -i "
        "credentials/dev/web.yaml. If it was ever committed, treat its secrets as exposed and "
        "rotate them (line 1)"
    ]
    for args in ((), ("--no-decrypt",)):
        proc = keyrepo.run("validate", *args)
        assert proc.returncode == 1
        assert findings(proc) == expected
        # the one case where the file itself holds clear secrets: they must not be echoed
        for value in ("key", "secret"):
            assert str(_plain_web_values(keyrepo)[value]) not in proc.stdout + proc.stderr


def _plain_web_values(keyrepo: KeyRepo) -> dict[str, Any]:
    import yaml

    data: dict[str, Any] = yaml.safe_load(keyrepo.path(WEB).read_text())
    credential: dict[str, Any] = data["credentials"][0]
    return credential


def test_partially_encrypted_file(keyrepo: KeyRepo) -> None:
    keyrepo_text = keyrepo.path(WEB).read_text()
    assert keyrepo_text.count(enc_value(keyrepo, WEB, "key")) == 1
    exposed = "0123456789abcdef0123"
    keyrepo.path(WEB).write_text(keyrepo_text.replace(enc_value(keyrepo, WEB, "key"), exposed))
    proc = expect_findings(
        keyrepo,
        (),
        [
            "credentials/dev/web.yaml::$.credentials[0].key: error[encrypted] 'key' is in clear "
            "text next to sops metadata (a partially encrypted file): the value is exposed. "
            "Restore the file from git (git checkout -- credentials/dev/web.yaml), set the value "
            "with `sops edit credentials/dev/web.yaml`, and rotate the credential if the clear "
            "value was ever committed (credential web-2026-06, line 10)"
        ],
    )
    assert exposed not in proc.stdout + proc.stderr


def test_tampered_ciphertext(keyrepo: KeyRepo) -> None:
    value = enc_value(keyrepo, WEB, "secret")
    data = value.split("data:", 1)[1]
    flipped = value.replace(data, ("A" if data[0] != "A" else "B") + data[1:], 1)
    keyrepo.path(WEB).write_text(keyrepo.path(WEB).read_text().replace(value, flipped))
    expect_findings(
        keyrepo,
        (),
        [
            "credentials/dev/web.yaml::$: error[encrypted] an encrypted value cannot be decrypted "
            "(its ciphertext was altered or truncated). Restore it from git (git checkout -- "
            "credentials/dev/web.yaml); never edit ENC[...] values. (line 1)"
        ],
    )


def test_tampered_cleartext_field_trips_the_mac(keyrepo: KeyRepo) -> None:
    text = keyrepo.path(WEB).read_text()
    keyrepo.path(WEB).write_text(text.replace('activated: "2026-06-16"', 'activated: "2026-06-17"'))
    expect_findings(
        keyrepo,
        (),
        [
            "credentials/dev/web.yaml::$: error[encrypted] the file was changed without sops: its "
            "MAC does not match its content (a value, a cleartext field or the metadata was edited "
            "by hand). Restore it from git (git checkout -- credentials/dev/web.yaml) and make the "
            "change with `sops edit credentials/dev/web.yaml` or a keyops command. (line 1)"
        ],
    )
    # without a key the MAC cannot be checked, and the edit is a valid document
    assert run(keyrepo, "validate", "--no-decrypt", key=False).returncode == 0


def test_missing_mac(keyrepo: KeyRepo) -> None:
    text = keyrepo.path(WEB).read_text()
    mac_line = next(line for line in text.splitlines() if line.startswith("    mac: "))
    keyrepo.path(WEB).write_text(text.replace(mac_line + "\n", ""))
    expect_findings(
        keyrepo,
        (),
        [
            "credentials/dev/web.yaml::$.sops.mac: error[encrypted] the sops metadata has no MAC, "
            "so tampering cannot be detected; re-encrypt the file with sops (line 22)"
        ],
    )


def test_no_key_at_all(keyrepo: KeyRepo) -> None:
    proc = run(keyrepo, "validate", key=False)
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == (
        "error: no key here can decrypt credentials/dev/_stack.yaml (and 4 more file(s)).\n"
        f"  It is encrypted to age:{keyrepo.recipient}.\n"
        f"  Keys here: {NONE_SET}.\n" + KEY_FIX
    )


def test_wrong_key(keyrepo: KeyRepo) -> None:
    other_identity, _ = new_identity()
    wrong = keyrepo.root.parent / "wrong.agekey"
    wrong.write_text(other_identity + "\n")
    proc = run(keyrepo, "validate", WEB, env={"SOPS_AGE_KEY_FILE": str(wrong)})
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == (
        f"error: no key here can decrypt {WEB}.\n"
        f"  It is encrypted to age:{keyrepo.recipient}.\n"
        f"  Keys here: SOPS_AGE_KEY_FILE={wrong}, but it holds no key of those recipients.\n"
        + KEY_FIX
    )
    assert other_identity not in proc.stderr


def test_a_key_file_that_does_not_exist_is_named_as_such(keyrepo: KeyRepo) -> None:
    nowhere = keyrepo.root.parent / "typo.agekey"
    proc = run(keyrepo, "validate", WEB, env={"SOPS_AGE_KEY_FILE": str(nowhere)})
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == (
        f"error: no key here can decrypt {WEB}.\n"
        f"  It is encrypted to age:{keyrepo.recipient}.\n"
        f"  Keys here: SOPS_AGE_KEY_FILE={nowhere} (file not found).\n" + KEY_FIX
    )


def test_other_commands_name_no_option_they_lack(keyrepo: KeyRepo) -> None:
    # --no-decrypt belongs to validate only: check, export and the edits must not offer it.
    for line in (
        ["check"],
        ["export", "--stack", "dev", "--auth-keyring"],
        ["promote", "--stack", "dev", "--client", "ios"],
    ):
        proc = run(keyrepo, *line, key=False)
        assert proc.returncode == 2, line
        lines = proc.stderr.splitlines()
        assert lines[0].startswith("error: no key here can decrypt credentials/dev/"), line
        assert lines[-1] == (
            "  Point SOPS_AGE_KEY_FILE at a file with the age identity of one of them (several "
            "may share a file, one per line)."
        ), line
        assert "--no-decrypt" not in proc.stderr
        assert len(lines) == 4


def test_key_given_inline_is_named_not_shown(keyrepo: KeyRepo) -> None:
    other_identity, _ = new_identity()
    proc = run(keyrepo, "validate", WEB, key=False, env={"SOPS_AGE_KEY": other_identity})
    assert proc.returncode == 2
    assert "  Keys here: SOPS_AGE_KEY, but it holds no key of those recipients.\n" in proc.stderr
    assert other_identity not in proc.stderr


def test_no_decrypt_needs_no_key(keyrepo: KeyRepo) -> None:
    proc = run(keyrepo, "validate", "--no-decrypt", key=False)
    assert (proc.returncode, proc.stdout, proc.stderr) == (
        0,
        "ok: 5 file(s) checked without decryption, no findings\n",
        "",
    )


def test_value_encrypted_by_accident(keyrepo: KeyRepo) -> None:
    wide = "^(key|secret|encryption_master_key|private_jwk|app_id)$"
    keyrepo.path(".sops.yaml").write_text(
        sops_rules({"dev": [keyrepo.recipient]}).replace(
            "^(key|secret|encryption_master_key|private_jwk)$", wide
        )
    )
    keyrepo.write_doc(WEB, _plain_web(keyrepo))
    expect_findings(
        keyrepo,
        (),
        [
            ".sops.yaml::$.creation_rules[0].encrypted_regex: error[encrypted] creation rule #1 "
            f"(path_regex '^credentials/dev/[^/]+\\\\.yaml$') has encrypted_regex {wide!r}; keyops "
            "requires '^(key|secret|encryption_master_key|private_jwk)$' so that secrets are "
            "encrypted and lifecycle fields stay readable (line 2)",
            "credentials/dev/web.yaml::$.pusher.app_id: error[encrypted] 'app_id' is encrypted but "
            "only encryption_master_key, key, private_jwk, secret may be, so lifecycle metadata "
            "stays readable in diffs; re-encrypt the file under the .sops.yaml creation rule "
            "(encrypted_regex '^(key|secret|encryption_master_key|private_jwk)$') (line 5)",
            f"credentials/dev/web.yaml::$.sops.encrypted_regex: error[encrypted] the file was "
            f"encrypted with encrypted_regex {wide!r}; keyops requires "
            "'^(key|secret|encryption_master_key|private_jwk)$'. Re-encrypt it under the "
            ".sops.yaml creation rule (line 35)",
        ],
    )
