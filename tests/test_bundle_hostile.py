"""Malformed bundles: always a BundleError, refused by the watcher, 503 on Lambda, exit 2 on build.

Each bundle here is correctly signed (by a key the test pins), so only the reader's structure
checks stand between it and the endpoint: a ``kid`` that is a list, JSON nested 2,000 deep,
wrong types anywhere. A FIFO, a directory or a device at the bundle path is refused without
blocking.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keyops.core.errors import BundleError
from keyops.endpoint import lambda_handler
from keyops.endpoint.core import Endpoint, Request
from keyops.endpoint.reload import BundleWatcher
from keyops.protocol.bundle import BUNDLE_FILE, BUNDLE_TYP, Bundle
from support.endpoint import Forger, b64json, es256, json_values
from support.repo import KeyRepo

DEEP = "[" * 2000 + "]" * 2000


@pytest.fixture(scope="module")
def good(bundle_dir: Path) -> Bundle:
    return Bundle.load(bundle_dir)


def forger(good: Bundle) -> Forger:
    return Forger.of(good.raw)


def with_text(forger: Forger, marker: str, replacement: str) -> bytes:
    """The forger's bundle with ``"marker"`` replaced by raw JSON text, then signed."""
    doc = json.dumps(forger.doc).replace(json.dumps(marker), replacement)
    header = {"alg": "ES256", "kid": forger.kid, "typ": BUNDLE_TYP}
    return es256(header, doc.encode(), forger.key).encode()


def set_path(doc: Any, path: tuple[Any, ...], value: Any) -> None:
    for step in path[:-1]:
        doc = doc[step]
    doc[path[-1]] = value


def malformed(good: Bundle) -> dict[str, bytes]:
    """Correctly signed bundles that are wrong inside, by name."""
    out: dict[str, bytes] = {}
    f = forger(good)
    out["bundle kid a list"] = f.bundle(header={"alg": "ES256", "kid": [f.kid], "typ": BUNDLE_TYP})
    out["bundle header a list"] = f.bundle(header=["ES256"])
    out["bundle typ a dict"] = f.bundle(header={"alg": "ES256", "kid": f.kid, "typ": {}})
    out["document a list"] = f.bundle(doc=[f.doc])
    f.doc["deep"] = "<deep>"
    out["document nested 2,000 deep"] = with_text(f, "<deep>", DEEP)
    changes: dict[str, tuple[tuple[Any, ...], Any]] = {
        "jwks kid a list": (("jwks", "keys", 0, "kid"), [f.kid]),
        "jwks keys a dict": (("jwks", "keys"), {"a": 1}),
        "stack a list": (("stack",), ["dev"]),
        "bundle_version a float": (("bundle_version",), 1.5),
        "bundle_version true": (("bundle_version",), True),
        "bundle_version 10**400": (("bundle_version",), 10**400),
        "exp a string": (("exp",), "never"),
        "clients a list": (("clients",), []),
        "serve a dict": (("clients", "ios", "serve"), {}),
        "credential_id a list": (("clients", "ios", "serve", 0, "credential_id"), ["x"]),
        "state unknown": (("clients", "ios", "serve", 0, "state"), "shiny"),
        "min_app_version a number": (("clients", "ios", "serve", 0, "min_app_version"), 5),
        "min_app_version with a newline": (
            ("clients", "ios", "serve", 0, "min_app_version"),
            "5.0.0\n",
        ),
        "rollout_percent 1e3": (("clients", "ios", "serve", 0, "rollout_percent"), 1000),
        "rollout_percent a string": (("clients", "ios", "serve", 0, "rollout_percent"), "10"),
        "payload jws a list": (("clients", "ios", "serve", 0, "jws"), ["a.b.c"]),
        "app_auth kid a list": (("clients", "ios", "app_auth", 0, "kid"), ["k"]),
        "app_auth secret a number": (("clients", "ios", "app_auth", 0, "secret"), 7),
        "app_auth a dict": (("clients", "ios", "app_auth"), {"kid": "k"}),
        "credential_ids holds a dict": (("clients", "ios", "credential_ids"), [{"a": 1}]),
        "credential_ids with a newline": (("clients", "ios", "credential_ids"), ["ios-2026-11\n"]),
        "nested JSON in a client": (("clients", "ios", "extra"), "<deep>"),
    }
    for name, (path, value) in changes.items():
        f = forger(good)
        set_path(f.doc, path, value)
        out[name] = with_text(f, "<deep>", DEEP) if value == "<deep>" else f.bundle()
    f = forger(good)
    item = f.doc["clients"]["ios"]["serve"][0]
    payload = b64json(item["jws"].split(".")[1])
    item["jws"] = f.sign(payload, header={"alg": "ES256", "kid": [f.kid]})
    out["payload kid a list"] = f.bundle()
    f = forger(good)
    f.doc["clients"]["ios"]["serve"][0]["jws"] = f.sign({**payload, "iat": 10**400})
    out["payload iat 10**400"] = f.bundle()
    f = forger(good)
    f.doc["clients"]["ios"]["serve"][0]["jws"] = f.sign([payload])
    out["payload a list"] = f.bundle()
    return out


def _names() -> list[str]:
    # For test ids at collection, when no bundle exists yet; the fixture checks they match.
    return [
        "bundle kid a list", "bundle header a list", "bundle typ a dict", "document a list",
        "document nested 2,000 deep", "jwks kid a list", "jwks keys a dict", "stack a list",
        "bundle_version a float", "bundle_version true", "bundle_version 10**400",
        "exp a string", "clients a list", "serve a dict", "credential_id a list",
        "state unknown", "min_app_version a number", "min_app_version with a newline",
        "rollout_percent 1e3", "rollout_percent a string", "payload jws a list",
        "app_auth kid a list", "app_auth secret a number", "app_auth a dict",
        "credential_ids holds a dict", "credential_ids with a newline",
        "nested JSON in a client", "payload kid a list", "payload iat 10**400", "payload a list",
    ]  # fmt: skip


@pytest.fixture(scope="module")
def bad_bundles(good: Bundle) -> dict[str, bytes]:
    bundles = malformed(good)
    assert sorted(bundles) == sorted(_names())
    return bundles


@pytest.mark.parametrize("name", _names())
def test_every_malformed_bundle_is_a_bundle_error(bad_bundles: dict[str, bytes], name: str) -> None:
    with pytest.raises(BundleError) as info:
        Bundle.from_bytes(bad_bundles[name], label="b.jws")
    assert info.value.render().startswith("error: the bundle b.jws is not valid: ")


def test_the_forger_makes_bundles_the_reader_accepts(good: Bundle) -> None:
    f = forger(good)
    assert Bundle.from_bytes(f.bundle()).clients.keys() == good.clients.keys()


def paths(doc: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield (*prefix, key)
            yield from paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            yield (*prefix, index)
            yield from paths(value, (*prefix, index))


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data(), value=json_values(10**30))
def test_any_value_anywhere_is_a_bundle_or_a_bundle_error(
    good: Bundle, data: st.DataObject, value: Any
) -> None:
    f = forger(good)
    path = data.draw(st.sampled_from(list(paths(f.doc))))
    set_path(f.doc, path, value)
    try:
        Bundle.from_bytes(f.bundle())
    except BundleError:
        pass


# -- the watcher, the Lambda and keyops build with these bundles -----------------------------------


@pytest.fixture
def served(good: Bundle, tmp_path: Path) -> Iterator[tuple[Endpoint, BundleWatcher, Path]]:
    file = tmp_path / BUNDLE_FILE
    file.write_bytes(good.raw)
    endpoint = Endpoint()
    watcher = BundleWatcher(file, endpoint)
    assert watcher.check()
    yield endpoint, watcher, file


def replace(file: Path, make: Callable[[Path], None]) -> None:
    staged = file.with_name("staged")
    make(staged)
    if staged.is_dir():
        file.unlink()  # a directory cannot replace a file in one rename
    os.replace(staged, file)


def finished_within(call: Callable[[], Any], limit: float = 60) -> Any:
    """Run ``call`` in a thread; a call still blocked after ``limit`` seconds fails the test."""
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(call()), daemon=True)
    thread.start()
    thread.join(limit)
    assert not thread.is_alive(), "the call blocked"
    return result[0]


def reload_failures(endpoint: Endpoint) -> str:
    text = endpoint.handle(Request.get("/metrics")).body.decode()
    return next(line for line in text.splitlines() if line.startswith("keyops_bundle_reload"))


SPECIAL: dict[str, Callable[[Path], None]] = {
    "a FIFO": lambda p: os.mkfifo(p),
    "a directory": lambda p: p.mkdir(),
    "a device": lambda p: p.symlink_to("/dev/zero"),
}


@pytest.mark.parametrize("kind", SPECIAL)
def test_a_special_file_at_the_bundle_path_is_refused_without_blocking(
    served: tuple[Endpoint, BundleWatcher, Path],
    good: Bundle,
    kind: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    endpoint, watcher, file = served
    replace(file, SPECIAL[kind])
    with caplog.at_level(logging.WARNING, logger="keyops.serve"):
        assert finished_within(watcher.check) is False
    assert endpoint.bundle is not None and endpoint.bundle.raw == good.raw
    assert f"the bundle {file} is not a regular file" in caplog.text
    assert reload_failures(endpoint) == "keyops_bundle_reload_failures_total 1"
    assert finished_within(watcher.check) is False  # unchanged: neither retried nor counted
    assert reload_failures(endpoint) == "keyops_bundle_reload_failures_total 1"


def test_every_malformed_bundle_is_refused_counted_and_the_last_good_kept(
    served: tuple[Endpoint, BundleWatcher, Path],
    good: Bundle,
    bad_bundles: dict[str, bytes],
    caplog: pytest.LogCaptureFixture,
) -> None:
    endpoint, watcher, file = served
    with caplog.at_level(logging.WARNING, logger="keyops.serve"):
        for data in bad_bundles.values():
            replace(file, lambda p, data=data: p.write_bytes(data))  # type: ignore[misc]
            assert watcher.check() is False
    assert endpoint.bundle is not None and endpoint.bundle.raw == good.raw
    count = len(bad_bundles)
    assert reload_failures(endpoint) == f"keyops_bundle_reload_failures_total {count}"
    assert caplog.text.count("ignored a new bundle, still serving version") == count


def test_a_bug_while_checking_is_counted_and_the_watcher_lives_on(
    served: tuple[Endpoint, BundleWatcher, Path],
    good: Bundle,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    endpoint, watcher, file = served

    def broken(*args: Any, **kwargs: Any) -> Bundle:
        raise RuntimeError("a value that must not be logged")

    monkeypatch.setattr(Bundle, "from_bytes", broken)
    replace(file, lambda p: p.write_bytes(good.raw + b"\n"))
    with caplog.at_level(logging.ERROR, logger="keyops"):
        assert watcher.check() is False
    assert "checking a new bundle failed: RuntimeError at " in caplog.text
    assert "must not be logged" not in caplog.text
    assert reload_failures(endpoint) == "keyops_bundle_reload_failures_total 1"
    assert endpoint.bundle is not None and endpoint.bundle.raw == good.raw


@pytest.fixture
def lambda_bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("KEYOPS_BUNDLE", str(tmp_path / BUNDLE_FILE))
    monkeypatch.delenv("KEYOPS_PINNED_JWKS", raising=False)
    lambda_handler.reset()
    yield tmp_path / BUNDLE_FILE
    lambda_handler.reset()


HEALTH = {"rawPath": "/healthz", "requestContext": {"http": {"method": "GET"}}}


def test_lambda_answers_not_ready_for_every_malformed_bundle(
    lambda_bundle: Path, bad_bundles: dict[str, bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    for name, data in bad_bundles.items():
        lambda_bundle.unlink(missing_ok=True)
        lambda_bundle.write_bytes(data)
        lambda_handler.reset()
        answer = lambda_handler.handler(HEALTH, None)
        assert answer["statusCode"] == 503, name
        assert json.loads(answer["body"])["code"] == "not-ready"
    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(logged) == len(bad_bundles)
    assert all(line["keyops"] == "not-ready" for line in logged)


@pytest.mark.parametrize("kind", SPECIAL)
def test_lambda_answers_not_ready_for_a_special_file(lambda_bundle: Path, kind: str) -> None:
    SPECIAL[kind](lambda_bundle)
    answer = finished_within(lambda: lambda_handler.handler(HEALTH, None))
    assert answer["statusCode"] == 503


def test_lambda_with_a_malformed_pin_is_not_ready(
    lambda_bundle: Path, good: Bundle, monkeypatch: pytest.MonkeyPatch
) -> None:
    lambda_bundle.write_bytes(good.raw)
    for pin in ("[" * 5000, '{"keys": [{"kid": ["x"]}]}', "[]", "1e400"):
        monkeypatch.setenv("KEYOPS_PINNED_JWKS", pin)
        lambda_handler.reset()
        assert lambda_handler.handler(HEALTH, None)["statusCode"] == 503, pin


def test_build_over_a_malformed_previous_bundle_exits_2(
    keyrepo: KeyRepo, tmp_path: Path, good: Bundle
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    bad = malformed(good)["bundle kid a list"]
    (out / BUNDLE_FILE).write_bytes(bad)
    proc = keyrepo.run("build", "--stack", "dev", "--out", str(out))
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip() == (
        f"error: the output directory {out} holds a previous bundle that cannot be read "
        f"(the bundle {out / BUNDLE_FILE} is not valid: the bundle has a kid that is not a "
        "string). "
        f"Remove {out / BUNDLE_FILE} to start the version count again, or choose another --out."
    )
    assert (out / BUNDLE_FILE).read_bytes() == bad  # nothing written
