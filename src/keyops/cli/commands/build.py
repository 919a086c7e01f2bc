"""``keyops build``: compile a stack's validated credentials into a signed bundle for the endpoint.

The build refuses (exit 1) when validation or the history-free policy rules report errors. The
output directory gets ``bundle.jws`` (the whole signed bundle, mode 0600: it holds the app_auth
HMAC keys) and ``jwks.json`` (public signing keys). Writes are atomic and verified by reading
back; rebuilding into the same directory always raises ``bundle_version``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from keyops.build.bundle import build_bundle, previous_version, write_bundle
from keyops.cli import options
from keyops.core.errors import EXIT_OK
from keyops.protocol.bundle import DEFAULT_TTL_DAYS
from keyops.store import repo
from keyops.store.sops import Sops, timeout_from_env


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stack", required=True, metavar="S", help="the stack to build")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="output directory")
    parser.add_argument(
        "--ttl-days",
        type=int,
        default=DEFAULT_TTL_DAYS,
        metavar="N",
        help=f"days until the bundle and its payloads expire (default {DEFAULT_TTL_DAYS})",
    )
    options.add_now(parser, records=True)


def build(args: argparse.Namespace) -> int:
    root = repo.find_root(args.repo)
    now = options.recorded_now(args)
    bundle = build_bundle(
        root,
        args.stack,
        now=now,
        ttl_days=args.ttl_days,
        sops=Sops(root, timeout=timeout_from_env()),
        floor=previous_version(args.out),
    )
    path = write_bundle(bundle, args.out)
    served = sum(len(c.credentials) for c in bundle.clients.values())
    expires = dt.datetime.fromtimestamp(bundle.exp, dt.UTC).isoformat(timespec="seconds")
    print(
        f"built bundle {path}: stack {bundle.stack}, version {bundle.bundle_version}, "
        f"{len(bundle.clients)} served client(s), {served} signed payload(s), "
        f"signed by {bundle.signing_kid}, expires {expires}",
        file=sys.stdout,
    )
    return EXIT_OK
