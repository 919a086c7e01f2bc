"""``validate`` and ``check`` on a machine that holds the keys of some stacks only.

The stacks it can decrypt are checked, the others are named; exit 2 only when no stack can be
decrypted, or when the stack named with ``--stack`` cannot.
"""

from __future__ import annotations

from support.repo import KeyRepo, new_identity, sops_rules

VALIDATE_NOTE = (
    "note: stack prod: only the checks that need no key ran (YAML, encryption, recipients), "
    "since no key here can decrypt it (keyops validate --stack prod names who can).\n"
)
CHECK_NOTE = (
    "note: stack prod was skipped: no key here can decrypt it; CI's keyops check covers it "
    "(keyops check --stack prod names who can decrypt it).\n"
)


def test_validate_checks_the_stacks_it_can_and_names_the_others(keyrepo: KeyRepo) -> None:
    keyrepo.add_stack_without_key()
    proc = keyrepo.run("validate")
    assert (proc.returncode, proc.stdout, proc.stderr) == (
        0,
        "ok: 5 file(s) validated, no findings\n",
        VALIDATE_NOTE,
    )


def test_findings_in_the_stacks_it_can_decrypt_still_exit_1(keyrepo: KeyRepo) -> None:
    keyrepo.add_stack_without_key()
    web = keyrepo.read_doc("credentials/dev/web.yaml")
    web["credentials"][0]["state"] = "retired"
    keyrepo.write_doc("credentials/dev/web.yaml", web)
    proc = keyrepo.run("validate")
    assert proc.returncode == 1
    assert "credentials/dev/web.yaml::$.credentials[0]: error[schema]" in proc.stdout
    assert proc.stderr == VALIDATE_NOTE


def test_check_skips_the_stack_it_cannot_decrypt(keyrepo: KeyRepo) -> None:
    base = keyrepo.git("rev-parse", "HEAD")
    keyrepo.add_stack_without_key()
    proc = keyrepo.run("check", "--base", base, "--now", "2026-11-27")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stderr == CHECK_NOTE
    assert proc.stdout.endswith("0 error(s), 2 warning(s) in 5 file(s)\n")
    # The stack's files appearing on this branch is not reported as "new credentials" either.
    assert "prod-server-2026-11" not in proc.stdout


def test_a_stack_named_with_stack_must_be_decryptable(keyrepo: KeyRepo) -> None:
    keyrepo.add_stack_without_key()
    for command in ("validate", "check"):
        proc = keyrepo.run(command, "--stack", "prod")
        assert (proc.returncode, proc.stdout) == (2, ""), command
        lines = proc.stderr.splitlines()
        assert lines[0] == (
            "error: no key here can decrypt credentials/prod/_stack.yaml (and 1 more file(s))."
        )
        assert lines[2] == (
            f"  Keys here: SOPS_AGE_KEY_FILE={keyrepo.identity_file}, but it holds no key of "
            "those recipients."
        )


def test_no_decryptable_stack_at_all_is_exit_2(keyrepo: KeyRepo) -> None:
    keyrepo.add_stack_without_key()
    for command in ("validate", "check"):
        proc = keyrepo.run(command, key=False)
        assert (proc.returncode, proc.stdout) == (2, ""), command
        lines = proc.stderr.splitlines()
        assert lines[0] == (
            "error: no key here can decrypt credentials/dev/_stack.yaml (and 4 more file(s))."
        )
        assert "  No key here decrypts stack(s) prod either." in lines


def test_several_identities_in_one_key_file(keyrepo: KeyRepo) -> None:
    # What docs/validate.md tells people who hold keys for several stacks: one file, one
    # identity per line, in SOPS_AGE_KEY_FILE.
    prod_identity, prod_recipient = new_identity()
    rules = {"dev": [keyrepo.recipient], "prod": [prod_recipient]}
    keyrepo.write_bytes(".sops.yaml", sops_rules(rules).encode())
    for name in ("_stack", "server"):
        document = keyrepo.read_doc(f"credentials/dev/{name}.yaml")
        if name == "_stack":
            document["stack"] = "prod"
            document["signing_keys"][0]["kid"] = "prod-sign-2026-11"
        else:
            document["credentials"][0]["id"] = "prod-server-2026-11"
            document["credentials"][0]["key"] = "0" * 20
            document["credentials"][0]["secret"] = "1" * 20
        keyrepo.write_doc(f"credentials/prod/{name}.yaml", document)
    both = keyrepo.root.parent / "both.agekey"
    dev_identity = keyrepo.identity_file.read_text()
    both.write_text(f"{dev_identity}# prod\n{prod_identity}\n")
    proc = keyrepo.run("validate", env={"SOPS_AGE_KEY_FILE": str(both)})
    assert (proc.returncode, proc.stderr) == (0, ""), proc.stdout
    assert proc.stdout == "ok: 7 file(s) validated, no findings\n"
