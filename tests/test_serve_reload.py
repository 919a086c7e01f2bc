"""The bundle watcher in-process: pinning, version order, stack, and the chain of trust."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from keyops.build.bundle import build_bundle, write_bundle
from keyops.endpoint.core import Endpoint
from keyops.endpoint.reload import BundleWatcher
from keyops.endpoint.server import watch
from keyops.protocol.bundle import BUNDLE_FILE, Bundle
from support.endpoint import Forger, b64json
from support.repo import KeyRepo


def forge(bundle: Bundle, **changes: Any) -> bytes:
    """A self-consistent bundle signed by an attacker's key (every payload re-signed too)."""
    forger = Forger.of(bundle.raw, kid=bundle.signing_kid)
    forger.doc.update(changes)
    for client in forger.doc["clients"].values():
        for item in client["serve"]:
            payload = b64json(item["jws"].split(".")[1]) | {
                "key": "f" * 20,
                "stack": forger.doc["stack"],
                "bundle_version": forger.doc["bundle_version"],
            }
            item["jws"] = forger.sign(payload)
    return forger.bundle()


@pytest.fixture
def setup(keyrepo: KeyRepo, tmp_path: Path) -> tuple[Bundle, Path]:
    bundle = build_bundle(keyrepo.root, "dev", sops=keyrepo.sops())
    write_bundle(bundle, tmp_path / "b")
    return bundle, tmp_path / "b" / BUNDLE_FILE


def replace(file: Path, data: bytes) -> None:
    tmp = file.with_suffix(".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, file)


@pytest.mark.parametrize("fixed", [True, False])
def test_a_forged_bundle_is_refused_by_the_pin(
    setup: tuple[Bundle, Path], caplog: pytest.LogCaptureFixture, fixed: bool
) -> None:
    bundle, file = setup
    endpoint = Endpoint()
    watcher = BundleWatcher(file, endpoint, jwks=bundle.jwks(), fixed=fixed)
    assert watcher.check() and endpoint.bundle is not None
    forged = forge(bundle, bundle_version=bundle.bundle_version + 5)
    # Integrity alone (its own embedded keys) would accept it: only the pin stops it.
    assert Bundle.from_bytes(forged).bundle_version == bundle.bundle_version + 5
    replace(file, forged)
    with caplog.at_level(logging.WARNING, logger="keyops.serve"):
        assert watcher.check() is False
    assert endpoint.bundle.raw == bundle.raw
    assert endpoint.metrics.reload_failures == 1
    assert f"ignored a new bundle, still serving version {bundle.bundle_version}: " in caplog.text
    assert "the signature of the bundle does not verify" in caplog.text


def test_lower_version_and_other_stack_are_refused(
    setup: tuple[Bundle, Path], keyrepo: KeyRepo, caplog: pytest.LogCaptureFixture
) -> None:
    bundle, file = setup
    newer = build_bundle(keyrepo.root, "dev", sops=keyrepo.sops(), floor=bundle.bundle_version)
    write_bundle(newer, file.parent)
    endpoint = Endpoint()
    watcher = BundleWatcher(file, endpoint)
    assert watcher.check() and endpoint.bundle.bundle_version == newer.bundle_version
    replace(file, bundle.raw)  # an older bundle put back
    with caplog.at_level(logging.WARNING, logger="keyops.serve"):
        assert watcher.check() is False
    assert (
        f"the new bundle's version {bundle.bundle_version} is below the serving version "
        f"{newer.bundle_version}" in caplog.text
    )
    assert endpoint.bundle.raw == newer.raw
    assert watcher.check() is False  # unchanged file: not retried, not logged again
    assert endpoint.metrics.reload_failures == 1


def test_unpinned_watcher_trusts_the_first_bundle_then_follows_it(
    setup: tuple[Bundle, Path],
) -> None:
    bundle, file = setup
    endpoint = Endpoint()
    watcher = BundleWatcher(file, endpoint)
    assert watcher.check()
    assert watcher.pin == bundle.jwks()
    replace(file, forge(bundle, bundle_version=bundle.bundle_version + 1))
    assert watcher.check() is False  # signed by a key the serving bundle does not trust


def test_the_watch_reads_bundles_off_the_event_loop(
    setup: tuple[Bundle, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """While a bundle check is stuck in the file system, the loop still runs other tasks."""
    _, file = setup
    endpoint = Endpoint()
    watcher = BundleWatcher(file, endpoint)
    entered, release, ticked = threading.Event(), threading.Event(), threading.Event()

    def stuck() -> bool:
        entered.set()
        release.wait(120)
        return False

    monkeypatch.setattr(watcher, "check", stuck)

    async def main() -> None:
        watching = asyncio.create_task(watch(watcher, endpoint, 0.01))
        while not entered.is_set():
            await asyncio.sleep(0.01)
        for _ in range(5):  # each sleep needs the loop: a check on the loop would block them
            await asyncio.sleep(0.01)
        ticked.set()
        release.set()
        watching.cancel()

    runner = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    runner.start()
    assert ticked.wait(120), "the event loop was blocked by the bundle check"
    release.set()
    runner.join(60)


def test_the_watch_outlives_any_failure(
    setup: tuple[Bundle, Path], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _, file = setup
    endpoint = Endpoint()
    watcher = BundleWatcher(file, endpoint)
    calls: list[int] = []

    def failing() -> bool:
        calls.append(1)
        raise RuntimeError("surprise")

    monkeypatch.setattr(watcher, "check", failing)

    async def main() -> None:
        watching = asyncio.create_task(watch(watcher, endpoint, 0.01))
        while len(calls) < 3:
            await asyncio.sleep(0.01)
        assert not watching.done()
        watching.cancel()

    with caplog.at_level(logging.ERROR, logger="keyops"):
        asyncio.run(main())
    assert "the bundle watcher failed: RuntimeError at " in caplog.text
