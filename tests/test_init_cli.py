"""``keyops init``: the data layout of a credentials repository, written from package data."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

import pytest

from keyops import __version__
from keyops.store import age, layout, settings, sopsconfig
from support.newrepo import make_initrepo
from support.repo import PROJECT, KeyRepo, clean_env
from support.workflows import NAMES, TEMPLATE_WORKFLOWS

LAYOUT = [
    ".gitattributes",
    ".github/CODEOWNERS",
    ".github/workflows/deploy.yml",
    ".github/workflows/hygiene.yml",
    ".github/workflows/pr.yml",
    ".github/workflows/retire-approval.yml",
    ".gitignore",
    ".pre-commit-config.yaml",
    ".sops.yaml",
    "Pulumi.yaml",
    "credentials/.gitkeep",
    "infra/__main__.py",
    "policies/infra/PulumiPolicy.yaml",
    "policies/infra/__main__.py",
    "policies/keyops.yaml",
    "policies/waivers.yaml",
    "requirements.txt",
    "stacks/README.md",
]


def _git_repo(base: Path) -> Path:
    root = base / "repo"
    root.mkdir()
    subprocess.run(["git", "init", "--quiet"], cwd=root, env=clean_env(base), check=True)
    return root


def _init(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    from support.cli import run_in_process

    return run_in_process(["init", *args], env=clean_env(root.parent), cwd=root)


def test_init_writes_the_layout_and_prints_the_next_steps(tmp_path: Path) -> None:
    root = _git_repo(tmp_path)
    (root / "sub").mkdir()
    proc = _init(root / "sub", "--approver", "alice", "--approver", "bob")  # from a subdirectory
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == f"wrote {len(LAYOUT)} files into {root}:"
    assert lines[1 : 1 + len(LAYOUT)] == [f"  {p}" for p in LAYOUT]
    pin = layout.requirement()
    assert lines[1 + len(LAYOUT)] == f"requirements.txt pins {pin.line}"
    assert "next:" in lines
    assert "  1. keyops keygen --out ~/.config/sops/age/keys.txt" in proc.stdout
    written = sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and ".git" not in p.relative_to(root).parts[:1]
    )
    assert written == LAYOUT  # none of keyops' own src/ or tests/
    for path in LAYOUT:
        assert stat.S_IMODE((root / path).stat().st_mode) == 0o644, path

    rules = settings.load(root)
    assert rules.approvers == ("alice", "bob")
    assert rules.test_recipients == (age.TEST_ONLY_RECIPIENT,) and rules.test_stacks == ()
    assert sopsconfig.load(root).rules == ()
    codeowners = (root / ".github/CODEOWNERS").read_text().splitlines()
    assert codeowners[1:] == [
        "/credentials/      @alice @bob",
        "/policies/         @alice @bob",
        "/.sops.yaml        @alice @bob",
        "/.github/          @alice @bob",
        "/requirements.txt  @alice @bob",
    ]
    requirements = (root / "requirements.txt").read_text()
    assert requirements.splitlines()[-1] == pin.line
    assert f"written by keyops {__version__}" in requirements
    for name in NAMES:
        assert (root / ".github/workflows" / name).read_bytes() == (
            TEMPLATE_WORKFLOWS / name
        ).read_bytes()
    # The Pulumi program and the CrossGuard pack are the very files of this repository.
    for path in ("infra/__main__.py", "policies/infra/__main__.py"):
        assert (root / path).read_bytes() == (PROJECT / path).read_bytes(), path


def test_an_empty_repository_validates_and_lists_no_stack(initrepo: KeyRepo) -> None:
    proc = initrepo.run("validate")
    assert (proc.returncode, proc.stdout) == (0, "ok: 0 file(s) validated, no findings\n")
    proc = initrepo.run("stack", "list", "--format", "json")
    assert (proc.returncode, proc.stdout) == (0, "[]\n")


def test_init_never_overwrites_without_force(tmp_path: Path) -> None:
    root = _git_repo(tmp_path)
    (root / ".gitignore").write_text("node_modules/\n")
    (root / "policies").mkdir()
    (root / "policies" / "keyops.yaml").write_text("approvers: [carol]\n")
    proc = _init(root)
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == (
        f"error: keyops init would overwrite 2 existing file(s) in {root}: .gitignore, "
        "policies/keyops.yaml; nothing was written. Move them aside, or pass --force to replace "
        "them.\n"
    )
    assert sorted(p.name for p in root.iterdir()) == [".git", ".gitignore", "policies"]
    proc = _init(root, "--force")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == f"wrote {len(LAYOUT)} files into {root} (2 replaced):"
    assert "note: no --approver given; list approvers in policies/keyops.yaml" in proc.stdout
    assert settings.load(root).approvers == ()
    codeowners = (root / ".github/CODEOWNERS").read_text().splitlines()
    assert [line for line in codeowners if not line.startswith("#")] == []


def test_init_needs_a_git_repository(tmp_path: Path) -> None:
    proc = _init(tmp_path)
    assert proc.returncode == 2
    assert proc.stderr == (
        f"error: {tmp_path} is not inside a git repository. Create one first (git init), then "
        "run keyops init in it.\n"
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("login", ["@alice", "keyops-org/security", "bob--x", "carol-"])
def test_approvers_must_be_github_logins(tmp_path: Path, login: str) -> None:
    root = _git_repo(tmp_path)
    proc = _init(root, "--approver", login)
    assert proc.returncode == 2
    assert proc.stderr == (
        f"error: --approver {login!r} is not a GitHub login. Give the login of a person "
        "(letters, digits and single hyphens), without '@'.\n"
    )


# -- the pin in requirements.txt: the keyops that ran init ------------------------------------


def _fake_distribution(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, direct: dict[str, object] | None
) -> None:
    info = tmp_path / "site" / "fakekeyops-1.2.3.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fakekeyops\nVersion: 1.2.3\n")
    if direct is not None:
        (info / "direct_url.json").write_text(json.dumps(direct))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))


@pytest.mark.parametrize(
    ("direct", "line", "noted"),
    [
        (None, "keyops[deploy]==1.2.3", False),
        (
            {
                "url": "https://github.com/acme/keyops.git",
                "vcs_info": {"vcs": "git", "commit_id": "0123abc" * 5 + "01234"},
            },
            "keyops[deploy] @ git+https://github.com/acme/keyops.git@" + "0123abc" * 5 + "01234",
            False,
        ),
        (
            {"url": "https://files.example.com/keyops-1.2.3.tar.gz", "archive_info": {}},
            "keyops[deploy] @ https://files.example.com/keyops-1.2.3.tar.gz",
            False,
        ),
        (
            {"url": "file:///home/me/keyops", "dir_info": {"editable": True}},
            "keyops[deploy]==1.2.3",
            True,
        ),
    ],
)
def test_the_pin_is_where_keyops_was_installed_from(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    direct: dict[str, object] | None,
    line: str,
    noted: bool,
) -> None:
    _fake_distribution(tmp_path, monkeypatch, direct)
    pin = layout.requirement("fakekeyops")
    assert pin.line == line
    assert (pin.note is not None) == noted
    if noted:
        assert pin.note is not None and "file:///home/me/keyops" in pin.note


def test_every_template_ships_as_package_data() -> None:
    import tomllib

    patterns = tomllib.loads((PROJECT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["keyops"]
    assert "templates/**/*" in patterns
    assert [path for path, _ in layout.template_files()] == LAYOUT


def test_a_second_repository_made_the_same_way_is_the_same(tmp_path: Path) -> None:
    one, two = make_initrepo(tmp_path / "a"), make_initrepo(tmp_path / "b")
    for path in LAYOUT:
        assert (one.root / path).read_bytes() == (two.root / path).read_bytes(), path


def test_a_failed_init_puts_everything_back(tmp_path: Path) -> None:
    root = _git_repo(tmp_path)
    (root / ".gitignore").write_text("node_modules/\n")
    (root / "stacks" / "README.md").mkdir(parents=True)  # in the way of the last file
    proc = _init(root, "--force")
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr.startswith(f"error: cannot write {root / 'stacks' / 'README.md'}: ")
    left = sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.relative_to(root).parts[0] != ".git"
    )
    assert left == [".gitignore", "stacks", "stacks/README.md"]
    assert (root / ".gitignore").read_text() == "node_modules/\n"
