"""``keyops validate``: is the credential repository readable, well-formed and safely encrypted?

A machine may hold the keys of some stacks only: the others get the checks that need no key,
and are named on stderr. Exit 2 when no stack can be decrypted, or a ``--stack`` cannot.
"""

from __future__ import annotations

import argparse
import sys

from keyops.cli import options, reporters
from keyops.cli.progress import Progress
from keyops.cli.reporters import FORMATS, Report
from keyops.cli.reporters.text import use_colour
from keyops.core.errors import EXIT_FINDINGS, EXIT_OK, InputError, NoDecryptionKey
from keyops.core.findings import has_errors
from keyops.store import loader, repo
from keyops.store.sops import Sops, timeout_from_env
from keyops.store.sources import CREDENTIALS_DIR, WorktreeSource

NO_DECRYPT_HINT = "Or run keyops validate --no-decrypt: only the checks that need no key."


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths", nargs="*", metavar="PATH", help="files or directories (default: all)"
    )
    options.add_stack_selection(parser)
    parser.add_argument(
        "--no-decrypt",
        action="store_true",
        help="run only the checks that need no decryption key",
    )
    parser.add_argument("--format", choices=FORMATS, default="text")


def validate(args: argparse.Namespace) -> int:
    root = repo.find_root(args.repo)
    source = WorktreeSource(root)
    paths = [repo.relative_arg(root, raw) for raw in args.paths]
    for rel in paths:
        if rel != CREDENTIALS_DIR and not rel.startswith(CREDENTIALS_DIR + "/"):
            raise InputError(
                f"{rel} is not under {CREDENTIALS_DIR}/", "Name credential files or directories."
            )
    loader.check_stacks(root, source, args.stack)
    entries = source.entries()
    for rel, raw in zip(paths, args.paths, strict=True):
        # Naming a hidden file, an empty directory or a file outside --stack must not end in
        # a reassuring "ok: 0 file(s)".
        if not loader.select_entries(entries, args.stack, [rel]):
            raise InputError(
                f"{raw} holds no credential file to validate"
                + (f" in stack(s) {', '.join(args.stack)}" if args.stack else ""),
                "Name credentials/<stack>/<client>.yaml files or their directories "
                "(files starting with '.' are skipped).",
            )
    progress = Progress()
    try:
        result = loader.load(
            root,
            source,
            stacks=args.stack,
            paths=paths or None,
            decrypt=not args.no_decrypt,
            sops=None if args.no_decrypt else Sops(root, timeout=timeout_from_env()),
            progress=progress,
            skip_stacks_without_key=not args.all_stacks,
        )
    finally:
        progress.close()
    try:
        skipped = loader.refuse_missing_keys(args.stack, result)
    except NoDecryptionKey as exc:
        raise exc.hint(NO_DECRYPT_HINT) from None
    for stack in skipped:
        print(
            f"note: stack {stack}: only the checks that need no key ran (YAML, encryption, "
            f"recipients), since no key here can decrypt it (keyops validate --stack {stack} "
            "names who can).",
            file=sys.stderr,
        )
    report = Report(
        result.findings,
        result.file_count,
        command="validate",
        what="checked without decryption" if args.no_decrypt else "validated",
        colour=use_colour(sys.stdout.isatty()),
    )
    sys.stdout.write(reporters.render(args.format, report))
    return EXIT_FINDINGS if has_errors(result.findings) else EXIT_OK
