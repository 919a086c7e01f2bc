"""The whole loop against a real Pusher-protocol server (soketi) and a real pusher-js client.

The repository is a copy of the project's dev stack, decrypted with the committed TEST-ONLY key
(keys/dev-TEST-ONLY.agekey). soketi (tests/e2e/pusher, pinned by its lockfile) runs on loopback
ports with one app per live credential, its cluster discovery bound to 127.0.0.1, started once
per module and restarted by a test that adds, changes or deletes a key at the server. pusher-js
runs in Node (tests/e2e/pusher/driver.mjs); the Python reference client (keyops.client) decides
which key it connects with and what it does after a close code.

soketi's HTTP API checks only the first key set listed for an app id (support.soketi says why),
so this copy gives each client its own app id, and the tests that need an app's second key set
checked over the HTTP API list that one first.

1. verify: live for the active keys; rejected after a secret change and for a swapped pair;
2. connect: pusher-js connects with the key keyops serve hands out (reference protocol);
3. channel auth: private- and presence- through examples/auth_server.py and the keyring of
   keyops export --auth-keyring; an event from the official pusher library arrives;
4. rotation end to end: new key at the server, rotate, promote, build, serve reloads; the old
   key deleted at the server, close code 4001, on_pusher_error(4001) refetches and reconnects;
5. revocation drill: revoke --promote-pending, build; verify flags the revoked key live until
   it is deleted at the server, then rejected.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pusher
import pytest

from keyops.client import config as client_config
from keyops.client.fetcher import Fetcher
from keyops.client.token import Identity
from support.net import bound_addresses, free_port
from support.pusher_api import Cred, stack_creds
from support.pusherjs import PusherJs, pusher_js
from support.repo import PROJECT, KeyRepo
from support.serve import Server, launch, wait_for_version, wait_healthy
from support.soketi import App, Soketi, apps_for
from support.validate import run

DEV_KEY = PROJECT / "keys" / "dev-TEST-ONLY.agekey"
AUTH_SERVER = PROJECT / "examples" / "auth_server.py"
#: One app id per client in this copy (the committed dev stack shares one for all).
APP_IDS = {"android": "200001", "ios": "200002", "server": "200003", "web": "200004"}
APP_VERSION = "5.2.0"


# -- the repository and the servers -----------------------------------------------------------
def copy_dev_stack(target: Path, home: Path) -> KeyRepo:
    target.mkdir(parents=True)
    shutil.copy(PROJECT / ".sops.yaml", target / ".sops.yaml")
    shutil.copytree(PROJECT / "policies", target / "policies")
    shutil.copytree(PROJECT / "credentials" / "dev", target / "credentials" / "dev")
    home.mkdir(parents=True, exist_ok=True)
    recipient = re.findall(r"age1[0-9a-z]{58}", (PROJECT / ".sops.yaml").read_text())[0]
    repo = KeyRepo(root=target, identity_file=DEV_KEY, recipient=recipient, home=home)
    repo.git("init", "--quiet", "--initial-branch=main")
    for name, app_id in APP_IDS.items():
        rel = f"credentials/dev/{name}.yaml"
        document = repo.decrypt(rel)
        document["pusher"]["app_id"] = app_id
        repo.write_doc(rel, document)
    repo.commit("the dev stack, one Pusher app per client")
    return repo


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> KeyRepo:
    base = tmp_path_factory.mktemp("e2e-template")
    return copy_dev_stack(base / "repo", base / "home")


@pytest.fixture
def repo(template: KeyRepo, tmp_path: Path) -> KeyRepo:
    root = tmp_path / "repo"
    shutil.copytree(template.root, root, symlinks=True)
    return replace(template, root=root)


@pytest.fixture(scope="module")
def soketi(template: KeyRepo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Soketi]:
    server = Soketi(tmp_path_factory.mktemp("soketi"))
    server.start(apps_for(stack_creds(template)))
    try:
        yield server
    finally:
        server.stop()


def at_server(soketi: Soketi, apps: list[App]) -> float:
    """The server holds exactly ``apps`` from the returned moment (restarted if that changes)."""
    if apps != soketi.apps or soketi.proc is None:
        return soketi.restart(apps)
    return time.monotonic()


def creds_of(repo: KeyRepo) -> dict[str, Cred]:
    return {c.id: c for c in stack_creds(repo)}


@pytest.fixture
def client(tmp_path: Path) -> Iterator[PusherJs]:
    with pusher_js(tmp_path) as driver:
        yield driver


def build(repo: KeyRepo, out: Path) -> None:
    proc = repo.run("build", "--stack", "dev", "--out", str(out))
    assert proc.returncode == 0, proc.stderr


@pytest.fixture
def serve(repo: KeyRepo, tmp_path: Path) -> Iterator[tuple[Server, Path]]:
    bundle = tmp_path / "bundle"
    build(repo, bundle)
    server = launch(repo, ["--bundle", str(bundle), "--poll", "0.2"], tmp_path / "serve.log")
    try:
        wait_healthy(server)
        yield server, bundle
    finally:
        server.stop()


def reference_client(repo: KeyRepo, url: str, install_id: str) -> Fetcher:
    """The Python reference client of the web app, with its config from keyops client-config."""
    proc = repo.run("client-config", "--stack", "dev", "--client", "web")
    assert proc.returncode == 0, proc.stderr
    document = json.loads(proc.stdout)
    document["endpoints"] = [url]
    return Fetcher(client_config.parse(document), Identity(APP_VERSION, install_id))


def new_key_set() -> tuple[str, str]:
    return secrets.token_hex(10), secrets.token_hex(10)


def verify(repo: KeyRepo, soketi: Soketi, *args: str) -> subprocess.CompletedProcess[str]:
    return run(repo, "verify", "--stack", "dev", "--api-url", soketi.url, *args)


def results(proc: subprocess.CompletedProcess[str]) -> dict[str, tuple[str, str]]:
    """credential -> (result, detail) from the text table of keyops verify."""
    found = {}
    for line in proc.stdout.splitlines():
        parts = line.split(None, 4)
        if line.startswith("  ") and len(parts) == 5 and parts[0] != "CLIENT":
            found[parts[1]] = (parts[3], parts[4])
    return found


# -- 1. verify ---------------------------------------------------------------------------------
def test_verify_live_then_rejected_after_a_secret_change_and_for_a_swapped_pair(
    repo: KeyRepo, soketi: Soketi
) -> None:
    creds = creds_of(repo)
    apps = apps_for(list(creds.values()))
    at_server(soketi, apps)
    proc = verify(repo, soketi)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    got = results(proc)
    for cred in creds.values():
        if cred.state == "active":
            assert got[cred.id] == ("live", "HTTP 200, channels listed"), cred.id
    # ios's retiring key set is the second of its app: soketi's HTTP API checks only the first.
    assert got["ios-2026-05"][0] == "rejected"
    assert "warning[verify] ios-2026-05 (retiring) is rejected by Pusher" in proc.stdout

    # The server's secret for web's key changes (e.g. regenerated in the dashboard).
    web = creds["web-2026-06"]
    changed = [App(a.id, a.key, "f" * 20) if a.key == web.key else a for a in apps]
    at_server(soketi, changed)
    proc = verify(repo, soketi, "--client", "web")
    assert proc.returncode == 1
    assert results(proc) == {
        "web-2026-06": ("rejected", "HTTP 200, error 401: The secret authentication failed")
    }
    assert "error[verify] web-2026-06 (active) is rejected by Pusher" in proc.stdout

    # The server is right again, but the repository has web's key and secret swapped.
    at_server(soketi, apps)
    document = repo.decrypt("credentials/dev/web.yaml")
    item = document["credentials"][0]
    item["key"], item["secret"] = item["secret"], item["key"]
    repo.write_doc("credentials/dev/web.yaml", document)
    proc = verify(repo, soketi, "--client", "web")
    assert proc.returncode == 1
    assert results(proc)["web-2026-06"][0] == "rejected"


# -- 2. connect --------------------------------------------------------------------------------
def test_pusher_js_connects_with_the_key_keyops_serve_hands_out(
    repo: KeyRepo, soketi: Soketi, serve: tuple[Server, Path], client: PusherJs
) -> None:
    at_server(soketi, apps_for(stack_creds(repo)))
    server, _ = serve
    result = reference_client(repo, server.url, "e2e-install-1").get()
    assert result.source == server.url and result.credential_id == "web-2026-06"
    assert result.key == creds_of(repo)["web-2026-06"].key
    client.connect(soketi, result.key)
    connected = client.connected()
    assert connected["socket_id"] and "." in connected["socket_id"]


# -- 3. channel auth ---------------------------------------------------------------------------
@pytest.fixture
def auth_server(repo: KeyRepo, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    keyring = tmp_path / "keyring.json"
    proc = repo.run("export", "--stack", "dev", "--auth-keyring", "--out", str(keyring))
    assert proc.returncode == 0, proc.stderr
    port = free_port()
    log = tmp_path / "auth.log"
    with log.open("wb") as handle:
        server = subprocess.Popen(
            [sys.executable, str(AUTH_SERVER), "--keyring", str(keyring), "--port", str(port),
             "--demo-user-header"],
            stdout=handle, stderr=subprocess.STDOUT, env=repo.env(key=False),
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}/pusher/auth"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and server.poll() is None:
            if "auth server on" in log.read_text():
                break
            time.sleep(0.05)
        else:
            pytest.fail(f"the auth server did not start:\n{log.read_text()}", pytrace=False)
        yield url, keyring
    finally:
        server.terminate()
        server.wait(timeout=15)
        text = log.read_text()
        for entry in json.loads(keyring.read_text())["keys"].values():
            assert entry["secret"] not in text  # the example logs no secret


def post_auth(url: str, **form: str) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=urllib.parse.urlencode(form).encode())
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def test_private_and_presence_channels_and_an_event_from_the_official_library(
    repo: KeyRepo, soketi: Soketi, client: PusherJs, auth_server: tuple[str, Path]
) -> None:
    at_server(soketi, apps_for(stack_creds(repo)))
    url, keyring_file = auth_server
    web = creds_of(repo)["web-2026-06"]
    client.connect(soketi, web.key, auth=url, user="ada")
    client.connected()
    for channel in ("private-orders", "presence-lobby"):
        client.send(op="subscribe", channel=channel)
        subscribed = client.wait_for(
            lambda e, c=channel: (
                e["type"] in ("subscribed", "subscription_error") and e["channel"] == c
            ),
            f"a subscription to {channel}",
        )
        assert subscribed["type"] == "subscribed", subscribed
    assert subscribed["members"] == ["ada"]

    # The app's backend triggers with the official library and a key set from the keyring.
    keyring = json.loads(keyring_file.read_text())
    entry = keyring["keys"][web.key]
    backend = pusher.Pusher(
        app_id=entry["app_id"], key=web.key, secret=entry["secret"],
        host="127.0.0.1", port=soketi.port, ssl=False,
    )  # fmt: skip
    backend.trigger("private-orders", "order-shipped", {"order": 42})
    backend.trigger("presence-lobby", "hello", {"from": "backend"})
    shipped = client.wait_for(lambda e: e["type"] == "event", "the private event")
    shipped.pop("ms")
    assert shipped == {
        "type": "event", "channel": "private-orders", "event": "order-shipped",
        "data": {"order": 42},
    }  # fmt: skip
    hello = client.wait_for(lambda e: e["type"] == "event", "the presence event")
    assert (hello["channel"], hello["data"]) == ("presence-lobby", {"from": "backend"})

    # A key the keyring does not hold gets no signature, and a malformed request no answer.
    status, body = post_auth(
        url, socket_id="1.2", channel_name="private-orders", pusher_key="0" * 20
    )
    assert (status, body) == (403, {"error": "this key is not live; refetch the key"})
    status, body = post_auth(url, socket_id="x", channel_name="private-orders", pusher_key=web.key)
    assert (status, body) == (400, {"error": "invalid socket id 'x'"})


# -- 4. rotation -------------------------------------------------------------------------------
def test_rotation_end_to_end_4001_refetch_and_reconnect(
    repo: KeyRepo,
    soketi: Soketi,
    serve: tuple[Server, Path],
    client: PusherJs,
    record_property: Any,
) -> None:
    server, bundle = serve
    old = creds_of(repo)["web-2026-06"]
    at_server(soketi, apps_for(stack_creds(repo)))
    app = reference_client(repo, server.url, "e2e-install-2")
    held = app.get()
    assert held.key == old.key
    client.connect(soketi, held.key)
    client.connected()

    # The new key set exists at the server (as created in the dashboard) before rotate.
    key, secret = new_key_set()
    with_new = [*apps_for(stack_creds(repo)), App(APP_IDS["web"], key, secret)]
    at_server(soketi, with_new)
    client.connected()  # the restart closed the connection; pusher-js is back on the old key
    for step in (
        ("rotate", "--stack", "dev", "--client", "web", "--id", "web-e2e-new"),
        ("promote", "--stack", "dev", "--client", "web", "--id", "web-e2e-new"),
    ):
        proc = repo.run(*step, input=f"{key}\n{secret}\n" if step[0] == "rotate" else None)
        assert proc.returncode == 0, proc.stderr
        repo.commit(step[0])
    before = wait_healthy(server)
    build(repo, bundle)
    wait_for_version(server, before + 1)
    fresh = reference_client(repo, server.url, "e2e-install-3").get()
    assert (fresh.credential_id, fresh.key) == ("web-e2e-new", key)

    # The old key is deleted at the server; the app still holds it.
    removed = at_server(soketi, [a for a in with_new if a.key != old.key])
    refused = client.wait_for(lambda e: e["type"] == "error" and e["code"] == 4001, "4001")
    got_4001 = time.monotonic()
    assert "does not exist" in refused["message"]
    reaction = app.on_pusher_error(4001)
    assert reaction.action == "reconnect" and reaction.result is not None
    assert (reaction.result.credential_id, reaction.result.key) == ("web-e2e-new", key)
    client.connect(soketi, reaction.result.key)
    client.connected()
    app.on_connected()
    back = time.monotonic()
    measured = (
        f"old key deleted at the server -> 4001 after {got_4001 - removed:.2f} s -> refetched "
        f"and reconnected with the new key after {back - removed:.2f} s"
    )
    record_property("measured", measured)
    print(measured)


# -- 5. revocation drill -----------------------------------------------------------------------
def test_revocation_drill_verify_flags_the_revoked_key_until_it_is_deleted(
    repo: KeyRepo, soketi: Soketi, tmp_path: Path
) -> None:
    old = creds_of(repo)["web-2026-06"]
    key, secret = new_key_set()
    proc = repo.run(
        "rotate", "--stack", "dev", "--client", "web", "--id", "web-e2e-successor",
        input=f"{key}\n{secret}\n",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    repo.commit("rotate")
    proc = repo.run(
        "revoke", "--stack", "dev", "--client", "web", "--id", old.id, "--reason",
        "secret pasted in a public gist", "--incident", "INC-2041", "--promote-pending",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    repo.commit("revoke")
    build(repo, tmp_path / "bundle")
    # Nobody deleted the old key at the server yet. It is listed first for web's app id, so the
    # HTTP API checks it (see the module docstring).
    others = [a for a in apps_for(stack_creds(repo)) if a.id != APP_IDS["web"]]
    at_server(
        soketi,
        [*others, App(APP_IDS["web"], old.key, old.secret), App(APP_IDS["web"], key, secret)],
    )
    proc = verify(repo, soketi, "--client", "web", "--id", old.id)
    assert proc.returncode == 1
    assert results(proc) == {old.id: ("live", "HTTP 200, channels listed")}
    assert (f"error[verify] {old.id} was revoked on ") in proc.stdout and (
        "but is still live at Pusher: the revocation is incomplete until the key is deleted in "
        "the Pusher dashboard (App Keys)"
    ) in proc.stdout

    # Deleted at the server: verify confirms it, and the successor is live.
    at_server(soketi, [*others, App(APP_IDS["web"], key, secret)])
    proc = verify(repo, soketi, "--client", "web", "--id", old.id)
    assert proc.returncode == 0, proc.stdout
    assert results(proc)[old.id][0] == "rejected"
    proc = verify(repo, soketi, "--client", "web")
    assert proc.returncode == 0, proc.stdout
    assert {k: v[0] for k, v in results(proc).items()} == {
        "web-e2e-successor": "live",
        old.id: "rejected",
    }


# -- nothing leaves 127.0.0.1 -------------------------------------------------------------------
def test_soketi_binds_nothing_but_loopback(soketi: Soketi) -> None:
    assert soketi.proc is not None  # whichever apps an earlier test left it with
    bound = bound_addresses(soketi.proc.pid)
    # The WebSocket/HTTP API port, the metrics port and cluster discovery (UDP), all loopback.
    assert {(proto, port) for proto, _, port in bound} >= {
        ("tcp", soketi.port),
        ("tcp", soketi.metrics_port),
        ("udp", soketi.cluster_port),
    }, bound
    assert {address for _, address, _ in bound} == {"127.0.0.1"}, bound
