"""The ``keyops`` command line: parse the arguments, then execute.

Each subcommand lives in ``keyops.commands.<name>`` and provides ``register(subparsers)`` and a
function of the same name as the module that takes the parsed arguments and returns an exit code.
Every :class:`~keyops.errors.KeyopsError` becomes ``error: <what>. <fix>`` on stderr with its exit
code; no traceback reaches the user.

Exit codes (for every command):
  0  success, no error findings
  1  findings (validation or policy errors), or a refused change
  2  usage or environment error (bad arguments, sops missing, no decryption key, not a repository)
  130 interrupted (Ctrl-C)
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from keyops import __version__
from keyops.errors import EXIT_ERROR, KeyopsError, UsageError

#: Subcommand modules in help order. A module that is not present is skipped, so features can
#: land one at a time.
COMMANDS = (
    "validate",
    "check",
    "status",
    "rotate",
    "promote",
    "retire",
    "revoke",
    "rollout",
    "app_auth",
    "export",
    "history",
    "build",
    "serve",
    "client_config",
    "fetch",
    "adoption",
    "smoke",
    "approval",
    "hygiene",
)

EPILOG = """exit codes:
  0    success: no error findings
  1    findings (validation or policy errors), or a refused change
  2    usage or environment error (bad arguments, sops missing, no decryption key)
  130  interrupted
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}", f"Run '{self.prog} --help' for usage.")


def _chosen_command(argv: Sequence[str]) -> str | None:
    """The command module named on the command line, if any (skipping global options).

    Registering only that module keeps start-up cheap: importing every command pulls in the
    JOSE, HTTP and server stacks, about a second of CPU that ``validate`` or ``check`` never use.
    """
    args = iter(argv)
    for token in args:
        if token in ("-C", "--repo"):
            next(args, None)
            continue
        if token.startswith("-"):
            continue
        module = token.replace("-", "_")
        return module if module in COMMANDS else None
    return None


def build_parser(only: Sequence[str] | None = None) -> argparse.ArgumentParser:
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
    for name in only or COMMANDS:
        try:
            module = importlib.import_module(f"keyops.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"keyops.commands.{name}":
                continue
            raise
        sub = module.register(subparsers)
        sub.epilog = EPILOG
        sub.formatter_class = argparse.RawDescriptionHelpFormatter
        sub.set_defaults(_run=getattr(module, name))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        arguments = list(sys.argv[1:] if argv is None else argv)
        chosen = _chosen_command(arguments)
        parser = build_parser([chosen] if chosen else None)
        args = parser.parse_args(arguments)
        if args.command is None:
            parser.print_help(sys.stderr)
            return EXIT_ERROR
        result: int = args._run(args)
        return result
    except KeyopsError as exc:
        print(exc.render(), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("error: interrupted. Nothing was written.", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # Output piped to a closed reader (e.g. `| head`): not an error of keyops.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
