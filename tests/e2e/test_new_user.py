"""A new team makes keyops its own: the README's "Make it yours" path, typed by a scripted user.

The user has an empty directory, keyops installed with ``pip install`` into a fresh virtualenv
(``support.newuser``: a wheel of this checkout, installed offline) and the README. With keyops
commands alone, never editing a YAML file, they:

1. ``git init``, then ``keyops init --approver alice --approver bob``;
2. ``keyops keygen`` twice (staging's identity in sops' default key file, prod's in its own);
3. ``keyops stack add staging …`` and ``keyops stack add prod … --region eu-west-1 --region
   us-east-1``;
4. add an ios, android and web client (served) and a server client (secret-store) to each;
5. ``keyops validate``, ``keyops check --base <first commit>``, ``keyops build``, ``keyops
   serve``, ``keyops client-config`` piped into ``keyops fetch``, then a whole rotation (rotate,
   rollout, promote) that the running server picks up; ``keyops doctor`` exits 0.

The prod stack then runs through the Pulumi program ``keyops init`` wrote, under Pulumi's mocks.
Last, the repository, the home directory and the temporary directory (every process got its own
TMPDIR) are searched for every secret the user typed or keyops generated: Pusher secrets,
signing keys, master keys and age identities are in no file at all (identities only in their
key files); served Pusher keys and app_auth secrets only in ``bundle.jws`` (mode 0600), which is
what the endpoint serves from.
"""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

import pytest

from keyops.store import age
from keyops.store.sops import Sops
from support.infra import run_harness
from support.net import free_port
from support.newrepo import pair
from support.newuser import NewUser, places
from support.serve import Server, wait_for_version, wait_healthy

pytestmark = pytest.mark.slow

CLIENTS = (
    ("ios", "ios", "served"),
    ("android", "android", "served"),
    ("web", "web", "served"),
    ("server", "server", "secret-store"),
)


def _client_add(
    user: NewUser, stack: str, client: str, platform: str, delivery: str
) -> tuple[str, str]:
    key, secret = pair()
    proc = user.keyops(
        "client", "add", "--stack", stack, "--client", client, "--platform", platform,
        "--delivery", delivery, "--app-id", "1874221", "--cluster", "eu",
        input=f"{key}\n{secret}\n",
    )  # fmt: skip
    assert proc.stdout.startswith(f"created credentials/{stack}/{client}.yaml (verified")
    return key, secret


def _private(path: Path, top: Path) -> bool:
    """Only its owner can read ``path``: its mode, or a directory on the way to it, says so.

    ``keyops build`` writes bundle.jws 0600; the Lambda asset's copy must be world-readable
    inside the archive, so its directory is 0700 instead.
    """
    for node in (path, *path.parents):
        if stat.S_IMODE(node.stat().st_mode) & 0o077 == 0:
            return True
        if node == top:
            return False
    return False


def _fetch(user: NewUser, client: str) -> dict[str, object]:
    """client-config straight into fetch: the app_auth secret never touches a file."""
    config = user.keyops(
        "client-config", "--stack", "staging", "--client", client, secret_output=True
    ).stdout
    fetched = user.sh(
        "keyops", "fetch", "--config", "/dev/stdin", "--format", "json", "--timeout", "20",
        input=config,
    )  # fmt: skip
    result: dict[str, object] = json.loads(fetched.stdout)
    return result


def test_a_new_team_makes_keyops_its_own(tmp_path: Path) -> None:
    user = NewUser.create(tmp_path)
    port = free_port()
    typed: dict[str, tuple[str, str]] = {}

    # 1. An empty repository of their own.
    user.sh("git", "init", "--quiet", "--initial-branch=main")
    init = user.keyops("init", "--approver", "alice", "--approver", "bob")
    assert "requirements.txt pins keyops[deploy]==0.1.0" in init.stdout
    assert not (user.work / "src").exists() and not (user.work / "tests").exists()
    user.sh("git", "add", "-A")
    user.sh("git", "commit", "--quiet", "-m", "keyops init")
    first = user.sh("git", "rev-parse", "HEAD").stdout.strip()

    # 2. Two identities: sops reads its default key file and SOPS_AGE_KEY_FILE together.
    staging_key = user.home / ".config" / "sops" / "age" / "keys.txt"
    prod_key = user.home / "keys" / "prod.agekey"
    staging_recipient = user.keyops("keygen", "--out", str(staging_key)).stdout.strip()
    prod_recipient = user.keyops("keygen", "--out", str(prod_key)).stdout.strip()
    user.env_extra["SOPS_AGE_KEY_FILE"] = str(prod_key)
    for path, recipient in ((staging_key, staging_recipient), (prod_key, prod_recipient)):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert age.scan_identities(path.read_text()).recipients == (recipient,)

    # 3. The stacks.
    user.keyops(
        "stack", "add", "staging", "--age", staging_recipient,
        "--endpoint", f"http://127.0.0.1:{port}",
    )  # fmt: skip
    user.keyops(
        "stack", "add", "prod", "--age", prod_recipient, "--region", "eu-west-1",
        "--region", "us-east-1", "--endpoint", "https://keys.example.com",
    )  # fmt: skip

    # 4. Their clients, the first key of each typed on stdin.
    for stack in ("staging", "prod"):
        for client, platform, delivery in CLIENTS:
            typed[f"{stack}/{client}"] = _client_add(user, stack, client, platform, delivery)
    user.sh("git", "config", "diff.sopsdiffer.textconv", "sops decrypt")
    user.sh("git", "add", "-A")
    user.sh("git", "commit", "--quiet", "-m", "staging and prod")

    # 5. The everyday commands.
    validate = user.keyops("validate")
    assert validate.stdout == "ok: 10 file(s) validated, no findings\n"
    check = user.keyops("check", "--base", first)
    assert check.stdout.splitlines()[-1] == "0 error(s), 1 warning(s) in 10 file(s)"
    assert "warning[approval] a change of .sops.yaml" in check.stdout
    assert user.keyops("stack", "list").stdout == "staging\nprod\n"
    diff = user.sh(
        "git", "log", "-p", "-1", "--", "credentials/staging/web.yaml", secret_output=True
    ).stdout
    assert typed["staging/web"][0] in diff  # the diff driver decrypts, for the key holder only

    out = user.work / "out" / "staging"
    built = user.keyops("build", "--stack", "staging", "--out", str(out))
    assert "3 served client(s), 3 signed payload(s)" in built.stdout
    log = user.tmp / "serve.log"
    with log.open("wb") as handle:
        proc = subprocess.Popen(
            ["keyops", "serve", "--bundle", str(out), "--port", str(port)],
            cwd=user.work, env=user.env(), stdout=handle, stderr=subprocess.STDOUT,
        )  # fmt: skip
    server = Server(proc, f"http://127.0.0.1:{port}", log)
    try:
        version = wait_healthy(server)
        for client in ("ios", "android", "web"):
            got = _fetch(user, client)
            assert got["key"] == typed[f"staging/{client}"][0]
            assert got["source"] == server.url and str(got["credential_id"]).startswith(client)
        first_id = str(_fetch(user, "ios")["credential_id"])

        # A whole rotation of the ios key, each step committed as the user would.
        new_key, new_secret = pair()
        typed["staging/ios (rotated)"] = (new_key, new_secret)
        rotated = user.keyops(
            "rotate", "--stack", "staging", "--client", "ios", input=f"{new_key}\n{new_secret}\n"
        )
        new_id = rotated.stdout.splitlines()[1].split(":")[0].strip()
        assert rotated.stdout.splitlines()[1] == f"  {new_id}: new pending credential"
        user.sh("git", "commit", "--quiet", "-am", f"rotate {new_id}")
        user.keyops("rollout", "--stack", "staging", "--client", "ios", "--id", new_id,
                    "--percent", "50")  # fmt: skip
        user.sh("git", "commit", "--quiet", "-am", f"roll out {new_id}")
        promoted = user.keyops("promote", "--stack", "staging", "--client", "ios")
        assert f"  {first_id}: active → retiring" in promoted.stdout.splitlines()[2]
        user.sh("git", "commit", "--quiet", "-am", f"promote {new_id}")
        # Each step is its own pull request: checked against the commit before it.
        assert user.keyops("check", "--base", "HEAD~1").stdout == (
            "ok: 10 file(s) checked, no findings\n"
        )
        user.keyops("build", "--stack", "staging", "--out", str(out))
        wait_for_version(server, version + 1)
        got = _fetch(user, "ios")
        assert (got["credential_id"], got["key"]) == (new_id, new_key)
    finally:
        server.stop()

    doctor = user.keyops("doctor")
    assert doctor.stdout.splitlines()[-1].startswith(
        "result: a rotation works here (stack(s) prod, staging)"
    )
    assert " FAIL " not in doctor.stdout

    # The prod stack through the Pulumi program keyops init wrote, under Pulumi's mocks.
    run = run_harness(
        user.venv / "bin" / "python",
        user.work / "infra",
        user.work / "stacks" / "Pulumi.prod.yaml",
        "prod",
        user.tmp / "prod-program.json",
        user.env() | {"KEYOPS_ASSET_STRATEGY": "copy"},
    )
    assert run.error is None, run.error
    functions = run.of("aws:lambda/function:Function")
    assert sorted(f["region"] for f in functions) == ["eu-west-1", "us-east-1"]
    assert run.outputs["jwks"]["value"]["keys"][0]["kid"].startswith("prod-sign-")

    # Nothing secret in clear on disk: the repository, the home directory, the temp directory.
    sops = Sops(user.work, env=user.env())
    generated: dict[str, list[str]] = {"app_auth": [], "signing": [], "master": []}
    for path in sorted((user.work / "credentials").glob("*/*.yaml")):
        document = json.loads(sops.decrypt(path.relative_to(user.work).as_posix()))
        generated["app_auth"] += [a["secret"] for a in document.get("app_auth", [])]
        for signing in document.get("signing_keys", []):
            generated["signing"] += [
                signing["private_jwk"],
                json.loads(signing["private_jwk"])["d"],
            ]
        if "encryption_master_key" in document:
            generated["master"].append(document["encryption_master_key"])
    identities = [
        line
        for path in (staging_key, prod_key)
        for line in path.read_text().splitlines()
        if line.startswith("AGE-SECRET-KEY-")
    ]
    keys = [k for k, _ in typed.values()]
    never = [s for _, s in typed.values()] + generated["signing"] + generated["master"]
    served = keys + generated["app_auth"]
    assert len(keys) == 9 and len(generated["app_auth"]) == 6 and len(generated["master"]) == 2
    trees = [user.work, user.home, user.tmp]
    found = places(trees, never + served + identities)
    assert {s[:6]: sorted(map(str, found[s])) for s in never if found[s]} == {}
    for value in identities:
        assert found[value] <= {staging_key, prod_key}
    for value in served:
        for path in found[value]:
            assert path.name == "bundle.jws", (value[:4], path)
            assert _private(path, user.work), path
    # ...nor in anything a command printed, but for the served keys fetch prints by design.
    transcript = "\n".join(user.transcript)
    for value in never + generated["app_auth"] + identities:
        if value in transcript:
            pytest.fail(f"a secret ({value[:4]}…) appeared in a command's output")
