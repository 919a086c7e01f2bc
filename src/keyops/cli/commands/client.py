"""``keyops client add``: a new client of a stack, with its first Pusher key already active.

The key and secret come from stdin (two lines; typed without echo on a terminal) or from
``--from-file``, exactly as ``keyops rotate`` reads them. The new file holds that credential
``active`` (a client's first key may start active: nothing served it before) and, for a served
client, a generated first ``app_auth`` secret. The document goes through the same validation and
policy checks as every lifecycle edit before sops encrypts it through stdin; the file is written
only once it decrypts back to what was intended.
"""

from __future__ import annotations

import argparse
import re

from keyops.cli.change import add_edit_arguments, open_new_target, run_change
from keyops.cli.proposal import Proposal, Target
from keyops.cli.secret_input import add_credential_arguments, credential_id, read_checked_pair
from keyops.core import lifecycle
from keyops.core.errors import UsageError
from keyops.store import scaffold

PLATFORMS = ("ios", "android", "web", "server")
DELIVERIES = ("served", "bundled", "secret-store")
APP_ID_RE = re.compile(r"^[0-9]{1,12}$")
CLUSTER_RE = re.compile(r"^[a-z]{2,4}[0-9]{0,2}$")


def register(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = actions.add_parser(
        "add",
        help="add a client with its first key (active)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_edit_arguments(add)
    add.add_argument("--platform", required=True, choices=PLATFORMS, help="the app platform")
    add.add_argument(
        "--delivery",
        required=True,
        choices=DELIVERIES,
        help="served (fetched from the endpoint), bundled (built into the app) or secret-store "
        "(servers)",
    )
    add.add_argument("--app-id", required=True, metavar="ID", help="the Pusher app id (digits)")
    add.add_argument("--cluster", required=True, metavar="CLUSTER", help="e.g. mt1, eu, us2")
    add_credential_arguments(add)


def _check_arguments(args: argparse.Namespace) -> None:
    """Refuse in the command's terms what the schema would refuse in the file's."""
    if not lifecycle.ID_RE.fullmatch(args.client):
        raise UsageError(
            f"--client {args.client!r} is not a valid client name",
            "Use 3-63 characters of lowercase letters, digits and '-', starting with a letter or "
            "digit; it names the file credentials/<stack>/<client>.yaml.",
        )
    if (args.platform == "server") != (args.delivery == "secret-store"):
        raise UsageError(
            f"--platform {args.platform} cannot use --delivery {args.delivery}",
            "A server client is delivered secret-store; an app (ios, android, web) is served or "
            "bundled.",
        )
    if not APP_ID_RE.fullmatch(args.app_id):
        raise UsageError(
            f"--app-id {args.app_id!r} is not a Pusher app id",
            "Copy the numeric app id from the Pusher dashboard (App Keys).",
        )
    if not CLUSTER_RE.fullmatch(args.cluster):
        raise UsageError(
            f"--cluster {args.cluster!r} is not a Pusher cluster name",
            "Use the cluster of the app, such as mt1, eu, us2 or ap1.",
        )


def _next_step(target: Target, delivery: str) -> str:
    where = f"--stack {target.stack} --client {target.client}"
    if delivery == "served":
        return (
            "after merge and deploy, give the app build its bootstrap config: keyops "
            f"client-config {where} --out FILE"
        )
    if delivery == "bundled":
        return f"after merge, build the app release with keyops export {where}"
    return "after merge, deploy the stack so that the auth servers' keyring holds the key"


def _add(args: argparse.Namespace) -> int:
    _check_arguments(args)

    def build(target: Target) -> Proposal:
        # Asked only once the stack is known to be writable here, so nobody types in vain.
        key, secret = read_checked_pair(args.from_file, "client add")
        stack = target.current.stacks.get(target.stack)
        taken = {c.id for _, c in stack.credentials()} if stack else set()
        cred_id = credential_id(args.id, target.client, target.stack, target.today, taken)
        today = target.today.isoformat()
        first = {
            "id": cred_id,
            "state": "active",
            "key": key,
            "secret": secret,
            "created": today,
            "activated": today,
        }
        kid = lifecycle.default_kid(target.client, target.today, set())
        document = scaffold.client_document(
            target.client,
            args.platform,
            args.delivery,
            [first],
            app_id=args.app_id,
            cluster=args.cluster,
            app_auth_kid=kid,
            created=target.today,
        )
        changes = [
            f"new client {target.client}: {args.platform}, {args.delivery}, Pusher app "
            f"{args.app_id} ({args.cluster})",
            f"{cred_id}: first credential, active",
        ]
        if args.delivery == "served":
            changes.append(f"app_auth {kid}: new active secret (generated, 32 random bytes)")
        return Proposal(
            document=document,
            action="client-add",
            subject=cred_id,
            changes=changes,
            why=f"the {target.client} client of {target.stack} gets its credentials from keyops",
            next_step=_next_step(target, args.delivery),
            verify=[
                f"the key and secret of {cred_id} belong to Pusher app {args.app_id} "
                f"({args.cluster})",
                "no other file changed",
            ],
        )

    return run_change(args, build, opener=open_new_target)


def client(args: argparse.Namespace) -> int:
    return _add(args)
