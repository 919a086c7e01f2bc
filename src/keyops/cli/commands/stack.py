"""``keyops stack``: add a stack, or list the stacks (the workflows' matrix).

``stack add NAME --age RECIPIENT…`` makes everything a new stack needs, in this order:

1. the creation rule for ``credentials/NAME/`` in ``.sops.yaml`` (with keyops' ``encrypted_regex``),
   so that only the listed recipients (age, and AWS KMS with ``--kms``) can decrypt it;
2. ``credentials/NAME/_stack.yaml`` with a fresh ES256 signing key and a fresh
   ``encryption_master_key``, generated in memory and encrypted by sops through stdin, written
   only once it decrypts back to what was intended (it never exists in clear on disk);
3. ``stacks/Pulumi.NAME.yaml``, the deployment settings, with the regions given (two or more make
   a production stack).

It refuses a name the schema does not allow, a stack that exists, and the committed TEST-ONLY
identity as a recipient of any stack but the test stacks of ``policies/keyops.yaml``. When a later
step fails, the earlier ones are undone.

``stack list`` prints the stacks in deploy order: those whose settings are not ``production``
first, then the production ones, alphabetically within each. ``--github-output`` hands the list
to a workflow as the JSON array ``stacks`` (a job's matrix), so a new stack needs no workflow edit.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import yaml

from keyops.cli.change import introduced_findings, refuse_or_warn
from keyops.core.atomic import PUBLIC, append_nofollow, make_dirs, write_atomic
from keyops.core.dates import NOW_HELP, parse_day
from keyops.core.errors import EXIT_OK, InputError, PolicyRefused, UsageError
from keyops.deploy import config as deploy_config
from keyops.policy import Context
from keyops.store import age, edit, loader, repo, scaffold, schema, settings, sopsconfig
from keyops.store.sops import Sops, timeout_from_env
from keyops.store.sources import CREDENTIALS_DIR, STACK_FILE, WorktreeSource

KMS_ARN_RE = re.compile(
    r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:(key|alias)/[A-Za-z0-9/_+=.@-]+$"
)
#: GitHub Actions hands a step the path of its outputs file here.
GITHUB_OUTPUT = "GITHUB_OUTPUT"


def register(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = actions.add_parser(
        "add",
        help="add a stack: its .sops.yaml rule, signing and master keys, deployment settings",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add.add_argument("name", metavar="NAME", help="the new stack, e.g. staging")
    add.add_argument(
        "--age",
        required=True,
        action="extend",
        nargs="+",
        metavar="RECIPIENT",
        help="age recipient(s) that may decrypt the stack (age1…, from keyops keygen); repeatable",
    )
    add.add_argument(
        "--kms",
        action="append",
        default=[],
        metavar="ARN",
        help="an AWS KMS key ARN that may decrypt it too (e.g. CI's, through its OIDC role)",
    )
    add.add_argument(
        "--endpoint",
        action="append",
        default=[],
        metavar="URL",
        help="a base URL of the stack's key-serving endpoint, in the order apps try them",
    )
    add.add_argument(
        "--region",
        action="append",
        default=[],
        metavar="R",
        help=f"an AWS region to serve from, primary first (default {deploy_config.DEFAULT_REGION})",
    )
    add.add_argument("--now", metavar="WHEN", help=NOW_HELP)

    listing = actions.add_parser(
        "list",
        help="the stacks, in deploy order (a workflow's matrix with --github-output)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    listing.add_argument(
        "--only",
        metavar="S[,S…]",
        help="just these stacks (comma-separated; 'all' or empty means every stack)",
    )
    listing.add_argument(
        "--deployable",
        action="store_true",
        help="only stacks that also have deployment settings (stacks/Pulumi.<stack>.yaml)",
    )
    listing.add_argument("--format", choices=("text", "json"), default="text")
    listing.add_argument(
        "--github-output",
        action="store_true",
        help="append stacks=<JSON array> to the file named by $GITHUB_OUTPUT (GitHub Actions)",
    )


# -- stack add ---------------------------------------------------------------------------------


def _check_name(name: str) -> None:
    pattern = schema.load_schema(schema.STACK_SCHEMA)["properties"]["stack"]["pattern"]
    if not re.fullmatch(pattern, name):
        raise UsageError(
            f"{name!r} is not a valid stack name",
            "Use 2-31 characters of lowercase letters, digits and '-', starting with a letter "
            "(it names credentials/<stack>/ and the Pulumi stack).",
        )


def _check_recipients(name: str, recipients: list[str], rules: settings.Settings) -> list[str]:
    checked = list(dict.fromkeys(age.check_recipient(r) for r in recipients))
    public = {t.split(":", 1)[-1] for t in rules.test_recipients} | {age.TEST_ONLY_RECIPIENT}
    if name not in rules.test_stacks:
        for recipient in checked:
            if recipient in public:
                raise PolicyRefused(
                    f"{recipient} is the committed TEST-ONLY identity, whose private key anyone "
                    f"can read; stack {name} must not be encrypted to it "
                    "(rule dev-key-in-real-stack)",
                    "Make a key of your own with keyops keygen --out FILE and pass its recipient.",
                )
    return checked


def _check_kms(arns: list[str]) -> list[str]:
    for arn in arns:
        if not KMS_ARN_RE.fullmatch(arn):
            raise UsageError(
                f"--kms {arn!r} is not an AWS KMS key ARN",
                "Use arn:aws:kms:REGION:ACCOUNT:key/ID or arn:aws:kms:REGION:ACCOUNT:alias/NAME.",
            )
    return list(dict.fromkeys(arns))


def _settings_file(root: Path, name: str, regions: list[str]) -> tuple[str, str | None]:
    """(relpath, text to write or None to keep an existing file)."""
    relpath = deploy_config.stack_file_path(name)
    text = deploy_config.starter_stack_file(name, regions)
    raw = yaml.safe_load(text)["config"]
    deploy_config.parse(deploy_config.raw_from_stack_file(raw), name)  # --region is checked here
    if (root / relpath).exists():
        if regions:
            raise InputError(
                f"{relpath} already exists, so --region cannot be applied",
                f"Leave out --region to keep it, or change it with pulumi config set --stack "
                f"{name} keyops:regions …",
            )
        return relpath, None
    return relpath, text


def _add(args: argparse.Namespace) -> int:
    name: str = args.name
    _check_name(name)
    root = repo.find_root(args.repo)
    folder = root / CREDENTIALS_DIR / name
    if folder.exists():
        known = loader.list_stacks(WorktreeSource(root))
        raise InputError(
            f"stack {name!r} already exists ({CREDENTIALS_DIR}/{name}/)",
            f"Known stacks: {', '.join(known) or 'none'}. Add clients to it with "
            "keyops client add.",
        )
    rules = settings.load(root)
    recipients = _check_recipients(name, args.age, rules)
    arns = _check_kms(args.kms)
    today = parse_day(args.now)
    settings_rel, settings_text = _settings_file(root, name, args.region)
    sops_path = root / ".sops.yaml"
    if not sops_path.is_file():
        raise InputError(
            f"{root} has no .sops.yaml", "Run keyops init first (it writes one without rules)."
        )
    old_sops = sops_path.read_text(encoding="utf-8")
    new_sops, rule_done = sopsconfig.with_stack_rule(old_sops, name, recipients, arns, sops_path)

    relpath = f"{CREDENTIALS_DIR}/{name}/{STACK_FILE}"
    document = scaffold.stack_document(name, today, list(args.endpoint) or None)
    sops = Sops(root, timeout=timeout_from_env())
    current = loader.load(root, WorktreeSource(root), sops=sops, skip_stacks_without_key=True)
    findings = introduced_findings(current, relpath, document, Context(now=today), rules, root)
    refuse_or_warn(findings, relpath)

    written: list[Path] = []
    try:
        write_atomic(sops_path, new_sops.encode("utf-8"), mode=PUBLIC)
        make_dirs(folder)
        written.append(folder)
        edit.save(root, relpath, b"", document, sops, new=True)
        if settings_text is not None:
            make_dirs((root / settings_rel).parent)
            write_atomic(root / settings_rel, settings_text.encode(), mode=PUBLIC, overwrite=False)
    except BaseException:
        # Leave the repository as it was: the rule without the stack would mislead the next run.
        write_atomic(sops_path, old_sops.encode("utf-8"), mode=PUBLIC)
        for path in written:
            shutil.rmtree(path, ignore_errors=True)
        raise

    kid = document["signing_keys"][0]["kid"]
    who = ", ".join([*recipients, *arns])
    regions = args.region or [deploy_config.DEFAULT_REGION]
    out = sys.stdout
    out.write(f"added stack {name}:\n")
    out.write(f"  .sops.yaml: {rule_done}, decryptable by {who}\n")
    out.write(
        f"  {relpath}: signing key {kid} (ES256) and an encryption_master_key, generated here "
        "and encrypted by sops (verified: decrypts to the intended content)\n"
    )
    if settings_text is None:
        out.write(f"  {settings_rel}: kept as it is\n")
    else:
        out.write(
            f"  {settings_rel}: region(s) {', '.join(regions)}; the domain and hosted zone are "
            "placeholders\n"
        )
    for finding in findings:
        if finding.rule != "approval":
            out.write(f"  {finding.severity.value}[{finding.rule}] {finding.message}\n")
    out.write(
        f"next: add its clients (keyops client add --stack {name} --client NAME --platform P "
        "--delivery D --app-id ID --cluster C), commit, and open a pull request: a .sops.yaml "
        "change needs an approver's review. Before the first deploy set the domain "
        f"(pulumi config set --stack {name} keyops:domain keys.example.com) and its "
        "keyops:hostedZoneId.\n"
    )
    return EXIT_OK


# -- stack list --------------------------------------------------------------------------------


def _is_production(root: Path, stack: str) -> bool:
    path = root / deploy_config.stack_file_path(stack)
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False
    config = data.get("config") if isinstance(data, dict) else None
    return isinstance(config, dict) and deploy_config.is_production(config)


def deploy_order(root: Path, stacks: list[str]) -> list[str]:
    """Non-production stacks first (they go out before production), each group by name."""
    return sorted(stacks, key=lambda s: (_is_production(root, s), s))


def _list(args: argparse.Namespace) -> int:
    root = repo.find_root(args.repo)
    known = loader.list_stacks(WorktreeSource(root))
    chosen = known
    wanted = [s.strip() for s in (args.only or "").split(",") if s.strip()]
    if wanted and wanted != ["all"]:
        loader.check_stacks(root, WorktreeSource(root), wanted)
        chosen = [s for s in known if s in wanted]
    if args.deployable:
        chosen = [s for s in chosen if (root / deploy_config.stack_file_path(s)).is_file()]
    ordered = deploy_order(root, chosen)
    if args.github_output:
        target = os.environ.get(GITHUB_OUTPUT)
        if not target:
            raise UsageError(
                f"--github-output needs ${GITHUB_OUTPUT}, which GitHub Actions sets in a step",
                "Outside a workflow, use --format json.",
            )
        # The runner's outputs file is append-only by contract (other steps' outputs are in it
        # already): appended, never through a symlink.
        append_nofollow(target, f"stacks={json.dumps(ordered)}\n".encode())
        print(f"stacks: {', '.join(ordered) or 'none'}")
        return EXIT_OK
    if args.format == "json":
        print(json.dumps(ordered))
    else:
        for stack in ordered:
            print(stack)
    return EXIT_OK


def stack(args: argparse.Namespace) -> int:
    if args.action == "add":
        return _add(args)
    return _list(args)
