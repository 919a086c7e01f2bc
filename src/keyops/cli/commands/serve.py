"""``keyops serve``: the key-serving endpoint on a local HTTP/1.1 server (keyops.endpoint.server).

``--bundle DIR`` serves a bundle made by ``keyops build``; ``--stack S`` builds one from the
repository first (into ``.keyops/serve/S/``) and rebuilds it whenever ``credentials/S/``
changes. Either way each worker watches the bundle file and swaps in a new one atomically when it
verifies; one that does not is ignored (and logged) while the last good bundle keeps serving.

It refuses to start (exit 2) when the bundle is missing, invalid or expired.

Limits per worker (see ``keyops.endpoint.server``): request heads of at most 16 KiB (else 431),
a complete head within 10 s, idle keep-alive connections closed after 5 s, and at most
``--limit-concurrency`` open connections, the longest-idle one closed to admit a new one.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

from keyops.build.bundle import build_bundle, previous_version, write_bundle
from keyops.core.atomic import PUBLIC, write_atomic
from keyops.core.errors import EXIT_OK, InputError, KeyopsError, UsageError
from keyops.endpoint.server import Limits, configure_logging, listener
from keyops.endpoint.server import run as run_server
from keyops.protocol.bundle import Bundle
from keyops.store import repo
from keyops.store.sops import Sops, timeout_from_env
from keyops.store.sources import CREDENTIALS_DIR

log = logging.getLogger("keyops.serve")
SERVE_DIR = ".keyops/serve"


def register(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--bundle", type=Path, metavar="DIR", help="a bundle from keyops build")
    source.add_argument("--stack", metavar="S", help="build the stack's bundle and serve it")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8787, help="port (default 8787)")
    parser.add_argument("--workers", type=int, default=1, metavar="N", help="worker processes")
    parser.add_argument(
        "--jwks",
        type=Path,
        metavar="FILE",
        help="pin these public signing keys (default: trust the keys of the first bundle)",
    )
    parser.add_argument(
        "--poll", type=float, default=1.0, metavar="SECONDS", help="bundle check interval"
    )
    parser.add_argument(
        "--limit-concurrency",
        type=int,
        default=Limits.limit_concurrency,
        metavar="N",
        help=f"open connections per worker (default {Limits.limit_concurrency}); beyond it the "
        "longest-idle connection is closed",
    )
    parser.add_argument("--access-log", action="store_true", help="log each request line")


def _fingerprint(directory: Path) -> tuple[tuple[str, int, int], ...]:
    out = []
    for path in sorted(directory.glob("*.yaml")):
        try:
            st = path.stat()
        except OSError:
            continue
        out.append((path.name, st.st_mtime_ns, st.st_size))
    return tuple(out)


def _rebuild_loop(root: Path, stack: str, out: Path, poll: float, stop: threading.Event) -> None:
    """``--stack`` mode: rebuild when the stack's credential files change."""
    directory = root / CREDENTIALS_DIR / stack
    last = _fingerprint(directory)
    while not stop.wait(poll):
        current = _fingerprint(directory)
        if current == last:
            continue
        last = current
        try:
            bundle = _build(root, stack, out)
        except KeyopsError as exc:
            log.warning("credentials changed but the bundle was not rebuilt: %s", exc.render())
            continue
        log.info("rebuilt the bundle of stack %s: version %d", stack, bundle.bundle_version)


def _build(root: Path, stack: str, out: Path) -> Bundle:
    sops = Sops(root, timeout=timeout_from_env())
    bundle = build_bundle(root, stack, sops=sops, floor=previous_version(out))
    write_bundle(bundle, out)
    return bundle


def _load_pin(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(
            f"--jwks {path} cannot be read as JSON: {exc}", "Pass a JWKS file."
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise InputError(f"--jwks {path} is not a JWKS (no 'keys' list)", "Pass a JWKS file.")
    return data


def serve(args: argparse.Namespace) -> int:
    if args.workers < 1:
        raise UsageError(f"--workers {args.workers} must be at least 1", "Use e.g. --workers 2.")
    if not 0 < args.port < 65536:
        raise UsageError(f"--port {args.port} is not a TCP port", "Use 1-65535.")
    if args.poll <= 0:
        raise UsageError(f"--poll {args.poll} must be positive", "Use e.g. --poll 1.")
    if args.limit_concurrency < 1:
        raise UsageError(
            f"--limit-concurrency {args.limit_concurrency} must be at least 1",
            f"Use e.g. --limit-concurrency {Limits.limit_concurrency}.",
        )
    configure_logging()
    pin = _load_pin(args.jwks)
    stop = threading.Event()
    if args.stack:
        root = repo.find_root(args.repo)
        bundle_path = root / SERVE_DIR / args.stack
        bundle = _build(root, args.stack, bundle_path)
        threading.Thread(
            target=_rebuild_loop,
            args=(root, args.stack, bundle_path, args.poll, stop),
            name="keyops-rebuild",
            daemon=True,
        ).start()
    else:
        bundle_path = args.bundle
        if not bundle_path.exists():
            raise InputError(
                f"--bundle {bundle_path} does not exist",
                "Build one first: keyops build --stack S --out DIR.",
            )
        bundle = Bundle.load(bundle_path, jwks=pin)  # refuses expired or invalid bundles
    # why: mkdtemp creates a fresh 0700 directory under a random name: nothing can be planted.
    runtime = Path(tempfile.mkdtemp(prefix="keyops-serve-"))
    try:
        return _run(args, bundle, bundle_path, pin, runtime)
    finally:
        stop.set()
        shutil.rmtree(runtime, ignore_errors=True)


def _run(
    args: argparse.Namespace,
    bundle: Bundle,
    bundle_path: Path,
    pin: dict[str, Any] | None,
    runtime: Path,
) -> int:
    # Workers verify every bundle against these keys; without --jwks they may follow the chain
    # of trust to a newer bundle's keys (signing-key rotation through a 'next' key).
    trust = runtime / "trust.json"
    write_atomic(trust, json.dumps(pin if pin is not None else bundle.jwks()).encode(), mode=PUBLIC)
    os.environ["KEYOPS_BUNDLE"] = str(Path(bundle_path).resolve())
    os.environ["KEYOPS_PINNED_JWKS"] = str(trust)
    os.environ["KEYOPS_PIN_FIXED"] = "1" if pin is not None else ""
    os.environ["KEYOPS_POLL_SECONDS"] = str(args.poll)
    if args.workers > 1:
        metrics_dir = runtime / "metrics"
        metrics_dir.mkdir()  # why: inside the fresh 0700 runtime directory made above
        os.environ["KEYOPS_METRICS_DIR"] = str(metrics_dir)
    try:
        sock = listener(args.host, args.port, args.workers)
    except OSError as exc:
        raise KeyopsError(
            f"the server could not start on {args.host}:{args.port}: {exc.strerror or exc}",
            "Is the port already in use? Choose another with --port.",
        ) from None
    log.info(
        "serving stack %s bundle version %d on http://%s:%d with %d worker(s)",
        bundle.stack,
        bundle.bundle_version,
        args.host,
        args.port,
        args.workers,
    )
    limits = Limits(limit_concurrency=args.limit_concurrency, access_log=args.access_log)
    with sock:
        run_server(sock, args.workers, limits)
    return EXIT_OK
