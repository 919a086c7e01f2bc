"""``keyops client add``: a client's first key, read like rotate's, checked like every edit."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
import yaml

from support.newrepo import add_client, add_stack, pair
from support.repo import KeyRepo

ADD = ("client", "add", "--stack", "staging")


@pytest.fixture
def staging(initrepo: KeyRepo) -> KeyRepo:
    add_stack(initrepo, "staging")
    initrepo.commit("staging")
    return initrepo


def _add(repo: KeyRepo, *args: str, stdin: str | None = None, **kw: str) -> tuple[int, str, str]:
    proc = repo.run(*ADD, *args, input=stdin, **kw)  # type: ignore[arg-type]
    return proc.returncode, proc.stdout, proc.stderr


def test_a_served_client_gets_its_first_key_active_and_an_app_auth_secret(staging: KeyRepo) -> None:
    key, secret = pair()
    code, out, err = _add(
        staging, "--client", "ios", "--platform", "ios", "--delivery", "served",
        "--app-id", "1874221", "--cluster", "eu", "--now", "2026-11-27",
        stdin=f"{key}\n{secret}\n",
    )  # fmt: skip
    assert code == 0, err
    assert out.splitlines() == [
        "created credentials/staging/ios.yaml (verified: decrypts to the intended content)",
        "  new client ios: ios, served, Pusher app 1874221 (eu)",
        "  ios-2026-11: first credential, active",
        "  app_auth ios-build-2026a: new active secret (generated, 32 random bytes)",
        "next: after merge and deploy, give the app build its bootstrap config: keyops "
        "client-config --stack staging --client ios --out FILE",
    ]
    assert key not in out + err and secret not in out + err
    path = staging.root / "credentials/staging/ios.yaml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    raw = path.read_text()
    assert key not in raw and secret not in raw
    on_disk = yaml.safe_load(raw)
    assert on_disk["credentials"][0]["key"].startswith("ENC[AES256_GCM,")
    assert on_disk["app_auth"][0]["secret"].startswith("ENC[AES256_GCM,")
    document = staging.decrypt("credentials/staging/ios.yaml")
    auth = document.pop("app_auth")
    assert document == {
        "client": "ios",
        "platform": "ios",
        "delivery": "served",
        "pusher": {"app_id": "1874221", "cluster": "eu"},
        "credentials": [
            {
                "id": "ios-2026-11",
                "state": "active",
                "key": key,
                "secret": secret,
                "created": "2026-11-27",
                "activated": "2026-11-27",
            }
        ],
    }
    assert [(a["kid"], a["state"], a["created"]) for a in auth] == [
        ("ios-build-2026a", "active", "2026-11-27")
    ]
    assert len(auth[0]["secret"]) == 43
    proc = staging.run("validate")
    assert proc.returncode == 0, proc.stdout


def test_a_server_client_from_a_file_has_no_app_auth(staging: KeyRepo, tmp_path: Path) -> None:
    key, secret = pair()
    source = tmp_path / "pair.txt"
    source.write_text(f"{key}\n{secret}\n")
    source.chmod(0o600)
    code, out, err = _add(
        staging, "--client", "server", "--platform", "server", "--delivery", "secret-store",
        "--app-id", "1874221", "--cluster", "eu", "--id", "server-first",
        "--from-file", str(source),
    )  # fmt: skip
    assert code == 0, err
    assert "  server-first: first credential, active" in out.splitlines()
    document = staging.decrypt("credentials/staging/server.yaml")
    assert "app_auth" not in document
    assert [(c["id"], c["key"]) for c in document["credentials"]] == [("server-first", key)]


def test_a_bundled_client(staging: KeyRepo) -> None:
    add_client(staging, "staging", "ios-classic", "ios", "bundled")
    document = staging.decrypt("credentials/staging/ios-classic.yaml")
    assert document["delivery"] == "bundled" and "app_auth" not in document


def _unchanged(repo: KeyRepo) -> None:
    assert repo.git("status", "--porcelain", "-uall") == ""


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ("--client", "API", "--platform", "ios", "--delivery", "served"),
            "error: --client 'API' is not a valid client name: a client name must be 3-63 "
            "characters of lowercase letters, digits and '-', starting with a letter or digit. It "
            "names the file credentials/<stack>/<client>.yaml; pass the bare name, e.g. --client "
            "ios.",
        ),
        (
            ("--client", "api", "--platform", "server", "--delivery", "served"),
            "error: --platform server cannot use --delivery served. A server client is delivered "
            "secret-store; an app (ios, android, web) is served or bundled.",
        ),
        (
            ("--client", "web", "--platform", "web", "--delivery", "secret-store"),
            "error: --platform web cannot use --delivery secret-store.",
        ),
    ],
)
def test_impossible_clients_are_refused_before_any_key_is_read(
    staging: KeyRepo, args: tuple[str, ...], expected: str
) -> None:
    code, out, err = _add(staging, *args, "--app-id", "1", "--cluster", "eu", stdin="")
    assert (code, out) == (2, "")
    assert err.startswith(expected), err
    _unchanged(staging)


@pytest.mark.parametrize(
    ("app_id", "cluster", "expected"),
    [
        ("app-1", "eu", "error: --app-id 'app-1' is not a Pusher app id. Copy the numeric app id"),
        ("1874221", "EU-1", "error: --cluster 'EU-1' is not a Pusher cluster name."),
    ],
)
def test_app_id_and_cluster_are_checked(
    staging: KeyRepo, app_id: str, cluster: str, expected: str
) -> None:
    args = ("--client", "ios", "--platform", "ios", "--delivery", "served")
    code, _, err = _add(staging, *args, "--app-id", app_id, "--cluster", cluster, stdin="")
    assert code == 2 and err.startswith(expected), err
    _unchanged(staging)


SERVED_IOS = ("--client", "ios", "--platform", "ios", "--delivery", "served", "--app-id", "1",
              "--cluster", "eu")  # fmt: skip


def test_an_existing_client_is_refused_and_rotate_named(staging: KeyRepo) -> None:
    add_client(staging, "staging", "ios", "ios", "served")
    staging.commit("ios")
    key, secret = pair()
    code, _, err = _add(staging, *SERVED_IOS, stdin=f"{key}\n{secret}\n")
    assert code == 2
    assert err == (
        "error: client 'ios' already exists in stack staging (credentials/staging/ios.yaml). Add "
        "a key to it with keyops rotate --stack staging --client ios.\n"
    )
    _unchanged(staging)


def test_an_unknown_stack_lists_the_known_ones(staging: KeyRepo) -> None:
    proc = staging.run("client", "add", "--stack", "prod", *SERVED_IOS, input="")
    assert proc.returncode == 2
    assert proc.stderr == (
        "error: stack 'prod' does not exist (no credentials/prod/ directory). Known stacks: "
        "staging.\n"
    )


def test_a_key_used_elsewhere_is_refused_by_the_policy_engine(staging: KeyRepo) -> None:
    key, secret = add_client(staging, "staging", "android", "android", "served")
    staging.commit("android")
    code, out, err = _add(staging, *SERVED_IOS, stdin=f"{key}\n{pair()[1]}\n")
    assert code == 1 and out == ""
    first, *findings = err.splitlines()
    assert first == (
        "error: the policy engine refuses this change to credentials/staging/ios.yaml; nothing "
        "was written. Fix what each finding below names, or choose another move "
        "(docs/rotation.md):"
    )
    assert any("error[unique-key]" in line for line in findings), findings
    assert key not in err and secret not in err
    _unchanged(staging)


@pytest.mark.parametrize(
    ("stdin", "expected"),
    [
        (
            "",
            "error: stdin must hold exactly two non-empty lines, the key then the secret; found 0",
        ),
        (
            "0123456789abcdef0123\n",
            "error: stdin must hold exactly two non-empty lines, the key then the secret; found 1. "
            'Example: printf \'%s\\n%s\\n\' "$KEY" "$SECRET" | keyops client add …',
        ),
        (
            "0123456789ABCDEF0123\n0123456789abcdef0124\n",
            "error: the key is not in Pusher's format: expected 20 lowercase hexadecimal "
            "characters, got 20 characters including upper-case letters.",
        ),
    ],
)
def test_bad_input_on_stdin_is_refused_without_echo(
    staging: KeyRepo, stdin: str, expected: str
) -> None:
    code, out, err = _add(staging, *SERVED_IOS, stdin=stdin)
    assert (code, out) == (2, "")
    assert err.startswith(expected), err
    for line in stdin.splitlines():
        assert line not in err
    _unchanged(staging)


def test_a_taken_id_is_refused(staging: KeyRepo) -> None:
    add_client(staging, "staging", "android", "android", "served", "--id", "first-key")
    staging.commit("android")
    key, secret = pair()
    code, _, err = _add(staging, *SERVED_IOS, "--id", "first-key", stdin=f"{key}\n{secret}\n")
    assert code == 2
    assert err.startswith("error: credential id 'first-key' is already used in stack staging.")


def test_without_a_key_for_the_stack_no_secret_is_asked_for(
    staging: KeyRepo, tmp_path: Path
) -> None:
    # The identity is in sops' default key file under the test's home: look elsewhere.
    elsewhere = {"XDG_CONFIG_HOME": str(tmp_path / "no-config")}
    proc = staging.run(*ADD, *SERVED_IOS, key=False, env=elsewhere, input="not read\n")
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr.startswith("error: no key here can decrypt credentials/staging/_stack.yaml")
    _unchanged(staging)


def test_the_first_key_passes_the_policy_check_of_its_pull_request(staging: KeyRepo) -> None:
    base = staging.git("rev-parse", "HEAD")
    add_client(staging, "staging", "web", "web", "served")
    staging.commit("web")
    proc = staging.run("check", "--base", base, "--format", "json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert report["summary"]["errors"] == 0
    assert [f["rule"] for f in report["findings"]] == []


def test_with_pr_it_commits_on_a_branch_named_after_the_command(staging: KeyRepo) -> None:
    key, secret = pair()
    proc = staging.run(
        *ADD, *SERVED_IOS, "--pr", input=f"{key}\n{secret}\n", env={"PATH": "/usr/bin:/bin"}
    )
    assert proc.returncode == 0, proc.stderr
    branch = staging.git("rev-parse", "--abbrev-ref", "HEAD")
    assert branch.startswith("keyops/staging-ios-client-add-ios-")
    assert staging.git("show", "--name-only", "--format=%s", "HEAD").splitlines() == [
        f"chore(credentials): client add staging/ios {branch.rsplit('client-add-', 1)[1]}",
        "",
        "credentials/staging/ios.yaml",
    ]
    assert "_Made with `keyops client add --pr`._" in proc.stdout
    assert key not in proc.stdout and secret not in proc.stdout
