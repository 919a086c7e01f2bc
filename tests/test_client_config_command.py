"""``keyops client-config``: the bootstrap JSON (docs/client.md), from a real sops repository."""

from __future__ import annotations

import json
import os
import stat

from keyops.client import config as client_config
from support.repo import KeyRepo


def _ios(repo: KeyRepo) -> dict[str, object]:
    return repo.decrypt("credentials/dev/ios.yaml")


def test_prints_the_bootstrap_document(keyrepo: KeyRepo) -> None:
    proc = keyrepo.run("client-config", "--stack", "dev", "--client", "ios")
    assert proc.returncode == 0, proc.stderr
    document = json.loads(proc.stdout)
    assert list(document) == ["stack", "client", "endpoints", "request_auth", "pinned_keys"]
    assert (document["stack"], document["client"]) == ("dev", "ios")
    assert document["endpoints"] == ["http://127.0.0.1:8787", "http://127.0.0.1:8788"]
    auth = _ios(keyrepo)["app_auth"][0]  # type: ignore[index]
    assert document["request_auth"] == {
        "kid": "ios-build-2026a",
        "alg": "HS256",
        "secret": auth["secret"],
    }
    stack = keyrepo.decrypt("credentials/dev/_stack.yaml")
    private = json.loads(stack["signing_keys"][0]["private_jwk"])
    [pinned] = document["pinned_keys"]["keys"]
    assert "d" not in pinned
    assert (pinned["kid"], pinned["alg"], pinned["use"]) == ("dev-sign-2026-11", "ES256", "sig")
    assert (pinned["x"], pinned["y"]) == (private["x"], private["y"])
    config = client_config.parse(document)  # the client accepts what the command makes
    assert config.kid == "ios-build-2026a"


def test_endpoint_replaces_the_stack_files_endpoints(keyrepo: KeyRepo) -> None:
    proc = keyrepo.run(
        "client-config", "--stack", "dev", "--client", "ios",
        "--endpoint", "https://keys-eu.example.com/", "--endpoint", "http://127.0.0.1:9000",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["endpoints"] == [
        "https://keys-eu.example.com",
        "http://127.0.0.1:9000",
    ]
    bad = keyrepo.run(
        "client-config", "--stack", "dev", "--client", "ios", "--endpoint", "keys.example.com"
    )
    assert (bad.returncode, bad.stdout) == (2, "")
    assert bad.stderr == (
        "error: keyops client-config: argument --endpoint: 'keys.example.com' is not an http(s) "
        "base URL (e.g. https://keys.example.com). Run 'keyops client-config --help' for usage.\n"
    )


def test_bundled_fallback_is_the_active_credential(keyrepo: KeyRepo) -> None:
    proc = keyrepo.run("client-config", "--stack", "dev", "--client", "ios", "--bundled-fallback")
    assert proc.returncode == 0, proc.stderr
    active = next(c for c in _ios(keyrepo)["credentials"] if c["state"] == "active")  # type: ignore[index]
    assert json.loads(proc.stdout)["bundled_fallback"] == {
        "credential_id": "ios-2026-11",
        "key": active["key"],
        "cluster": "eu",
    }


def test_out_writes_mode_0600_and_prints_no_secret(keyrepo: KeyRepo) -> None:
    out = keyrepo.root.parent / "ios.json"
    out.write_text("old")
    os.chmod(out, 0o644)
    proc = keyrepo.run("client-config", "--stack", "dev", "--client", "ios", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    assert proc.stderr == (
        f"wrote {out} (mode 0600): client ios of stack dev, 2 endpoint(s), request auth kid "
        "ios-build-2026a, 1 pinned key(s)\n"
    )
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert json.loads(out.read_text())["client"] == "ios"
    assert sorted(p.name for p in out.parent.iterdir() if p.name.startswith(".ios.json")) == []


def test_refuses_a_client_that_is_not_served(keyrepo: KeyRepo) -> None:
    proc = keyrepo.run("client-config", "--stack", "dev", "--client", "server")
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr == (
        "error: client 'server' is delivered 'secret-store', not served: it has no endpoint to "
        "fetch from. client-config is only for clients with delivery: served (bundled apps use "
        "'keyops export').\n"
    )


def test_unknown_client_and_stack_are_usage_errors(keyrepo: KeyRepo) -> None:
    proc = keyrepo.run("client-config", "--stack", "dev", "--client", "tvos")
    assert (proc.returncode, proc.stderr) == (
        2,
        "error: client 'tvos' does not exist in stack 'dev' (no credentials/dev/tvos.yaml). "
        "Known clients of dev: android, ios, server, web.\n",
    )
    proc = keyrepo.run("client-config", "--stack", "prod", "--client", "ios")
    assert (proc.returncode, proc.stderr) == (
        2,
        "error: stack 'prod' does not exist (no credentials/prod/ directory). Known stacks: dev.\n",
    )


def test_a_stack_without_endpoints_is_refused(keyrepo: KeyRepo) -> None:
    document = keyrepo.read_doc("credentials/dev/_stack.yaml")
    del document["endpoints"]
    keyrepo.write_doc("credentials/dev/_stack.yaml", document)
    proc = keyrepo.run("client-config", "--stack", "dev", "--client", "ios")
    assert (proc.returncode, proc.stdout) == (1, "")
    assert proc.stderr == (
        "error: stack 'dev' lists no endpoints (credentials/dev/_stack.yaml). "
        "Add the endpoint base URLs under 'endpoints:' in the stack file, "
        "or pass --endpoint URL.\n"
    )


def test_out_into_a_missing_directory_writes_nothing(keyrepo: KeyRepo) -> None:
    out = keyrepo.root.parent / "missing" / "ios.json"
    proc = keyrepo.run("client-config", "--stack", "dev", "--client", "ios", "--out", str(out))
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == (
        f"error: the directory of --out {out} does not exist. Create it first.\n"
    )
    assert not out.parent.exists()


def test_without_a_decryption_key_it_fails_cleanly(keyrepo: KeyRepo) -> None:
    proc = keyrepo.run("client-config", "--stack", "dev", "--client", "ios", key=False)
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr.startswith("error: no key here can decrypt credentials/dev/_stack.yaml")
    assert "Traceback" not in proc.stderr
