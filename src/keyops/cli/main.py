"""The ``keyops`` command line: parse the arguments, then execute.

Dispatch is explicit: :data:`COMMANDS` names every command, its module under
``keyops.cli.commands`` and its one-line summary, so ``keyops --help`` imports no command at all
and a command is imported only when it is chosen. Each command module provides
``register(parser)``, which adds its arguments, and a function named like the module that takes
the parsed arguments and returns an exit code.

Around every command:

- a :class:`~keyops.core.errors.KeyopsError` becomes ``error: <what>. <fix>`` with its exit code;
- a missing optional dependency names the extra to install (exit 2);
- anything else is a bug: "unexpected error" with the path of a log holding the traceback
  (exit 3). No traceback ever reaches the terminal.

Exit codes (for every command):
  0   success, no error findings
  1   findings (validation or policy errors), or a refused change
  2   usage or environment error (bad arguments, sops missing, no decryption key, not a repository)
  3   unexpected error (a bug in keyops; see the log it names)
  130 interrupted (Ctrl-C)
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import os
import sys
import tempfile
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import NoReturn

from keyops import __version__
from keyops.core.atomic import PRIVATE, make_dirs, write_atomic
from keyops.core.errors import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_UNEXPECTED,
    KeyopsError,
    MissingExtra,
    UsageError,
)


@dataclass(frozen=True)
class Command:
    name: str
    module: str
    summary: str


#: Every command, in help order.
COMMANDS: tuple[Command, ...] = (
    Command("init", "init", "write a new credentials repository's layout into this git repository"),
    Command(
        "keygen", "keygen", "write a new age identity to a new file (0600); print its recipient"
    ),
    Command(
        "stack",
        "stack",
        "add a stack (sops rule, signing and master keys, settings), or list the stacks",
    ),
    Command(
        "client",
        "client",
        "add a client with its first key (stdin or --from-file) and, if served, its app_auth",
    ),
    Command(
        "doctor",
        "doctor",
        "what works on this machine: sops, keys per stack, identities, diff driver, pulumi, gh",
    ),
    Command(
        "validate",
        "validate",
        "validate credential files: YAML, encryption, recipients, JSON Schema",
    ),
    Command(
        "check",
        "check",
        "policy-check a change: lifecycle, approvals, key safety (base ref vs working tree)",
    ),
    Command(
        "status",
        "status",
        "show each credential's state, age, serving share and next step (no key needed)",
    ),
    Command(
        "rotate",
        "rotate",
        "add a new pending credential; key and secret come from stdin or --from-file",
    ),
    Command("promote", "promote", "pending -> active; the previous active credential -> retiring"),
    Command("retire", "retire", "retiring -> retired, after the overlap and adoption rules"),
    Command("revoke", "revoke", "any live state -> revoked (emergency; needs reason and incident)"),
    Command("rollout", "rollout", "set a pending credential's rollout_percent"),
    Command("app-auth", "app_auth", "rotate or retire a served client's app_auth HMAC secret"),
    Command(
        "export",
        "export",
        "write a bundled app's key and cluster, or the stack's auth-server keyring",
    ),
    Command(
        "release",
        "release",
        "record which credential a bundled app release carries (for adoption by app version)",
    ),
    Command("history", "history", "each credential's lifecycle from git history (no key needed)"),
    Command(
        "build", "build", "compile a stack into the signed bundle the key-serving endpoint serves"
    ),
    Command("serve", "serve", "serve the key endpoint (protocol v1) locally from a bundle"),
    Command(
        "client-config",
        "client_config",
        "print the bootstrap JSON (endpoints, request auth, pinned keys) for an app build",
    ),
    Command(
        "fetch",
        "fetch",
        "fetch and verify a served key the way an app does (endpoints, cache, bundled)",
    ),
    Command(
        "adoption",
        "adoption",
        "adoption evidence for keyops check: installs still on each key, from the endpoint, "
        "CloudWatch or app versions",
    ),
    Command(
        "verify",
        "verify",
        "check each key with a signed read-only call to the Pusher HTTP API: live or rejected",
    ),
    Command(
        "smoke",
        "smoke",
        "after a deploy: fetch from every endpoint and compare with the repository",
    ),
    Command(
        "approval",
        "approval",
        "post the keyops/approval commit status of a pull request (GitHub REST API)",
    ),
    Command(
        "hygiene",
        "hygiene",
        "scheduled chores: issues for old credentials, redeploys of expiring bundles",
    ),
)
BY_NAME = {c.name: c for c in COMMANDS}

#: Top-level modules of optional dependencies, and the extra of keyops that installs them.
OPTIONAL_MODULES = {
    "httptools": "serve",
    "uvloop": "serve",
    "pulumi": "deploy",
    "pulumi_aws": "deploy",
    "pulumi_policy": "deploy",
    "boto3": "aws",
    "botocore": "aws",
}

EPILOG = """exit codes:
  0    success: no error findings
  1    findings (validation or policy errors), or a refused change
  2    usage or environment error (bad arguments, sops missing, no decryption key)
  3    unexpected error: a bug in keyops (the message names a log with the details)
  130  interrupted
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}", f"Run '{self.prog} --help' for usage.")


def chosen_command(argv: Sequence[str]) -> Command | None:
    """The command named on the command line, if any (global options skipped)."""
    args = iter(argv)
    for token in args:
        if token in ("-C", "--repo"):
            next(args, None)
            continue
        if token.startswith("-"):
            continue
        return BY_NAME.get(token)
    return None


def missing_extra(exc: ModuleNotFoundError) -> str | None:
    """The extra that installs the module ``exc`` is about, when it is an optional dependency."""
    root = (exc.name or "").split(".", 1)[0]
    return OPTIONAL_MODULES.get(root)


def load_command(command: Command) -> ModuleType:
    """The command's module; :class:`MissingExtra` when an optional dependency is missing."""
    try:
        return importlib.import_module(f"keyops.cli.commands.{command.module}")
    except ModuleNotFoundError as exc:
        extra = missing_extra(exc)
        if extra is None:
            raise
        raise MissingExtra(command.name, extra, exc.name or "a dependency") from None


def build_parser(only: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser; the commands named in ``only`` (default: all) get their arguments."""
    parser = _Parser(
        prog="keyops",
        description="Pusher Channels credentials as code.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"keyops {__version__}")
    parser.add_argument(
        "-C",
        "--repo",
        metavar="DIR",
        type=Path,
        default=None,
        help="the keyops repository (default: found upward from the current directory)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    wanted = set(BY_NAME if only is None else only)
    for command in COMMANDS:
        sub = subparsers.add_parser(
            command.name,
            help=command.summary,
            epilog=EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        if command.name not in wanted:
            continue
        module = load_command(command)
        sub.description = module.__doc__
        module.register(sub)
        sub.set_defaults(_run=getattr(module, command.module))
    return parser


def crash_log_dir() -> Path:
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "keyops"


def report_unexpected(exc: BaseException, argv: Sequence[str]) -> int:
    """Write the traceback to a private log and tell the user where it is; exit 3.

    The log holds the frames (files, lines, code) and the exception's type, not its message
    or the arguments' values: either could carry a secret.
    """
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    frames = "".join(traceback.format_tb(exc.__traceback__))
    command = chosen_command(argv)
    text = (
        f"keyops {__version__} unexpected error at {stamp}\n"
        f"command: {command.name if command else '-'}\n"
        f"python: {sys.version.split()[0]}\n"
        f"exception: {type(exc).__module__}.{type(exc).__qualname__}\n\n{frames}"
    )
    where: Path | None = None
    for directory in (crash_log_dir(), Path(tempfile.gettempdir())):
        candidate = directory / f"keyops-crash-{stamp}-{os.getpid()}.log"
        try:
            make_dirs(directory, 0o700)
            write_atomic(candidate, text.encode(), mode=PRIVATE, overwrite=False)
        except (OSError, KeyopsError):
            continue
        where = candidate
        break
    detail = f"the details are in {where}" if where else "no log could be written"
    print(
        f"error: unexpected error ({type(exc).__name__}); this is a bug in keyops, and "
        f"{detail}. Please report it with that file.",
        file=sys.stderr,
    )
    return EXIT_UNEXPECTED


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    try:
        chosen = chosen_command(arguments)
        parser = build_parser([chosen.name] if chosen else [])
        args = parser.parse_args(arguments)
        if args.command is None:
            parser.print_help(sys.stderr)
            return EXIT_ERROR
        # Stack and client names become paths: every command's are checked here, before any
        # command sees them (``../dev/web`` must never reach the file system).
        from keyops.store import names

        names.check_arguments(args)
        result: int = args._run(args)
        return result
    except KeyopsError as exc:
        print(exc.render(), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("error: interrupted. Nothing was written.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # Output piped to a closed reader (e.g. `| head`): not an error of keyops.
        devnull = os.open(os.devnull, os.O_WRONLY)  # why: /dev/null itself, never a path of ours
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except ModuleNotFoundError as exc:
        extra = missing_extra(exc)
        if extra is None:
            return report_unexpected(exc, arguments)
        chosen = chosen_command(arguments)
        name = chosen.name if chosen else "this command"
        error = MissingExtra(name, extra, exc.name or "a dependency")
        print(error.render(), file=sys.stderr)
        return error.exit_code
    except Exception as exc:  # the last resort: a bug must not print a traceback
        return report_unexpected(exc, arguments)
