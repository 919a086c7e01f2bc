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
    "support.pusher_api",
    "support.newrepo",
)


@pytest.fixture(scope="session")
def _template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    base = tmp_path_factory.mktemp("template")
    identity, recipient = build_template(base / "repo")
    return base / "repo", identity, recipient


@pytest.fixture
def keyrepo(tmp_path: Path, _template: tuple[Path, str, str]) -> Iterator[KeyRepo]:
    yield new_repo(tmp_path, _template)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Show what tests measured (``record_property("measured", text)``), also under xdist.

    Speed is never asserted here (the machine is shared); it is shown, so that a person sees it.
    """
    lines = [
        f"{report.nodeid.split('::')[-1]}: {value}"
        for reports in terminalreporter.stats.values()
        for report in reports
        if getattr(report, "when", None) == "call"
        for name, value in getattr(report, "user_properties", [])
        if name == "measured"
    ]
    if lines:
        terminalreporter.section("measured")
        for line in lines:
            terminalreporter.write_line(line)
