"""The Lambda asset builder: contents, a clean import from the asset alone, recorded events served.

The asset is built with the ``copy`` strategy (offline): correct here because the test
interpreter is the platform the copied wheels were built for. The ``pip`` path for
manylinux2014_aarch64 is exercised offline through a wheelhouse that lacks the wheels.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from joserfc import jwe, jws
from joserfc.jwk import KeySet

from keyops.build.bundle import build_bundle, write_bundle
from keyops.deploy.asset import (
    HANDLER,
    MANIFEST,
    AssetError,
    build_asset,
    pip_command,
)
from support.endpoint import app_auth, claims, mint, new_epk
from support.repo import PROJECT, KeyRepo

EVENTS = PROJECT / "tests" / "events"
#: Runs the handler with nothing but the standard library and the asset importable.
RUNNER = """
import json, sys
asset, event_file = sys.argv[1], sys.argv[2]
sys.path[:] = [asset] + [p for p in sys.path if 'site-packages' not in p and p]
from keyops.endpoint.lambda_handler import handler
import keyops
assert keyops.__file__.startswith(asset), keyops.__file__
response = handler(json.load(open(event_file)), None)
heavy = ('pulumi', 'pulumi_aws', 'boto3', 'yaml')
leaks = sorted(m for m in sys.modules if m.split('.')[0] in heavy)
print(json.dumps({'response': response, 'unexpected_modules': leaks}))
"""


@pytest.fixture
def asset(keyrepo: KeyRepo, tmp_path: Path) -> Path:
    bundle = build_bundle(keyrepo.root, "dev", sops=keyrepo.sops())
    write_bundle(bundle, tmp_path / "bundle")
    built = build_asset(tmp_path / "asset", tmp_path / "bundle", strategy="copy")
    assert built.strategy == "copy"
    return built.path


def recorded(name: str, token: str = "") -> dict[str, Any]:
    """A recorded API Gateway event (tests/events, shared with the Lambda adapter's tests)."""
    data: dict[str, Any] = json.loads((EVENTS / name).read_text().replace("{{TOKEN}}", token))
    return data


def invoke(asset: Path, event: dict[str, object], tmp_path: Path) -> dict[str, Any]:
    event_file = tmp_path / "event.json"
    event_file.write_text(json.dumps(event))
    proc = subprocess.run(
        [sys.executable, "-I", "-S", "-c", RUNNER, str(asset), str(event_file)],
        env={"LAMBDA_TASK_ROOT": str(asset), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["unexpected_modules"] == []
    answer: dict[str, Any] = result["response"]
    return answer


def test_asset_holds_handler_package_dependencies_and_bundle(asset: Path) -> None:
    assert (asset / "keyops" / "endpoint" / "lambda_handler.py").is_file()
    assert (asset / "bundle" / "bundle.jws").is_file()
    for dist in ("cryptography", "cffi", "pycparser"):
        assert (asset / dist).is_dir(), dist
    # The endpoint answers with cryptography directly: no JOSE library in the function.
    assert not (asset / "joserfc").exists()
    # Pulumi has no place in the function; neither has byte code from this machine.
    assert not (asset / "keyops" / "deploy").exists()
    # World-readable inside (Lambda's runtime user), private on the build machine.
    assert asset.stat().st_mode & 0o777 == 0o700
    modes = {p.stat().st_mode & 0o777 for p in asset.rglob("*") if p.is_file()}
    assert modes <= {0o644, 0o755}
    assert (asset / "bundle" / "bundle.jws").stat().st_mode & 0o777 == 0o644
    manifest = json.loads((asset / MANIFEST).read_text())
    assert manifest["handler"] == HANDLER == "keyops.endpoint.lambda_handler.handler"
    assert manifest["strategy"] == "copy"
    # Byte code only when the builder runs the runtime's Python version (3.12 in CI).
    assert manifest["bytecode"] is (sys.version_info[:2] == (3, 12))
    if not manifest["bytecode"]:
        # No byte code of this machine's Python version ships to another runtime.
        assert not list(asset.rglob("__pycache__"))
    assert manifest["platform"] == f"local:{sys.platform}"
    assert [d.split("==")[0] for d in manifest["distributions"]] == [
        "cffi",
        "cryptography",
        "pycparser",
    ]


#: Lists what the asset alone can import of keyops, with nothing else on sys.path.
IMPORTABLE = """
import importlib, json, pkgutil, sys
asset = sys.argv[1]
sys.path[:] = [asset] + [p for p in sys.path if 'site-packages' not in p and p]
import keyops
found, refused = [], []
for info in pkgutil.walk_packages(keyops.__path__, 'keyops.'):
    found.append(info.name)
for name in ('keyops.store', 'keyops.cli', 'keyops.build', 'keyops.policy', 'keyops.deploy',
             'keyops.client', 'keyops.endpoint.server'):
    try:
        importlib.import_module(name)
    except ModuleNotFoundError:
        refused.append(name)
print(json.dumps({'found': sorted(found), 'refused': refused}))
"""


def test_asset_ships_only_what_the_endpoint_imports(asset: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-I", "-S", "-c", IMPORTABLE, str(asset)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    tops = {name.split(".")[1] for name in result["found"]}
    assert tops == {"core", "protocol", "endpoint"}
    assert "keyops.endpoint.lambda_handler" in result["found"]
    assert result["refused"] == [
        "keyops.store",
        "keyops.cli",
        "keyops.build",
        "keyops.policy",
        "keyops.deploy",
        "keyops.client",
        "keyops.endpoint.server",
    ]


def test_asset_serves_recorded_health_check_and_metrics(asset: Path, tmp_path: Path) -> None:
    response = invoke(asset, recorded("healthz.json"), tmp_path)
    assert response["statusCode"] == 200
    body = json.loads(str(response["body"]))
    assert (body["status"], body["stack"]) == ("ok", "dev")
    assert body["expires_in"] > 29 * 86400
    metrics = invoke(asset, recorded("metrics.json"), tmp_path)
    assert metrics["statusCode"] == 200
    assert metrics["headers"]["content-type"].startswith("text/plain; version=0.0.4")


def test_asset_refuses_a_token_signed_by_an_unknown_key(asset: Path, tmp_path: Path) -> None:
    header = (
        base64.urlsafe_b64encode(b'{"alg":"HS256","kid":"ios-build-2026a","typ":"JWT"}')
        .rstrip(b"=")
        .decode()
    )
    response = invoke(asset, recorded("credentials.json", f"{header}.e30.c2ln"), tmp_path)
    assert response["statusCode"] == 401
    assert response["headers"]["content-type"] == "application/problem+json"
    assert json.loads(str(response["body"]))["code"] == "invalid-token"


def test_asset_serves_a_signed_encrypted_credential(
    asset: Path, keyrepo: KeyRepo, tmp_path: Path
) -> None:
    ios = keyrepo.decrypt("credentials/dev/ios.yaml")
    epk = new_epk()
    token = mint(*app_auth(keyrepo), claims(epk))
    response = invoke(asset, recorded("credentials.json", token), tmp_path)
    assert response["statusCode"] == 200, response["body"]
    assert response["headers"]["content-type"] == "application/jose"
    inner = jwe.decrypt_compact(str(response["body"]), epk).plaintext
    assert inner is not None
    pinned = KeySet.import_key_set(json.loads((asset / "bundle" / "jwks.json").read_text()))
    payload = json.loads(jws.deserialize_compact(inner, pinned, algorithms=["ES256"]).payload)
    active = next(c for c in ios["credentials"] if c["state"] == "active")
    assert (payload["client"], payload["credential_id"], payload["key"]) == (
        "ios",
        active["id"],
        active["key"],
    )


def test_asset_byte_compiled_for_a_matching_runtime(keyrepo: KeyRepo, tmp_path: Path) -> None:
    this = f"python{sys.version_info.major}.{sys.version_info.minor}"
    (tmp_path / "bundle").mkdir()
    built = build_asset(tmp_path / "asset", tmp_path / "bundle", strategy="copy", runtime=this)
    manifest = json.loads((built.path / MANIFEST).read_text())
    assert (manifest["runtime"], manifest["bytecode"]) == (this, True)
    tag = sys.implementation.cache_tag
    pyc = built.path / "keyops" / "endpoint" / "__pycache__" / f"lambda_handler.{tag}.pyc"
    # Flags 0b01: hash-based and unchecked (PEP 552), so no mtime enters the asset.
    assert int.from_bytes(pyc.read_bytes()[4:8], "little") == 0b01


def test_auto_strategy_refuses_to_copy_compiled_wheels_when_pip_fails(
    tmp_path: Path, keyrepo: KeyRepo
) -> None:
    empty = tmp_path / "wheelhouse"
    empty.mkdir()
    (tmp_path / "bundle").mkdir()
    with pytest.raises(AssetError) as caught:
        build_asset(
            tmp_path / "asset",
            tmp_path / "bundle",
            strategy="auto",
            pip_args=("--no-index", "--find-links", str(empty)),
        )
    text = caught.value.render()
    assert text.startswith("error: pip could not fetch manylinux2014_aarch64 wheels for cffi==")
    assert ", cryptography==" in text and ", pycparser==" in text and "joserfc" not in text
    assert (
        "Copying from this machine is not an option: cffi, cryptography ship compiled code" in text
    )
    assert not (tmp_path / "asset").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".asset")] == []


def test_auto_strategy_copies_pure_python_dependencies_offline(tmp_path: Path) -> None:
    empty = tmp_path / "wheelhouse"
    empty.mkdir()
    (tmp_path / "bundle").mkdir()
    built = build_asset(
        tmp_path / "asset",
        tmp_path / "bundle",
        strategy="auto",
        requirements=("pycparser",),
        pip_args=("--no-index", "--find-links", str(empty)),
    )
    assert built.strategy == "copy"
    assert (built.path / "pycparser" / "__init__.py").is_file()


def test_pip_command_targets_the_lambda_platform(tmp_path: Path) -> None:
    command = pip_command(tmp_path, ["joserfc==1.8.0"], "manylinux2014_aarch64", "3.12", ())
    assert command[1:4] == ["-m", "pip", "install"]
    for flag in (
        ["--platform", "manylinux2014_aarch64"],
        ["--python-version", "3.12"],
        ["--target", str(tmp_path)],
        ["--implementation", "cp"],
    ):
        index = command.index(flag[0])
        assert command[index : index + 2] == flag
    assert "--only-binary=:all:" in command
    assert command[-1] == "joserfc==1.8.0"


def test_missing_bundle_is_refused(tmp_path: Path) -> None:
    with pytest.raises(AssetError) as caught:
        build_asset(tmp_path / "asset", tmp_path / "nope", strategy="copy")
    assert caught.value.render() == (
        f"error: bundle directory {tmp_path / 'nope'} does not exist. Build the bundle first."
    )
