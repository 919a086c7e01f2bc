"""``keyops init``: make the current git repository a keyops credentials repository.

It writes the data layout of a keyops repository, and nothing of keyops' own source or tests:
``.sops.yaml`` (no stack yet), ``credentials/``, ``policies/keyops.yaml`` (thresholds and the
``--approver`` logins) and ``policies/waivers.yaml``, ``stacks/``, ``Pulumi.yaml`` with a tiny
``infra/__main__.py`` that runs the installed ``keyops.deploy``, the CrossGuard pack in
``policies/infra/``, the GitHub workflows and ``CODEOWNERS``, ``.gitattributes`` (the sops diff
driver), ``.gitignore``, ``.pre-commit-config.yaml`` and ``requirements.txt``, which pins the
keyops that ran ``init``: CI and Pulumi install exactly that release.

An existing file is never overwritten without ``--force``; then nothing at all is written.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

from keyops.core.atomic import PUBLIC, make_dirs, write_atomic
from keyops.core.errors import EXIT_OK, InputError, KeyopsError, RepositoryError
from keyops.store import git, layout


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--approver",
        action="append",
        default=[],
        metavar="LOGIN",
        help="a GitHub login whose review approves retirements and recipient changes; also a "
        "code owner (repeatable)",
    )
    parser.add_argument("--force", action="store_true", help="replace files that already exist")


def _repository(args: argparse.Namespace) -> Path:
    start = (args.repo or Path.cwd()).resolve()
    if not start.is_dir():
        raise InputError(f"{start} is not a directory", "Check --repo.")
    top = git.try_text(start, "rev-parse", "--show-toplevel")
    if not top:
        raise RepositoryError(
            f"{start} is not inside a git repository",
            "Create one first (git init), then run keyops init in it.",
        )
    return Path(top)


def _write_all(root: Path, files: dict[str, bytes]) -> None:
    """Write every file, or none: on any failure, what was there before is put back."""
    before: dict[Path, bytes | None] = {}
    made: list[Path] = []
    try:
        for path, data in files.items():
            target = root / path
            missing = [p for p in reversed(target.parents) if not p.exists()]
            try:
                make_dirs(target.parent)
                before[target] = target.read_bytes() if target.is_file() else None
            except OSError as exc:
                raise InputError(
                    f"cannot write {path}: {exc.strerror or exc}",
                    "Check that nothing of that name is in the way and that you can write there.",
                ) from None
            made += missing
            write_atomic(target, data, mode=PUBLIC)
    except BaseException:
        for target, old in before.items():
            with contextlib.suppress(OSError, KeyopsError):
                if old is None:
                    target.unlink(missing_ok=True)
                else:
                    write_atomic(target, old, mode=PUBLIC)
        for directory in reversed(made):
            with contextlib.suppress(OSError):
                directory.rmdir()
        raise


def init(args: argparse.Namespace) -> int:
    approvers = layout.check_logins(args.approver)
    root = _repository(args)
    pin = layout.requirement()
    files = layout.render(approvers, pin)
    existing = [path for path in files if (root / path).exists() or (root / path).is_symlink()]
    if existing and not args.force:
        raise InputError(
            f"keyops init would overwrite {len(existing)} existing file(s) in {root}: "
            f"{', '.join(existing)}; nothing was written",
            "Move them aside, or pass --force to replace them.",
        )
    _write_all(root, files)
    out = sys.stdout
    replaced = f" ({len(existing)} replaced)" if existing else ""
    out.write(f"wrote {len(files)} files into {root}{replaced}:\n")
    for path in files:
        out.write(f"  {path}\n")
    out.write(f"requirements.txt pins {pin.line}\n")
    if pin.note:
        out.write(f"note: {pin.note}\n")
    if not approvers:
        out.write("note: no --approver given; list approvers in policies/keyops.yaml\n")
    out.write(
        "next:\n"
        "  1. keyops keygen --out ~/.config/sops/age/keys.txt   (your age identity; prints its "
        "recipient)\n"
        "  2. keyops stack add staging --age age1…   (one per stack; --kms ARN adds CI's KMS key,\n"
        "     --region R the regions to serve from)\n"
        "  3. keyops client add --stack staging --client ios --platform ios --delivery served "
        "--app-id ID --cluster C\n"
        "     (the first key and secret on stdin, or --from-file)\n"
        '  4. git config diff.sopsdiffer.textconv "sops decrypt"   (readable diffs; once per '
        "clone)\n"
        "  5. keyops validate, then commit; keyops doctor says what works on this machine\n"
        "  GitHub: environments, OIDC roles and secrets as in keyops' docs/github-setup.md\n"
    )
    return EXIT_OK
