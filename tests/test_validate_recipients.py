"""`.sops.yaml` creation rules against each file's recipients (no decryption key needed)."""

from __future__ import annotations

from support.repo import KeyRepo, new_identity, sops_rules
from support.validate import RULE_DEV, SAMPLE_FILES, expect_findings, findings, run

SOPS_LINE = {"_stack": 13, "android": 19, "ios": 26, "server": 14, "web": 22}
EXTRA_RULE = (
    "  - path_regex: ^credentials/.*\n"
    "    encrypted_regex: ^(key|secret|encryption_master_key|private_jwk)$\n"
    "    age: {recipient}\n"
)


def test_missing_sops_config(keyrepo: KeyRepo) -> None:
    keyrepo.path(".sops.yaml").unlink()
    for args in ((), ("--no-decrypt",)):
        proc = run(keyrepo, "validate", *args)
        assert (proc.returncode, proc.stdout) == (2, "")
        assert proc.stderr == (
            f"error: {keyrepo.root}/.sops.yaml is missing: sops needs a creation rule for each "
            "stack. Create .sops.yaml with one creation rule per credentials/<stack>/ directory "
            "(see README: Adding a stack).\n"
        )


def test_no_rule_for_the_file(keyrepo: KeyRepo) -> None:
    keyrepo.path(".sops.yaml").write_text(sops_rules({"prod": [keyrepo.recipient]}))
    expect_findings(
        keyrepo,
        ("--no-decrypt",),
        [
            f"credentials/dev/{name}.yaml::$.sops: error[recipients] no creation rule in "
            f".sops.yaml matches credentials/dev/{name}.yaml; add a rule for credentials/dev/ (see "
            f"README: Adding a stack) (line {SOPS_LINE[name]})"
            for name in SAMPLE_FILES
        ],
    )


def test_overlapping_rules(keyrepo: KeyRepo) -> None:
    keyrepo.path(".sops.yaml").write_text(
        sops_rules({"dev": [keyrepo.recipient]}) + EXTRA_RULE.format(recipient=keyrepo.recipient)
    )
    expect_findings(
        keyrepo,
        ("--no-decrypt", "credentials/dev/web.yaml"),
        [
            "credentials/dev/web.yaml::$.sops: error[recipients] credentials/dev/web.yaml is "
            f"matched by {RULE_DEV} and creation rule #2 (path_regex '^credentials/.*'); sops "
            "would use the first, so reordering would change who can decrypt. Make the path_regex "
            "patterns disjoint (line 22)"
        ],
    )


def test_stale_recipient_after_a_key_change(keyrepo: KeyRepo) -> None:
    _, added = new_identity()
    keyrepo.path(".sops.yaml").write_text(sops_rules({"dev": [keyrepo.recipient, added]}))
    expect_findings(
        keyrepo,
        ("--no-decrypt", "--stack", "dev"),
        [
            f"credentials/dev/{name}.yaml::$.sops: error[recipients] age:{added} is a recipient in "
            f"{RULE_DEV} but the file is not encrypted to it (stale after a key change?); run: "
            f"sops updatekeys credentials/dev/{name}.yaml (line {SOPS_LINE[name]})"
            for name in SAMPLE_FILES
        ],
    )


def test_removed_recipient_is_still_able_to_decrypt(keyrepo: KeyRepo) -> None:
    _, replacement = new_identity()
    keyrepo.path(".sops.yaml").write_text(sops_rules({"dev": [replacement]}))
    expect_findings(
        keyrepo,
        ("--no-decrypt", "credentials/dev/server.yaml"),
        [
            f"credentials/dev/server.yaml::$.sops: error[recipients] age:{replacement} is a "
            f"recipient in {RULE_DEV} but the file is not encrypted to it (stale after a key "
            "change?); run: sops updatekeys credentials/dev/server.yaml (line 14)",
            f"credentials/dev/server.yaml::$.sops: error[recipients] the file is encrypted to "
            f"age:{keyrepo.recipient}, which {RULE_DEV} does not list (copied from another stack, "
            "or a removed key?); run: sops updatekeys credentials/dev/server.yaml (line 14)",
        ],
    )


def test_file_copied_from_another_stack(keyrepo: KeyRepo) -> None:
    """Encrypted for prod, dropped into dev: reported, and not a crash for the missing key."""
    _, prod = new_identity()
    keyrepo.path(".sops.yaml").write_text(sops_rules({"dev": [keyrepo.recipient], "prod": [prod]}))
    from keyops.store import sample

    document = keyrepo.decrypt("credentials/dev/web.yaml")
    copied = keyrepo.sops().encrypt(sample.dump_yaml(document), "credentials/prod/web.yaml")
    keyrepo.write_bytes("credentials/dev/web.yaml", copied)
    proc = run(keyrepo, "validate")
    assert proc.returncode == 1, proc.stderr
    assert findings(proc) == [
        f"credentials/dev/web.yaml::$.sops: error[recipients] age:{keyrepo.recipient} is a "
        f"recipient in {RULE_DEV} but the file is not encrypted to it (stale after a key "
        "change?); run: sops updatekeys credentials/dev/web.yaml (line 22)",
        f"credentials/dev/web.yaml::$.sops: error[recipients] the file is encrypted to "
        f"age:{prod}, which {RULE_DEV} does not list (copied from another stack, or a removed "
        "key?); run: sops updatekeys credentials/dev/web.yaml (line 22)",
    ]
    assert proc.stderr == ""


def test_rule_without_recipients(keyrepo: KeyRepo) -> None:
    keyrepo.path(".sops.yaml").write_text(
        "creation_rules:\n"
        "  - path_regex: ^credentials/dev/[^/]+\\.yaml$\n"
        "    encrypted_regex: ^(key|secret|encryption_master_key|private_jwk)$\n"
    )
    proc = run(keyrepo, "validate", "--no-decrypt", "credentials/dev/web.yaml")
    assert proc.returncode == 1
    assert findings(proc)[0] == (
        f".sops.yaml::$.creation_rules[0]: error[recipients] {RULE_DEV} lists no recipients "
        "(age, kms, …) (line 2)"
    )


def test_sops_config_that_is_not_yaml(keyrepo: KeyRepo) -> None:
    keyrepo.path(".sops.yaml").write_text("creation_rules: [\n")
    proc = run(keyrepo, "validate", "--no-decrypt")
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: .sops.yaml cannot be read as YAML: ")
    assert proc.stderr.endswith(". Fix its syntax.\n")
