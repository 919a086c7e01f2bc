"""``keyops smoke``: after a deploy, does every endpoint serve what the repository says?

For every endpoint (default: the stack file's ``endpoints``) and every served client, it fetches
with the reference client exactly as an app would (the config ``keyops client-config`` makes),
so the token, the JWE and the signature against the pinned keys are all exercised. It then
checks the served credential against the repository: the active one, or a pending one whose
rollout covers the probe's install id (the protocol's selection, computed here independently of the
server). The probe claims a very high app version, so ``min_app_version`` never excludes a
candidate. Exit 0 when everything matches, 1 on any mismatch or failure, 2 on usage errors.
"""

from __future__ import annotations

import argparse
import hashlib
from dataclasses import dataclass
from typing import Any

from keyops.build.bootstrap import bootstrap
from keyops.build.stacks import load_stack
from keyops.cli import options
from keyops.client import config as client_config
from keyops.client.fetcher import Fetcher, Policy, Result
from keyops.client.token import Identity
from keyops.core.errors import EXIT_FINDINGS, EXIT_OK, InputError, NothingUsable, UsageError
from keyops.core.model import ClientFile
from keyops.store import names, repo

PROBE_INSTALL_ID = "keyops-smoke-probe"
PROBE_APP_VERSION = "999999.0.0"


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stack", required=True, metavar="S", help="the stack")
    options.add_endpoint(parser, "the stack file's endpoints")
    parser.add_argument(
        "--client", action="append", metavar="C", help="only this client (repeatable)"
    )
    parser.add_argument(
        "--install-id",
        default=PROBE_INSTALL_ID,
        metavar="ID",
        help=f"the install id the probe claims (default {PROBE_INSTALL_ID})",
    )
    parser.add_argument(
        "--timeout", type=float, default=5.0, metavar="S", help="seconds per attempt (default 5)"
    )


def bucket(client: str, credential_id: str, install_id: str) -> int:
    digest = hashlib.sha256(f"{client}:{credential_id}:{install_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100


def expected_ids(client: ClientFile, install_id: str) -> tuple[list[str], str]:
    """The ids an endpoint may serve this probe, and a description for the report."""
    rolled = [
        c.id
        for c in client.in_state("pending")
        if c.rollout_percent is not None
        and bucket(client.client, c.id, install_id) < c.rollout_percent
    ]
    if rolled:
        return rolled, "pending, in its rollout for this install"
    active = [c.id for c in client.in_state("active")]
    return active, "active"


@dataclass(frozen=True)
class Check:
    url: str
    client: str
    ok: bool
    message: str
    bundle_version: int | None = None


def probe(document: dict[str, Any], url: str, install_id: str, timeout: float) -> Result:
    config = client_config.parse({**document, "endpoints": [url]})
    fetcher = Fetcher(
        config,
        Identity(PROBE_APP_VERSION, install_id),
        policy=Policy(attempt_timeout=timeout, max_rounds=2),
    )
    return fetcher.refresh()


def check_one(
    document: dict[str, Any], client: ClientFile, url: str, install_id: str, timeout: float
) -> Check:
    try:
        result = probe(document, url, install_id, timeout)
    except NothingUsable as exc:
        last = exc.attempts[-1] if exc.attempts else None
        why = f"{last.outcome} ({last.detail})" if last else "no attempt made"
        return Check(url, client.client, False, f"no verified answer: {why}")
    expected, kind = expected_ids(client, install_id)
    if result.credential_id in expected:
        return Check(
            url,
            client.client,
            True,
            f"{result.credential_id} ({kind}), bundle_version {result.bundle_version}",
            result.bundle_version,
        )
    return Check(
        url,
        client.client,
        False,
        f"served {result.credential_id}, the repository expects "
        f"{' or '.join(expected) or 'nothing'} ({kind})",
        result.bundle_version,
    )


def smoke(args: argparse.Namespace) -> int:
    if args.timeout <= 0:
        raise UsageError("--timeout must be > 0", "")
    Identity(PROBE_APP_VERSION, args.install_id)  # validates --install-id before any network
    root = repo.find_root(args.repo)
    stack = load_stack(root, args.stack, purpose="run the smoke test")
    served = sorted(n for n, c in stack.clients.items() if c.delivery == "served")
    for name in args.client or []:
        if name not in served:
            raise InputError(
                f"client {name!r} is not a served client of stack {args.stack!r}",
                names.suggestion(name, served, f"served clients of {args.stack}"),
            )
    clients = [n for n in served if not args.client or n in args.client]
    endpoints: list[str] = list(args.endpoint or [])
    if not endpoints and stack.stack_file is not None:
        endpoints = list(stack.stack_file.endpoints)
    if not endpoints:
        raise UsageError(
            f"stack {args.stack!r} lists no endpoints", "Pass --endpoint URL (repeatable)."
        )
    if not clients:
        print(f"smoke {args.stack}: no served clients, nothing to check")
        return EXIT_OK
    print(f"smoke {args.stack}: {len(endpoints)} endpoint(s) x {len(clients)} served client(s)")
    documents = {name: bootstrap(stack, name) for name in clients}
    checks: list[Check] = []
    width = max(len(n) for n in clients)
    for url in endpoints:
        for name in clients:
            check = check_one(
                documents[name], stack.clients[name], url.rstrip("/"), args.install_id, args.timeout
            )
            checks.append(check)
            mark = "ok  " if check.ok else "FAIL"
            print(f"{mark}  {url}  {name:<{width}}  {check.message}", flush=True)
    versions = sorted({c.bundle_version for c in checks if c.bundle_version is not None})
    if len(versions) > 1:
        print(
            f"note: endpoints serve different bundle versions {versions}: "
            "a deploy may still be in progress"
        )
    failed = sum(not c.ok for c in checks)
    print(f"smoke {args.stack}: {len(checks) - failed} ok, {failed} failed")
    return EXIT_FINDINGS if failed else EXIT_OK
