"""``keyops client-config``: the bootstrap JSON an app build carries.

It holds the stack and client names, the endpoints in the order to try them, the request-auth
HMAC key of the client's active ``app_auth`` entry, and the stack's public signing keys to pin.
The HMAC key is a secret: ``--out`` writes the file with mode 0600, atomically. With
``--bundled-fallback`` it also carries the active credential's key and cluster, which the client
uses only when it has neither network nor cache.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from keyops.build.bootstrap import bootstrap
from keyops.build.stacks import load_stack
from keyops.cli import options
from keyops.core.atomic import PRIVATE, write_atomic
from keyops.core.errors import EXIT_OK, InputError
from keyops.store import repo


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stack", required=True, metavar="S", help="the stack")
    parser.add_argument("--client", required=True, metavar="C", help="the served client")
    parser.add_argument(
        "--out", type=Path, metavar="FILE", help="write here (mode 0600) instead of stdout"
    )
    options.add_endpoint(parser, "the stack file's endpoints")
    parser.add_argument(
        "--bundled-fallback",
        action="store_true",
        help="also embed the active credential as the app's last-resort key",
    )


def client_config(args: argparse.Namespace) -> int:
    root = repo.find_root(args.repo)
    stack = load_stack(root, args.stack, purpose="write the client config")
    document = bootstrap(
        stack, args.client, bundled_fallback=args.bundled_fallback, endpoints=args.endpoint
    )
    text = json.dumps(document, indent=2) + "\n"
    if args.out is None:
        if sys.stdout.isatty():
            print(
                "warning: this output holds the app_auth HMAC secret; prefer --out FILE (0600)",
                file=sys.stderr,
            )
        sys.stdout.write(text)
        return EXIT_OK
    out: Path = args.out
    if out.is_dir():
        raise InputError(f"--out {out} is a directory", "Name a file.")
    if not out.parent.is_dir():
        raise InputError(f"the directory of --out {out} does not exist", "Create it first.")
    write_atomic(out, text.encode(), mode=PRIVATE)
    print(
        f"wrote {out} (mode 0600): client {args.client} of stack {args.stack}, "
        f"{len(document['endpoints'])} endpoint(s), request auth kid "
        f"{document['request_auth']['kid']}, {len(document['pinned_keys']['keys'])} pinned key(s)",
        file=sys.stderr,
    )
    return EXIT_OK
