"""Fixtures shared by every test; the helpers themselves live in tests/support/.

``keyrepo`` is a fresh keyops repository per test (see ``support.repo``): the encrypted
template is built once per test process and copied, so tests stay fast.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from support.repo import KeyRepo, build_template, new_repo

#: Modules of tests/support that define fixtures: every test can ask for them by name.
pytest_plugins = (
    "support.aws",
    "support.devstack",
    "support.endpoint",
    "support.fetch",
    "support.github",
    "support.infra",
)


@pytest.fixture(scope="session")
def _template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    base = tmp_path_factory.mktemp("template")
    identity, recipient = build_template(base / "repo")
    return base / "repo", identity, recipient


@pytest.fixture
def keyrepo(tmp_path: Path, _template: tuple[Path, str, str]) -> Iterator[KeyRepo]:
    yield new_repo(tmp_path, _template)
