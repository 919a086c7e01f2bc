"""The Node test peers fail loudly when Node or npm is missing: never a silent skip."""

from __future__ import annotations

import pytest

from support import npm
from support.soketi import PUSHER_DIR


def test_without_node_the_install_names_the_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(npm.Missing) as caught:
        npm.install(PUSHER_DIR)
    message = str(caught.value)
    assert message.startswith("node is not installed, and the Node.js tests need it. ")
    assert "apt-get install -y nodejs npm" in message and "'make e2e'" in message


def test_the_script_form_exits_2_with_the_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    assert npm.main(["tests/e2e/pusher"]) == 2
    assert capsys.readouterr().err.startswith("error: node is not installed")


def test_the_pusher_peers_are_pinned_by_a_committed_lockfile() -> None:
    import json

    package = json.loads((PUSHER_DIR / "package.json").read_text())
    lock = json.loads((PUSHER_DIR / "package-lock.json").read_text())
    assert package["dependencies"] == {"@soketi/soketi": "1.6.1", "pusher-js": "8.6.0"}
    # soketi's uWebSockets.js comes from a git URL no install here can fetch: npm takes a
    # registry build instead (native binaries for Node 16, 18 and 20; support.soketi checks).
    assert package["overrides"] == {
        "uWebSockets.js": "npm:@trufflesuite/uws-js-unofficial@20.30.0-unofficial.0"
    }
    packages = lock["packages"]
    assert packages["node_modules/@soketi/soketi"]["version"] == "1.6.1"
    assert packages["node_modules/pusher-js"]["version"] == "8.6.0"
    uws = packages["node_modules/uWebSockets.js"]
    assert uws["name"] == "@trufflesuite/uws-js-unofficial"
    # Every package is pinned by its integrity hash, and none comes from git.
    for name, entry in packages.items():
        if name:
            assert entry.get("integrity", "").startswith("sha512-"), name
            assert not str(entry.get("resolved", "")).startswith(("git", "http://")), name
    assert (PUSHER_DIR / ".npmrc").read_text().splitlines()[-1] == "ignore-scripts=true"
