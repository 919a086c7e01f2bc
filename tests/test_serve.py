"""``keyops serve`` as a real server on 127.0.0.1: protocol, reloads, expiry, metrics."""

from __future__ import annotations

import datetime as dt
import socket
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keyops.policy.evidence import load_adoption
from support.endpoint import (
    Server,
    app_auth,
    claims,
    jwks_of,
    mint,
    new_epk,
    open_answer,
    start_server,
)
from support.repo import KeyRepo


def get(url: str, token: str | None = None, **headers: Any) -> httpx.Response:
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.get(url + "/v1/credentials", headers=headers, timeout=10)


def test_happy_path_over_http(server: Server, served_repo: KeyRepo, bundle_dir: Path) -> None:
    epk = new_epk()
    token = mint(*app_auth(served_repo), claims(epk, held="ios-2026-05"))
    answer = get(server.url, token, Accept="application/jose")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/jose"
    assert answer.headers["cache-control"] == "no-store"
    payload = open_answer(answer.content, epk, jwks_of(bundle_dir))
    key = served_repo.decrypt("credentials/dev/ios.yaml")["credentials"][0]["key"]
    assert payload["credential_id"] == "ios-2026-11"
    assert payload["key"] == key
    health = httpx.get(server.url + "/healthz").json()
    assert health["status"] == "ok" and health["bundle_version"] == payload["bundle_version"]


def test_errors_over_http_are_problem_json(server: Server, served_repo: KeyRepo) -> None:
    kid, secret = app_auth(served_repo)
    cases = [
        (get(server.url), 401, "invalid-token"),
        (get(server.url, mint(kid, b"y" * 32, claims())), 401, "invalid-token"),
        (
            get(server.url, mint(kid, secret, claims(iat=int(time.time()) - 1000))),
            401,
            "stale-token",
        ),
        (get(server.url, mint(kid, secret, claims(install_id="x"))), 400, "bad-request"),
        (get(server.url, mint(kid, secret, claims(app_version="0.0.1-alpha"))), 200, None),
    ]
    for answer, status, code in cases:
        assert answer.status_code == status
        if code:
            assert answer.headers["content-type"] == "application/problem+json"
            assert answer.json()["code"] == code
    assert "Bearer" not in server.output() and secret.hex() not in server.output()


def raw_get(url: str, header_value: bytes) -> int | None:
    """Send the header bytes exactly as given (httpx would refuse control characters)."""
    host, port = url.removeprefix("http://").split(":")
    request = (
        b"GET /v1/credentials HTTP/1.1\r\nHost: "
        + host.encode()
        + b"\r\nAuthorization: "
        + header_value
        + b"\r\nConnection: close\r\n\r\n"
    )
    data = b""
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        try:
            sock.sendall(request)
            while chunk := sock.recv(65536):
                data += chunk
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused mid-send: the answer, if any, is in data
    if not data:
        return None  # the HTTP parser dropped the request: no answer, and not a 5xx
    return int(data.split(b" ", 2)[1])


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    value=st.binary(min_size=1, max_size=300).map(
        lambda b: b.replace(b"\r", b"").replace(b"\n", b"")
    )
    | st.integers(min_value=9000, max_value=60_000).map(lambda n: b"Bearer " + b"A" * n)
)
def test_hostile_authorization_headers_live(server: Server, value: bytes) -> None:
    # Non-UTF-8 and control bytes and huge headers reach the real server: only 400/401 back,
    # or 431 for a head over 16 KiB.
    assert raw_get(server.url, value) in (None, 400, 401, 431)


def _fetch_loop(url: str, token_for: Any, stop: threading.Event, seen: list[Any]) -> None:
    with httpx.Client(timeout=10) as client:
        while not stop.is_set():
            epk = new_epk()
            answer = client.get(
                url + "/v1/credentials", headers={"Authorization": f"Bearer {token_for(epk)}"}
            )
            seen.append((answer.status_code, answer.content, epk))


def _with_pending_rollout(repo: KeyRepo) -> str:
    doc = repo.decrypt("credentials/dev/ios.yaml")
    doc["credentials"].insert(
        0,
        {
            "id": "ios-2026-12",
            "state": "pending",
            "key": "c" * 20,
            "secret": "d" * 20,
            "created": "2026-11-25",
            "rollout_percent": 100,
        },
    )
    repo.write_doc("credentials/dev/ios.yaml", doc)
    return "c" * 20


IGNORED = "ignored a new bundle, still serving version 1: error: the bundle "


def _wait_for_log(running: Any, text: str, count: int, limit: float = 120) -> None:
    deadline = time.monotonic() + limit
    while running.output().count(text) < count:
        assert time.monotonic() < deadline, running.output()
        time.sleep(0.1)


def test_reload_keeps_last_good_then_takes_new(keyrepo: KeyRepo, tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    assert keyrepo.run("build", "--stack", "dev", "--out", str(out)).returncode == 0
    jwks = jwks_of(out)
    running = start_server(keyrepo, ["--bundle", str(out), "--poll", "0.1"], tmp_path / "log")
    kid, secret = app_auth(keyrepo)
    stop, seen = threading.Event(), []
    loop = threading.Thread(
        target=_fetch_loop,
        args=(running.url, lambda epk: mint(kid, secret, claims(epk)), stop, seen),
    )
    loop.start()
    try:
        time.sleep(0.5)
        good = (out / "bundle.jws").read_bytes()
        # A torn write in place, then garbage: both must be ignored. Wait for the server to
        # have looked at each (bounded), so a busy machine cannot make the poller skip one.
        (out / "bundle.jws").write_bytes(good[: len(good) // 2])
        _wait_for_log(running, IGNORED, 1)
        (out / "bundle.jws").write_bytes(b"\x00garbage\xff" * 10)
        _wait_for_log(running, IGNORED, 2)
        assert httpx.get(running.url + "/healthz").json()["bundle_version"] == 1
        (out / "bundle.jws").write_bytes(good)
        new_key = _with_pending_rollout(keyrepo)
        assert keyrepo.run("build", "--stack", "dev", "--out", str(out)).returncode == 0
        deadline = time.monotonic() + 120
        while httpx.get(running.url + "/healthz").json()["bundle_version"] != 2:
            assert time.monotonic() < deadline, running.output()
            time.sleep(0.1)
        time.sleep(0.3)
    finally:
        stop.set()
        loop.join()
        running.stop()
    statuses = {status for status, _, _ in seen}
    assert statuses == {200}, running.output()
    keys = [open_answer(body, epk, jwks)["key"] for _, body, epk in seen]
    assert keys[-1] == new_key  # the pending 100% key, without a restart
    assert len(seen) > 20
    log = running.output()
    assert log.count(IGNORED) == 2
    assert "serving bundle version 2 of stack dev" in log


def test_expired_bundle_503_and_refusal_to_start(keyrepo: KeyRepo, tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    assert keyrepo.run("build", "--stack", "dev", "--out", str(out)).returncode == 0
    running = start_server(keyrepo, ["--bundle", str(out), "--poll", "0.2"], tmp_path / "log")
    try:
        # Swap in a bundle that expires 45 s from now (built "a day minus 45 s ago", ttl 1 day);
        # the margin lets the build finish before expiry even on a busy machine.
        now = dt.datetime.now(dt.UTC)
        build_time = (now - dt.timedelta(days=1) + dt.timedelta(seconds=45)).isoformat()
        proc = keyrepo.run(
            "build", "--stack", "dev", "--out", str(out), "--ttl-days", "1", "--now", build_time
        )
        assert proc.returncode == 0, proc.stderr
        deadline = time.monotonic() + 180
        while (answer := httpx.get(running.url + "/healthz")).status_code == 200:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert "serving bundle version 2 of stack dev" in running.output()
        assert answer.status_code == 503
        assert answer.json()["code"] == "not-ready"
        kid, secret = app_auth(keyrepo)
        assert get(running.url, mint(kid, secret, claims())).status_code == 503
    finally:
        running.stop()
    proc = keyrepo.run("serve", "--bundle", str(out), "--port", "1")
    assert proc.returncode == 2
    message = proc.stderr.strip().splitlines()[-1]
    assert message.startswith(
        f"error: the bundle {out / 'bundle.jws'} of stack 'dev' (version 2) expired at "
    )
    assert message.endswith("Rebuild it: keyops build --stack dev --out DIR.")


def test_serve_refuses_a_missing_bundle(keyrepo: KeyRepo, tmp_path: Path) -> None:
    proc = keyrepo.run("serve", "--bundle", str(tmp_path / "none"))
    assert (proc.returncode, proc.stderr.strip()) == (
        2,
        f"error: --bundle {tmp_path / 'none'} does not exist. "
        "Build one first: keyops build --stack S --out DIR.",
    )


def test_metrics_across_workers_and_adoption(keyrepo: KeyRepo, tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    assert keyrepo.run("build", "--stack", "dev", "--out", str(out)).returncode == 0
    running = start_server(
        keyrepo, ["--bundle", str(out), "--workers", "2", "--poll", "0.1"], tmp_path / "log"
    )
    kid, secret = app_auth(keyrepo)
    try:
        helds = ["ios-2026-05"] * 3 + ["ios-2026-11"] * 7 + [None] * 2
        for i, held in enumerate(helds):
            # One install each, a new connection each time, so both workers take a share; a
            # second token from the first install (holding the old key) counts it only once.
            token = mint(kid, secret, claims(held=held, install_id=f"install-{i:04d}"))
            assert get(running.url, token).status_code == 200
        again = mint(kid, secret, claims(held="ios-2026-05", install_id="install-0000"))
        assert get(running.url, again).status_code == 200
        time.sleep(0.5)
        text = httpx.get(running.url + "/metrics").text
        assert 'keyops_responses_total{status="200",code="ok"} 13' in text
        assert 'keyops_installs{stack="dev",client="ios",held="ios-2026-05"} 3' in text
        proc = keyrepo.run("adoption", "--from", running.url, "--out", str(tmp_path / "a.json"))
        assert proc.returncode == 0, proc.stderr
        evidence = load_adoption(tmp_path / "a.json")
        assert {k: (v.percent, v.method) for k, v in evidence.items()} == {
            "ios-2026-05": (30.0, "endpoint-installs"),
            "ios-2026-11": (70.0, "endpoint-installs"),
        }
    finally:
        running.stop()


def test_adoption_unreachable_is_a_clear_error(keyrepo: KeyRepo) -> None:
    proc = keyrepo.run("adoption", "--from", "http://127.0.0.1:9")
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: cannot read metrics from http://127.0.0.1:9/metrics: ")
    assert proc.stderr.strip().endswith("Check the URL and that it is up.")


def test_serve_stack_mode_rebuilds_on_change(keyrepo: KeyRepo, tmp_path: Path) -> None:
    running = start_server(keyrepo, ["--stack", "dev", "--poll", "0.2"], tmp_path / "log")
    try:
        first = httpx.get(running.url + "/healthz").json()["bundle_version"]
        new_key = _with_pending_rollout(keyrepo)
        deadline = time.monotonic() + 20
        while httpx.get(running.url + "/healthz").json()["bundle_version"] == first:
            assert time.monotonic() < deadline, running.output()
            time.sleep(0.2)
        epk = new_epk()
        answer = get(running.url, mint(*app_auth(keyrepo), claims(epk)))
        jwks = jwks_of(keyrepo.root / ".keyops" / "serve" / "dev")
        assert open_answer(answer.content, epk, jwks)["key"] == new_key
    finally:
        running.stop()
