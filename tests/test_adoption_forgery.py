"""Adoption figures cannot be moved cheaply: replays and one install's many tokens change nothing.

A security review moved a credential from 10% to 0.9% by replaying one token 1,000 times. Here
ten installs hold keys (one on the old key: 10%); then one token is replayed 1,000 times, and one
install sends 1,000 fresh tokens. The figures must not move:

- through the endpoint-side modules as the endpoint will use them (replay cache in front,
  distinct install counts behind, EMF lines for CloudWatch), read back by ``keyops adoption``;
- end to end against a real ``keyops serve``.
"""

from __future__ import annotations

import json
import secrets
from collections import defaultdict
from pathlib import Path

import httpx
import pytest

from keyops.core.errors import ServiceError
from keyops.endpoint.emf import EmfLog
from keyops.endpoint.installs import InstallCounter, held_label, install_hash, render
from keyops.endpoint.replay import ReplayCache
from support.emf import emf_document
from support.endpoint import app_auth, claims, mint, start_server
from support.repo import KeyRepo

NEW, OLD = "ios-2026-11", "ios-2026-05"
IDS = (NEW, OLD)
SALT = b"q" * 32
NOW = 1_800_000_000.0
INSTALLS = [(f"install-{n:04d}", OLD if n == 0 else NEW) for n in range(10)]


class Pipeline:
    """What the endpoint does per verified token, in the order the wiring puts it."""

    def __init__(self) -> None:
        self.replay = ReplayCache()
        self.installs = InstallCounter(window_seconds=86400)
        self.lines: list[str] = []
        self.emf = EmfLog("dev", SALT, write=self.lines.append, clock=lambda: NOW)
        self.refused = 0

    def answer(self, jti: str, install_id: str, held: str, now: float) -> None:
        try:
            self.replay.check("ios", jti, now, iat=now)
        except ServiceError as error:
            self.refused += 1
            self.emf.error(error.status, error.code)
            return
        label = held_label(held, IDS)
        self.installs.observe("ios", label, install_hash(SALT, install_id), now)
        self.emf.served("ios", NEW, label, install_id)

    def adoption(self, repo: KeyRepo, tmp_path: Path) -> dict[str, float]:
        text = "\n".join(render("dev", [self.installs.snapshot(NOW)], NOW, 86400)) + "\n"
        path = tmp_path / "metrics.txt"
        path.write_text(text)
        proc = repo.run("adoption", "--from", str(path))
        assert proc.returncode == 0, proc.stderr
        credentials = json.loads(proc.stdout)["credentials"]
        return {ident: credentials[ident]["percent"] for ident in credentials}

    def distinct_from_logs(self) -> dict[str, int]:
        """What Logs Insights' count_distinct(install) by Held computes over the EMF lines."""
        seen: dict[str, set[str]] = defaultdict(set)
        for line in self.lines:
            document = emf_document(line)
            if document.get("Served") and document["Held"] != "none":
                seen[document["Held"]].add(document["install"])
        return {held: len(hashes) for held, hashes in seen.items()}


def test_replays_and_one_installs_tokens_move_no_figure(keyrepo: KeyRepo, tmp_path: Path) -> None:
    pipe = Pipeline()
    for install_id, held in INSTALLS:
        pipe.answer(secrets.token_urlsafe(16), install_id, held, NOW)
    before = pipe.adoption(keyrepo, tmp_path)
    assert before == {OLD: 10.0, NEW: 90.0}
    assert pipe.distinct_from_logs() == {OLD: 1, NEW: 9}

    captured = secrets.token_urlsafe(16)
    pipe.answer(captured, "install-0001", NEW, NOW + 1)
    for i in range(1000):
        pipe.answer(captured, "install-0001", NEW, NOW + 1 + i / 1000)
    assert pipe.refused == 1000
    assert pipe.adoption(keyrepo, tmp_path) == before
    assert pipe.distinct_from_logs() == {OLD: 1, NEW: 9}

    for _ in range(1000):  # fresh, valid tokens, all from one install
        pipe.answer(secrets.token_urlsafe(16), "install-0002", NEW, NOW + 2)
    assert pipe.adoption(keyrepo, tmp_path) == before
    assert pipe.distinct_from_logs() == {OLD: 1, NEW: 9}


@pytest.mark.slow
def test_against_keyops_serve_replays_and_one_installs_tokens_move_no_figure(
    keyrepo: KeyRepo, tmp_path: Path
) -> None:
    out = tmp_path / "bundle"
    assert keyrepo.run("build", "--stack", "dev", "--out", str(out)).returncode == 0
    running = start_server(keyrepo, ["--bundle", str(out)], tmp_path / "log")
    kid, secret = app_auth(keyrepo)

    def figures() -> tuple[str, dict[str, float]]:
        proc = keyrepo.run("adoption", "--from", running.url)
        assert proc.returncode == 0, proc.stderr
        document = json.loads(proc.stdout)
        return document["method"], {
            ident: entry["percent"] for ident, entry in document["credentials"].items()
        }

    try:
        with httpx.Client(base_url=running.url, timeout=10) as http:

            def send(token: str) -> int:
                answer = http.get("/v1/credentials", headers={"Authorization": f"Bearer {token}"})
                return answer.status_code

            for install_id, held in INSTALLS:
                assert send(mint(kid, secret, claims(install_id=install_id, held=held))) == 200
            before = figures()
            assert before == ("endpoint-installs", {OLD: 10.0, NEW: 90.0})
            replayed = mint(kid, secret, claims(install_id="install-0001", held=NEW))
            statuses = {send(replayed) for _ in range(1000)}
            assert statuses == {200, 401}
            assert figures() == before
            for _ in range(1000):
                token = mint(kid, secret, claims(install_id="install-0002", held=NEW))
                assert send(token) == 200
            assert figures() == before
    finally:
        running.stop()
