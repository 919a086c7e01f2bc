"""`keyops validate` on missing, empty, unreadable and out-of-place input."""

from __future__ import annotations

import os

import pytest

from support.repo import KeyRepo
from support.validate import expect_findings, findings, run


def test_sample_repository_is_clean(keyrepo: KeyRepo) -> None:
    proc = run(keyrepo, "validate")
    assert (proc.returncode, proc.stdout, proc.stderr) == (
        0,
        "ok: 5 file(s) validated, no findings\n",
        "",
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("credentials/dev/nope.yaml",),
            "error: credentials/dev/nope.yaml does not exist. Check the path.\n",
        ),
        (("credentials/nope",), "error: credentials/nope does not exist. Check the path.\n"),
        (
            ("--stack", "prod"),
            "error: stack 'prod' does not exist (no credentials/prod/ directory). "
            "Known stacks: dev.\n",
        ),
        (
            (".sops.yaml",),
            "error: .sops.yaml is not under credentials/. Name credential files or directories.\n",
        ),
    ],
    ids=["missing-file", "missing-directory", "missing-stack", "not-credentials"],
)
def test_missing_input_is_a_usage_error(
    keyrepo: KeyRepo, args: tuple[str, ...], message: str
) -> None:
    proc = run(keyrepo, "validate", *args)
    assert (proc.returncode, proc.stdout, proc.stderr) == (2, "", message)


def test_path_outside_the_repository(keyrepo: KeyRepo) -> None:
    outside = keyrepo.root.parent / "elsewhere.yaml"
    outside.write_text("client: x\n")
    proc = run(keyrepo, "validate", str(outside))
    assert proc.returncode == 2
    assert proc.stderr == (
        f"error: {outside} is outside the repository {keyrepo.root}. "
        "Name files under credentials/.\n"
    )


def test_not_a_repository(keyrepo: KeyRepo) -> None:
    empty = keyrepo.root.parent / "empty"
    empty.mkdir()
    proc = run(keyrepo, "-C", str(empty), "validate")
    assert proc.returncode == 2
    assert proc.stderr == (
        f"error: {empty} is not a keyops repository (no credentials/ or .sops.yaml). "
        "Point --repo at the directory that holds credentials/ and .sops.yaml.\n"
    )


@pytest.mark.parametrize(
    ("content", "line"),
    [
        (b"", "credentials/dev/extra.yaml::$: error[schema] the file is empty"),
        (b"# only a comment\n", "credentials/dev/extra.yaml::$: error[schema] the file is empty"),
        (
            b"client: [unclosed\n  foo: : bar\n",
            "credentials/dev/extra.yaml::$: error[schema] not valid YAML: "
            "expected ',' or ']', but got ':' (line 2)",
        ),
        (
            b"just a sentence\n",
            "credentials/dev/extra.yaml::$: error[schema] the file must hold a YAML mapping at "
            "the top level (line 1)",
        ),
        (
            b"\x00\x01\x02\xffbinary",
            "credentials/dev/extra.yaml::$: error[schema] the file is binary (it contains NUL "
            "bytes), not YAML",
        ),
        (
            b"client: caf\xe9\n",
            "credentials/dev/extra.yaml::$: error[schema] the file is not UTF-8 text (invalid "
            "byte at offset 11) (line 1)",
        ),
    ],
    ids=["empty", "comment-only", "not-yaml", "scalar", "binary", "latin1"],
)
def test_unreadable_content_is_a_finding(keyrepo: KeyRepo, content: bytes, line: str) -> None:
    keyrepo.write_bytes("credentials/dev/extra.yaml", content)
    proc = run(keyrepo, "validate", "credentials/dev/extra.yaml")
    assert proc.returncode == 1
    assert findings(proc) == [line]
    assert proc.stdout.endswith("1 error(s), 0 warning(s) in 1 file(s)\n")
    assert proc.stderr == ""


def test_ten_megabyte_file_is_refused_by_size(keyrepo: KeyRepo) -> None:
    keyrepo.write_bytes("credentials/dev/huge.yaml", b"a: b\n" * (2 * 1024 * 1024))
    expect_findings(
        keyrepo,
        (),
        [
            "credentials/dev/huge.yaml::$: error[schema] the file is 10,485,760 bytes, over the "
            "1,048,576-byte limit for a credential file; a credential file holds a few "
            "credentials, so this is not one (remove it or move it out of credentials/)"
        ],
    )


def test_symlink_leaving_the_repository(keyrepo: KeyRepo) -> None:
    target = keyrepo.root.parent / "outside.yaml"
    target.write_text("client: evil\n")
    os.symlink(target, keyrepo.path("credentials/dev/evil.yaml"))
    expect_findings(
        keyrepo,
        (),
        [
            f"credentials/dev/evil.yaml::$: error[schema] is a symlink to {str(target)!r}, which "
            "leaves the repository; credential files must be regular files in the repository"
        ],
    )


def test_misplaced_files(keyrepo: KeyRepo) -> None:
    keyrepo.write_bytes("credentials/dev/notes.txt", b"hello\n")
    keyrepo.write_bytes("credentials/dev/old/ios.yaml", b"client: ios\n")
    keyrepo.write_bytes("credentials/loose.yaml", b"client: loose\n")
    expect_findings(
        keyrepo,
        ("--no-decrypt",),
        [
            "credentials/dev/notes.txt::$: error[schema] unexpected file; credential files end in "
            ".yaml",
            "credentials/dev/old/ios.yaml::$: error[schema] unexpected location; credential files "
            "live at credentials/<stack>/<client>.yaml",
            "credentials/loose.yaml::$: error[schema] unexpected location; credential files live "
            "at credentials/<stack>/<client>.yaml",
        ],
    )


def test_path_arguments_select_files(keyrepo: KeyRepo) -> None:
    keyrepo.write_bytes("credentials/dev/broken.yaml", b"")
    one = run(keyrepo, "validate", "credentials/dev/web.yaml")
    assert (one.returncode, one.stdout) == (0, "ok: 1 file(s) validated, no findings\n")
    two = run(keyrepo, "validate", "credentials/dev/web.yaml", "credentials/dev/ios.yaml")
    assert two.stdout == "ok: 2 file(s) validated, no findings\n"
    everything = run(keyrepo, "validate", "credentials/dev/")
    assert everything.returncode == 1
    assert everything.stdout.endswith("1 error(s), 0 warning(s) in 6 file(s)\n")


def test_path_relative_to_the_working_directory(keyrepo: KeyRepo) -> None:
    proc = run(keyrepo, "validate", "web.yaml", cwd=keyrepo.path("credentials/dev"))
    assert (proc.returncode, proc.stdout) == (0, "ok: 1 file(s) validated, no findings\n")


def test_stack_filter(keyrepo: KeyRepo) -> None:
    keyrepo.write_bytes("credentials/staging/web.yaml", b"")
    only_dev = run(keyrepo, "validate", "--stack", "dev")
    assert (only_dev.returncode, only_dev.stdout) == (
        0,
        "ok: 5 file(s) validated, no findings\n",
    )
    only_staging = run(keyrepo, "validate", "--stack", "staging", "--no-decrypt")
    assert only_staging.returncode == 1
    assert findings(only_staging) == [
        "credentials/staging/_stack.yaml::$: error[schema] stack 'staging' has no stack file; "
        "create credentials/staging/_stack.yaml with the stack's signing key (see README: "
        "Adding a stack)",
        "credentials/staging/web.yaml::$: error[schema] the file is empty",
    ]


def test_selecting_one_file_does_not_report_the_stack_file_missing(keyrepo: KeyRepo) -> None:
    """Regression: the stack-file check looked only at the selected files."""
    proc = run(keyrepo, "validate", "--no-decrypt", "credentials/dev/ios.yaml")
    assert (proc.returncode, proc.stdout) == (
        0,
        "ok: 1 file(s) checked without decryption, no findings\n",
    )


def test_symlinked_stack_directory_leaving_the_repository(keyrepo: KeyRepo) -> None:
    elsewhere = keyrepo.root.parent / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "web.yaml").write_text("client: web\n")
    os.symlink(elsewhere, keyrepo.path("credentials/prod"))
    expect_findings(
        keyrepo,
        ("--no-decrypt",),
        [
            f"credentials/prod::$: error[schema] is a symlink to {str(elsewhere)!r}, which leaves "
            "the repository; credential files must be regular files in the repository"
        ],
    )


def test_symlink_inside_the_repository_is_refused_like_in_git(keyrepo: KeyRepo) -> None:
    os.symlink("web.yaml", keyrepo.path("credentials/dev/www.yaml"))
    os.symlink("nowhere.yaml", keyrepo.path("credentials/dev/dangling.yaml"))
    expect_findings(
        keyrepo,
        ("--no-decrypt",),
        [
            "credentials/dev/dangling.yaml::$: error[schema] is a symlink to 'nowhere.yaml'; "
            "credential files must be regular files in the repository",
            "credentials/dev/www.yaml::$: error[schema] is a symlink to 'web.yaml'; credential "
            "files must be regular files in the repository",
        ],
    )


def test_stack_directory_without_files(keyrepo: KeyRepo) -> None:
    keyrepo.path("credentials/staging").mkdir()
    proc = run(keyrepo, "validate", "--stack", "staging")
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == (
        "error: stack 'staging' has no credential files (credentials/staging/ holds no file). "
        "Known stacks: dev.\n"
    )


def test_path_selecting_nothing_is_an_error(keyrepo: KeyRepo) -> None:
    keyrepo.write_bytes("credentials/dev/.draft.yaml", b"client: draft\n")
    keyrepo.path("credentials/staging").mkdir()
    hidden = run(keyrepo, "validate", "credentials/dev/.draft.yaml")
    assert (hidden.returncode, hidden.stdout) == (2, "")
    assert hidden.stderr == (
        "error: credentials/dev/.draft.yaml holds no credential file to validate. Name "
        "credentials/<stack>/<client>.yaml files or their directories (files starting with '.' "
        "are skipped).\n"
    )
    empty = run(keyrepo, "validate", "credentials/staging")
    assert empty.returncode == 2
    assert empty.stderr.startswith("error: credentials/staging holds no credential file to ")
    other_stack = run(keyrepo, "validate", "--stack", "dev", "credentials/dev/web.yaml")
    assert other_stack.returncode == 0
