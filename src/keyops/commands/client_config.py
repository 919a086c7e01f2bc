"""``keyops client-config``: the bootstrap JSON an app build carries (DESIGN.md section 6).

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
from typing import Any

from keyops import loader, repo, signing
from keyops.client.files import write_private
from keyops.errors import EXIT_OK, InputError, KeyopsError, PolicyRefused
from keyops.findings import Severity
from keyops.model import AppAuth, ClientFile, Stack
from keyops.sops import Sops, timeout_from_env
from keyops.sources import CREDENTIALS_DIR, STACK_FILE, WorktreeSource


def register(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "client-config",
        help="print the bootstrap JSON (endpoints, request auth, pinned keys) for an app build",
        description=__doc__,
    )
    parser.add_argument("--stack", required=True, metavar="S", help="the stack")
    parser.add_argument("--client", required=True, metavar="C", help="the served client")
    parser.add_argument(
        "--out", type=Path, metavar="FILE", help="write here (mode 0600) instead of stdout"
    )
    parser.add_argument(
        "--bundled-fallback",
        action="store_true",
        help="also embed the active credential as the app's last-resort key",
    )
    return parser


def load_stack(root: Path, stack: str) -> Stack:
    """The stack, decrypted; refused (exit 1) when its files do not validate."""
    source = WorktreeSource(root)
    loader.check_stacks(root, source, [stack])
    result = loader.load(
        root, source, stacks=[stack], decrypt=True, sops=Sops(root, timeout=timeout_from_env())
    )
    errors = [f for f in result.findings if f.severity is Severity.ERROR]
    if errors:
        first = errors[0]
        raise PolicyRefused(
            f"stack {stack!r} does not validate ({len(errors)} error(s); first: "
            f"{first.path} {first.pointer}: {first.message})",
            f"Run 'keyops validate --stack {stack}' and fix the files.",
        )
    return result.stacks[stack]


def active_app_auth(client: ClientFile) -> AppAuth:
    """The app_auth entry new builds get: the newest active one (by created, then file order)."""
    active = [a for a in client.app_auth if a.state == "active"]
    if not active:
        raise PolicyRefused(
            f"client {client.client!r} has no active app_auth entry ({client.path})",
            f"Add one with 'keyops app-auth --stack {client.stack} --client {client.client}'.",
        )
    newest = max(active, key=lambda a: (a.created.toordinal() if a.created else 0, -a.index))
    return newest


def bootstrap(stack: Stack, client_name: str, *, bundled_fallback: bool = False) -> dict[str, Any]:
    """The section 6 bootstrap document for one served client of a decrypted stack."""
    client = stack.clients.get(client_name)
    if client is None:
        raise InputError(
            f"client {client_name!r} does not exist in stack {stack.name!r}",
            f"Known clients: {', '.join(sorted(stack.clients)) or 'none'}.",
        )
    if client.delivery != "served":
        raise PolicyRefused(
            f"client {client_name!r} is delivered {client.delivery!r}, not served: it has no "
            "endpoint to fetch from",
            "client-config is only for clients with delivery: served "
            "(bundled apps use 'keyops export').",
        )
    stack_file = stack.stack_file
    if stack_file is None:
        raise InputError(
            f"stack {stack.name!r} has no {CREDENTIALS_DIR}/{stack.name}/{STACK_FILE}",
            "Create the stack file with its signing key and endpoints.",
        )
    if not stack_file.endpoints:
        raise PolicyRefused(
            f"stack {stack.name!r} lists no endpoints ({stack_file.path})",
            "Add the endpoint base URLs under 'endpoints:' in the stack file.",
        )
    auth = active_app_auth(client)
    if auth.secret is None:
        raise KeyopsError(f"the app_auth secret {auth.kid!r} is not decrypted", "")
    document: dict[str, Any] = {
        "stack": stack.name,
        "client": client.client,
        "endpoints": list(stack_file.endpoints),
        "request_auth": {"kid": auth.kid, "alg": "HS256", "secret": auth.secret},
        "pinned_keys": signing.public_jwks(stack_file),
    }
    if bundled_fallback:
        active = client.in_state("active")
        if len(active) != 1 or active[0].key is None:
            raise PolicyRefused(
                f"client {client_name!r} has {len(active)} active credentials; a bundled "
                "fallback needs exactly one",
                "Promote a credential first.",
            )
        document["bundled_fallback"] = {
            "credential_id": active[0].id,
            "key": active[0].key,
            "cluster": client.cluster,
        }
    return document


def client_config(args: argparse.Namespace) -> int:
    root = repo.find_root(args.repo)
    stack = load_stack(root, args.stack)
    document = bootstrap(stack, args.client, bundled_fallback=args.bundled_fallback)
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
    try:
        write_private(out, text.encode())
    except OSError as exc:
        raise InputError(
            f"cannot write {out} ({exc.strerror or exc})", "Nothing was written."
        ) from None
    print(
        f"wrote {out} (mode 0600): client {args.client} of stack {args.stack}, "
        f"{len(document['endpoints'])} endpoint(s), request auth kid "
        f"{document['request_auth']['kid']}, {len(document['pinned_keys']['keys'])} pinned key(s)",
        file=sys.stderr,
    )
    return EXIT_OK
