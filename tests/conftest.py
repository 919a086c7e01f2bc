"""Fixtures shared by every test; the helpers themselves live in tests/support/.

``keyrepo`` is a fresh keyops repository per test (see ``support.repo``): the encrypted
template is built once per test process and copied, so tests stay fast.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.repo import KeyRepo, build_template

#: Modules of tests/support that define fixtures: every test can ask for them by name.
pytest_plugins = (
    "support.endpoint",
    "support.fetch",
    "support.github",
    "support.infra",
    "support.newrepo",
)


@pytest.fixture(scope="session")
def _template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    base = tmp_path_factory.mktemp("template")
    identity, recipient = build_template(base / "repo")
    return base / "repo", identity, recipient


@pytest.fixture
def keyrepo(tmp_path: Path, _template: tuple[Path, str, str]) -> Iterator[KeyRepo]:
    template, identity, recipient = _template
    root = tmp_path / "repo"
    shutil.copytree(template, root, symlinks=True)
    home = tmp_path / "home"
    home.mkdir()
    keyfile = tmp_path / "identity.agekey"
    keyfile.write_text(f"# test identity\n{identity}\n")
    repo = KeyRepo(root=root, identity_file=keyfile, recipient=recipient, home=home)
    repo.git("init", "--quiet", "--initial-branch=main")
    repo.commit("initial credentials")
    yield repo
