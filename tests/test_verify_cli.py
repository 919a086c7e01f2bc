"""``keyops verify`` against a scripted Pusher HTTP API on 127.0.0.1 (support.pusher_api).

The server checks each request as Pusher documents it (app id, auth_key, timestamp, signature
with the official library). Every run goes through support.validate.run, which fails on a
traceback or on any secret of the repository in stdout or stderr. The real Pusher-protocol
server (soketi) is in tests/e2e/test_pusher_e2e.py.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from support.net import closed_url
from support.pusher_api import Cred, PusherApi, Seen, hold, serving, stack_creds
from support.repo import KeyRepo
from support.validate import rewrite, run

NOW = "2026-11-27"


def verify(repo: KeyRepo, api: PusherApi | str, *args: str, **kw: Any) -> Any:
    url = api if isinstance(api, str) else api.url
    return run(repo, "verify", "--api-url", url, "--now", NOW, *args, **kw)


def by_id(creds: list[Cred]) -> dict[str, Cred]:
    return {c.id: c for c in creds}


def rows(stdout: str) -> dict[str, tuple[str, ...]]:
    """credential -> (state, result, detail) from the text table."""
    out = {}
    for line in stdout.splitlines():
        parts = line.split(None, 4)
        if line.startswith("  ") and len(parts) >= 4 and parts[0] != "CLIENT":
            out[parts[1]] = (parts[2], parts[3], parts[4] if len(parts) > 4 else "")
    return out


def test_every_key_the_server_holds_is_live(keyrepo: KeyRepo, pusher_api: PusherApi) -> None:
    creds = stack_creds(keyrepo)
    hold(pusher_api, creds)
    proc = verify(keyrepo, pusher_api, "--stack", "dev")
    port = pusher_api.url
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout == (
        f"verify dev: 5 credential(s) against {port}\n"
        "  CLIENT   CREDENTIAL       STATE     RESULT  DETAIL\n"
        "  android  android-2026-03  active    live    HTTP 200, channels listed\n"
        "  ios      ios-2026-11      active    live    HTTP 200, channels listed\n"
        "  ios      ios-2026-05      retiring  live    HTTP 200, channels listed\n"
        "  server   server-2026-01   active    live    HTTP 200, channels listed\n"
        "  web      web-2026-06      active    live    HTTP 200, channels listed\n"
        "ok: 4 file(s) verified, no findings\n"
    )
    # One read-only, signed call per credential; the secret is in no request line or header.
    assert len(pusher_api.seen) == 5
    for seen in pusher_api.seen:
        assert seen.line.startswith("GET /apps/1874221/channels?")
        assert sorted(seen.query) == [
            "auth_key", "auth_signature", "auth_timestamp", "auth_version", "body_md5",
            "filter_by_prefix",
        ]  # fmt: skip
        assert seen.query["auth_version"] == "1.0"
        assert seen.headers["User-Agent"].startswith("keyops-verify/")
        for cred in creds:
            assert cred.secret not in seen.line
            assert all(cred.secret not in value for value in seen.headers.values())
    assert {s.query["auth_key"] for s in pusher_api.seen} == {c.key for c in creds}


def test_a_typo_a_secret_of_another_key_and_a_swap_are_rejected(
    keyrepo: KeyRepo, pusher_api: PusherApi
) -> None:
    creds = by_id(stack_creds(keyrepo))
    ios, web, android = creds["ios-2026-11"], creds["web-2026-06"], creds["android-2026-03"]
    at_pusher = [
        creds["server-2026-01"],
        creds["ios-2026-05"],
        # android's secret at Pusher is another one than the repository holds (a typo)
        Cred("android", android.id, "active", android.app_id, android.key, "0" * 20),
        # ios holds the secret of another key
        Cred("ios", ios.id, "active", ios.app_id, ios.key, web.secret),
        # the repository has web's key and secret the wrong way round
        Cred("web", web.id, "active", web.app_id, web.secret, web.key),
    ]
    hold(pusher_api, at_pusher)
    proc = verify(keyrepo, pusher_api, "--stack", "dev")
    assert proc.returncode == 1, proc.stderr
    got = rows(proc.stdout)
    assert {k: v[1] for k, v in got.items()} == {
        "android-2026-03": "rejected",
        "ios-2026-11": "rejected",
        "ios-2026-05": "live",
        "server-2026-01": "live",
        "web-2026-06": "rejected",
    }
    assert got["web-2026-06"][2] == "HTTP 401: Unknown auth_key"
    assert got["ios-2026-11"][2].startswith("HTTP 401: Invalid signature")
    assert (
        "credentials/dev/web.yaml::$.credentials[0]: error[verify] web-2026-06 (active) is "
        "rejected by Pusher (HTTP 401: Unknown auth_key): apps given this key cannot connect. "
        "Compare its key, secret and app id 1874221 with the Pusher dashboard (App Keys): a "
        "typo, a secret of another key or app, or key and secret swapped all look like this "
        "(credential web-2026-06)\n"
    ) in proc.stdout
    assert proc.stdout.endswith("3 error(s), 0 warning(s) in 4 file(s)\n")


def end_lives(repo: KeyRepo) -> None:
    """ios-2026-05 retired on 2026-11-20; web-2026-06 revoked, its successor web-2026-11 active."""

    def retire(doc: dict[str, Any]) -> None:
        doc["credentials"][1].update(state="retired", retired="2026-11-20")

    def revoke(doc: dict[str, Any]) -> None:
        old = doc["credentials"][0]
        new = dict(old, id="web-2026-11", key="a" * 20, secret="b" * 20, created="2026-11-20")
        new["activated"] = "2026-11-21"
        old.update(state="revoked", revoked="2026-11-21", reason="leaked", incident="INC-7")
        doc["credentials"].insert(0, new)

    rewrite(repo, "credentials/dev/ios.yaml", retire)
    rewrite(repo, "credentials/dev/web.yaml", revoke)


def test_a_live_revoked_key_is_an_error_and_a_live_retired_one_a_warning(
    keyrepo: KeyRepo, pusher_api: PusherApi
) -> None:
    end_lives(keyrepo)
    creds = stack_creds(keyrepo)
    hold(pusher_api, creds)  # nobody deleted anything at Pusher yet
    proc = verify(keyrepo, pusher_api, "--stack", "dev", "--client", "ios", "--client", "web")
    assert proc.returncode == 1
    assert [line for line in proc.stdout.splitlines() if "::" in line] == [
        "credentials/dev/ios.yaml::$.credentials[1]: warning[verify] ios-2026-05 was retired on "
        "2026-11-20 and is still live at Pusher: nothing serves it any more; delete it in the "
        "Pusher dashboard (App Keys) (credential ios-2026-05)",
        "credentials/dev/web.yaml::$.credentials[1]: error[verify] web-2026-06 was revoked on "
        "2026-11-21 but is still live at Pusher: the revocation is incomplete until the key is "
        "deleted in the Pusher dashboard (App Keys) (credential web-2026-06)",
    ]
    # After the tombstone period the warning says the key can go now.
    later = run(
        keyrepo, "verify", "--api-url", pusher_api.url, "--stack", "dev", "--id", "ios-2026-05",
        "--now", "2027-03-01",
    )  # fmt: skip
    assert later.returncode == 0
    assert (
        "warning[verify] ios-2026-05 was retired on 2026-11-20 and is still live at Pusher; its "
        "tombstone period ended on 2027-02-18, so it can be deleted at Pusher now: delete it in "
        "the Pusher dashboard (App Keys), then remove its entry from the file"
    ) in later.stdout
    # Deleted at Pusher: both are rejected, which is what their states ask for.
    hold(pusher_api, [c for c in creds if c.id not in ("ios-2026-05", "web-2026-06")])
    done = verify(keyrepo, pusher_api, "--stack", "dev", "--client", "ios", "--client", "web")
    assert (done.returncode, done.stderr) == (0, "")
    assert {k: v[1] for k, v in rows(done.stdout).items()} == {
        "ios-2026-11": "live",
        "ios-2026-05": "rejected",
        "web-2026-11": "live",
        "web-2026-06": "rejected",
    }
    assert done.stdout.endswith("ok: 2 file(s) verified, no findings\n")


def test_a_retiring_key_already_deleted_is_a_warning(
    keyrepo: KeyRepo, pusher_api: PusherApi
) -> None:
    hold(pusher_api, [c for c in stack_creds(keyrepo) if c.id != "ios-2026-05"])
    proc = verify(keyrepo, pusher_api, "--stack", "dev", "--client", "ios")
    assert proc.returncode == 0
    assert (
        "warning[verify] ios-2026-05 (retiring) is rejected by Pusher (HTTP 401: Unknown "
        "auth_key): installs still holding it cannot connect until they fetch the active key. "
        "Was it deleted at Pusher before keyops retire?"
    ) in proc.stdout


def test_with_base_only_added_or_changed_keys_are_called(
    keyrepo: KeyRepo, pusher_api: PusherApi
) -> None:
    def add_pending(doc: dict[str, Any]) -> None:
        new = dict(doc["credentials"][0], id="android-2026-11", state="pending")
        new.update(key="c" * 20, secret="d" * 20, created="2026-11-27")
        new.pop("activated")
        doc["credentials"].insert(0, new)

    rewrite(keyrepo, "credentials/dev/android.yaml", add_pending)
    hold(pusher_api, stack_creds(keyrepo))
    # No --stack: every stack with a changed credential file (here dev).
    proc = verify(keyrepo, pusher_api, "--base", "HEAD")
    assert (proc.returncode, proc.stderr) == (0, "")
    assert [(k, v[1], v[2]) for k, v in rows(proc.stdout).items()] == [
        ("android-2026-11", "live", "HTTP 200, channels listed"),
        ("android-2026-03", "skipped", "unchanged since HEAD"),
        ("ios-2026-11", "skipped", "unchanged since HEAD"),
        ("ios-2026-05", "skipped", "unchanged since HEAD"),
        ("server-2026-01", "skipped", "unchanged since HEAD"),
        ("web-2026-06", "skipped", "unchanged since HEAD"),
    ]
    assert [s.query["auth_key"] for s in pusher_api.seen] == ["c" * 20]
    # Committed: nothing changed since HEAD, nothing to call.
    keyrepo.commit("rotate android")
    quiet = verify(keyrepo, pusher_api, "--base", "HEAD")
    assert (quiet.returncode, quiet.stdout) == (
        0,
        "verify: nothing to verify: no credential added or changed since HEAD\n",
    )
    # A stack whose CI cannot reach Pusher is left out by name.
    skipped = verify(keyrepo, pusher_api, "--base", "HEAD~1", "--skip-stacks", "staging, dev")
    assert (skipped.returncode, skipped.stdout) == (
        0,
        "verify: nothing to verify: every stack is skipped (dev)\n",
    )
    assert len(pusher_api.seen) == 1


def test_nothing_answers_is_exit_2(keyrepo: KeyRepo) -> None:
    proc = verify(keyrepo, closed_url(), "--stack", "dev", "--client", "web")
    assert proc.returncode == 2
    assert "  web     web-2026-06  active  unreachable  connection refused\n" in proc.stdout
    assert proc.stderr == (
        "error: no call got an answer: every credential is unreachable (first: connection "
        "refused). Check the network path to the API (outbound HTTPS to "
        "api-<cluster>.pusher.com) or --api-url, then run keyops verify again.\n"
    )


def test_a_slow_call_times_out_and_the_deadline_ends_the_run(
    keyrepo: KeyRepo, pusher_api: PusherApi
) -> None:
    creds = stack_creds(keyrepo)
    hold(pusher_api, creds)
    slow_key = by_id(creds)["web-2026-06"].key

    def slow_web(seen: Seen) -> tuple[int, bytes] | None:
        if seen.query.get("auth_key") == slow_key:
            time.sleep(5)
        return None

    pusher_api.script = slow_web
    proc = verify(keyrepo, pusher_api, "--stack", "dev", "--timeout", "0.5")
    assert proc.returncode == 1
    got = rows(proc.stdout)
    assert got["web-2026-06"][1:] == ("unreachable", "timed out after 0.5 s")
    assert {v[1] for k, v in got.items() if k != "web-2026-06"} == {"live"}

    def slow_all(seen: Seen) -> tuple[int, bytes] | None:
        time.sleep(5)
        return None

    pusher_api.script = slow_all
    proc = verify(keyrepo, pusher_api, "--stack", "dev", "--deadline", "0.5")
    assert proc.returncode == 2
    assert {v[1:] for v in rows(proc.stdout).values()} == {
        ("unreachable", "no answer within the total deadline of 0.5 s")
    }


@pytest.mark.parametrize(
    ("status", "body", "result", "detail"),
    [
        (503, b"maintenance", "unreachable",
         "HTTP 503, a server error says nothing of the key: maintenance"),
        (200, b"x" * 70_000, "unreachable", "answer larger than 65536 bytes"),
        (200, b"[" * 50_000, "unreachable", "HTTP 200, not a Pusher API answer (no channels list)"),
        (200, b'{"error": "The secret authentication failed", "code": 401}', "rejected",
         "HTTP 200, error 401: The secret authentication failed"),
    ],
)  # fmt: skip
def test_odd_answers_are_reported_not_crashed_on(
    keyrepo: KeyRepo, pusher_api: PusherApi, status: int, body: bytes, result: str, detail: str
) -> None:
    pusher_api.script = lambda seen: (status, body)
    proc = verify(keyrepo, pusher_api, "--stack", "dev", "--client", "web", "--format", "json")
    payload = json.loads(proc.stdout)
    (only,) = payload["results"]
    assert (only["result"], only["detail"], only["severity"]) == (result, detail, "error")


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://127.0.0.1", "is not an http(s) URL"),
        ("http://", "is not an http(s) URL"),
        ("https://ops:hunter2@api.example.invalid", "carries a user name or password"),
        ("http://127.0.0.1:8080/apps", "has a path, query or fragment"),
        ("http://127.0.0.1:99999", "is not an http(s) URL"),
    ],
)
def test_a_bad_api_url_is_a_usage_error(keyrepo: KeyRepo, url: str, problem: str) -> None:
    proc = run(keyrepo, "verify", "--stack", "dev", "--api-url", url)
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == (
        f"error: --api-url {problem}. Give the API's base as http(s)://HOST[:PORT], e.g. "
        "https://api-eu.pusher.com.\n"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "error: name the stack to verify with --stack S. Or pass --base REF to verify "
         "what changed since REF in every stack.\n"),
        (("--stack", "dev", "--client", "desktop"), "error: --client desktop: not in stack(s) "
         "dev. Known: android, ios, server, web.\n"),
        (("--stack", "dev", "--timeout", "0"), "error: --timeout must be in (0, 600] and "
         "--deadline in (0, 3600] seconds. The defaults are 10 and 60.\n"),
        (("--stack", "dev", "--skip-stacks", "dev;rm"), "error: --skip-stacks holds 'dev;rm', "
         "which is not a stack name. List stack names separated by commas or spaces, e.g. "
         "'dev,staging'.\n"),
    ],
)  # fmt: skip
def test_usage_errors(keyrepo: KeyRepo, args: tuple[str, ...], message: str) -> None:
    proc = run(keyrepo, "verify", "--api-url", closed_url(), *args)
    assert (proc.returncode, proc.stdout, proc.stderr) == (2, "", message)


def test_json_summary_and_the_cache_for_status(
    keyrepo: KeyRepo, pusher_api: PusherApi, tmp_path: Path
) -> None:
    creds = stack_creds(keyrepo)
    hold(pusher_api, [c for c in creds if c.id != "web-2026-06"])
    summary = tmp_path / "summary.md"
    summary.write_text("## keyops check\n\n")
    proc = verify(
        keyrepo, pusher_api, "--stack", "dev", "--format", "json", "--summary", str(summary)
    )
    assert proc.returncode == 1
    payload = json.loads(proc.stdout)
    assert list(payload) == [
        "checked_at", "stacks", "skipped_stacks", "results", "findings", "summary",
    ]  # fmt: skip
    assert payload["checked_at"] == "2026-11-27T00:00:00Z"
    assert payload["results"][4] == {
        "stack": "dev",
        "client": "web",
        "credential": "web-2026-06",
        "state": "active",
        "api_url": pusher_api.url,
        "result": "rejected",
        "detail": "HTTP 401: Unknown auth_key",
        "severity": "error",
    }
    assert payload["summary"] == {
        "live": 4, "rejected": 1, "unreachable": 0, "skipped": 0,
        "files": 4, "findings": 1, "errors": 1, "warnings": 0,
    }  # fmt: skip
    assert [f["rule"] for f in payload["findings"]] == ["verify"]
    text = summary.read_text()
    assert text.startswith("## keyops check\n\n## keyops verify\n\n**❌ fails**: 1 error(s)")
    assert (
        "| dev | web | web-2026-06 | active | **rejected** | HTTP 401: Unknown auth_key |" in text
    )
    cache = keyrepo.path(".keyops/verify/dev.json")
    cached = json.loads(cache.read_text())
    assert cached["credentials"]["web-2026-06"] == {
        "client": "web",
        "state": "active",
        "result": "rejected",
        "severity": "error",
        "detail": "HTTP 401: Unknown auth_key",
        "checked_at": "2026-11-27T00:00:00Z",
        "api_url": pusher_api.url,
    }
    for cred in creds:
        assert cred.secret not in cache.read_text() and cred.key not in cache.read_text()
        assert cred.secret not in text
    # keyops status shows the cached result (no key needed), and the state it had then.
    status = run(keyrepo, "status", "--now", NOW, key=False)
    assert status.returncode == 0
    lines = status.stdout.splitlines()
    assert lines[1].split() == [
        "CLIENT", "DELIVERY", "CREDENTIAL", "STATE", "AGE", "SERVED", "MAX-AGE", "IN",
        "VERIFIED", "NEXT",
    ]  # fmt: skip
    assert lines[2].split()[7:9] == ["live", "2026-11-27"]
    assert lines[6].split()[7:9] == ["rejected", "2026-11-27"]


def test_a_broken_cache_is_ignored_with_a_warning(keyrepo: KeyRepo) -> None:
    cache = keyrepo.path(".keyops/verify/dev.json")
    cache.parent.mkdir(parents=True)
    for content in (
        b"[" * 100_000,
        b'{"version": 1, "credentials": {"web-2026-06": {"result": "live"}}}',
        b"\xff",
    ):
        cache.write_bytes(content)
        proc = run(keyrepo, "status", "--now", NOW, key=False)
        assert proc.returncode == 0
        assert "VERIFIED" not in proc.stdout
        assert proc.stderr.startswith("warning: .keyops/verify/dev.json is ignored: ")
        assert proc.stderr.endswith("; run keyops verify --stack dev to replace it\n")


# -- https -------------------------------------------------------------------------------------
def self_signed(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def tls_api(tmp_path: Path) -> Iterator[tuple[PusherApi, Path]]:
    cert, key = self_signed(tmp_path)
    with serving(PusherApi(), (cert, key)) as api:
        yield api, cert


def test_https_with_certificate_checks(keyrepo: KeyRepo, tls_api: tuple[PusherApi, Path]) -> None:
    api, cert = tls_api
    hold(api, stack_creds(keyrepo))
    untrusted = verify(keyrepo, api, "--stack", "dev", "--client", "web")
    assert untrusted.returncode == 2
    assert "unreachable  TLS error (CERTIFICATE_VERIFY_FAILED)" in untrusted.stdout
    trusted = verify(
        keyrepo, api, "--stack", "dev", "--client", "web", env={"SSL_CERT_FILE": str(cert)}
    )
    assert (trusted.returncode, trusted.stderr) == (0, "")
    assert "  web     web-2026-06  active  live    HTTP 200, channels listed\n" in trusted.stdout
