"""``keyops doctor``: what works on this machine, and what to do about what does not.

One screen, one line per fact: the keyops and sops in use; the git repository; the age
identities sops will find here (``SOPS_AGE_KEY``, ``SOPS_AGE_KEY_FILE`` and sops' default key
file, each possibly holding several identities; only their public recipients are shown); for
each stack, whether a key here decrypts it and whether its files' recipients match its
``.sops.yaml`` rule; the git diff driver; and the ``pulumi`` and ``gh`` CLIs.

``--aws`` adds the read-only AWS prerequisites of a deploy for each ``stacks/Pulumi.<stack>.yaml``
(or the one of ``--stack``): Lambda concurrency for ``keyops:lambda.reservedConcurrency`` and
alarm e-mail subscriptions still waiting for confirmation, in every region (keyops.cli.doctor_aws;
boto3 is imported only then).

Exit 0 when everything a rotation needs works: sops, the repository, and a key for the stack
(``--stack S``) or for at least one stack. A stack without a key here is named, not a failure:
its key holders and CI check it. Exit 1 when something a rotation needs is broken, or, with
``--aws``, something a deploy needs; each ``FAIL`` line says how to fix it. Missing ``pulumi``,
``gh`` or the diff driver, and unconfirmed alarm e-mails, are warnings.
"""

from __future__ import annotations

import argparse
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from keyops import __version__
from keyops.cli.doctor_report import AWS_TOPICS, FAIL, OK, SKIP, WARN, Report
from keyops.core.errors import (
    EXIT_FINDINGS,
    EXIT_OK,
    KeyopsError,
    MissingExtra,
    NoDecryptionKey,
    UsageError,
)
from keyops.store import age, git, loader, repo, sopsconfig
from keyops.store.sops import Sops, default_age_key_file, metadata_recipients, timeout_from_env
from keyops.store.sources import CREDENTIALS_DIR, STACK_FILE, WorktreeSource


@dataclass
class Machine:
    """What the checks look at; filled in as they go."""

    args: argparse.Namespace
    env: dict[str, str]
    root: Path | None = None
    sops: Sops | None = None


Check = Callable[[Machine, Report], None]


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--stack",
        metavar="S",
        help="the stack a rotation is planned in: it must decrypt here (with --aws: the only "
        "stack whose AWS prerequisites are checked)",
    )
    parser.add_argument(
        "--aws",
        action="store_true",
        help="also check the AWS prerequisites of a deploy, read-only: Lambda concurrency for "
        "keyops:lambda.reservedConcurrency and unconfirmed alarm e-mail subscriptions, in every "
        "region of each stacks/Pulumi.<stack>.yaml (needs keyops[aws] and AWS credentials)",
    )
    parser.add_argument(
        "--endpoint-url", metavar="URL", help="with --aws: another AWS API endpoint (emulators)"
    )


def _short(recipient: str) -> str:
    return f"{recipient[:12]}…{recipient[-6:]}" if len(recipient) > 24 else recipient


# -- the checks, in the order of the screen ----------------------------------------------------


def check_keyops(m: Machine, r: Report) -> None:
    found = shutil.which("keyops", path=m.env.get("PATH"))
    if found:
        r.add(OK, "keyops", f"{__version__}, on PATH at {found}")
    else:
        r.add(
            WARN,
            "keyops",
            f"{__version__} runs, but 'keyops' is not on PATH (hooks and scripts call it): "
            "activate the environment it is installed in (make shell in the keyops checkout)",
        )


def check_sops(m: Machine, r: Report) -> None:
    try:
        m.root = repo.find_root(m.args.repo)
    except KeyopsError as exc:
        r.add(FAIL, "repo", f"{exc.what}. {exc.fix}".strip())
    try:
        m.sops = Sops(m.root or Path.cwd(), timeout=timeout_from_env(), env=m.env)
    except KeyopsError as exc:
        r.add(FAIL, "sops", f"{exc.what}. {exc.fix}".strip())
        return
    r.add(OK, "sops", f"{m.sops.version} ({m.sops.binary})")


def check_git(m: Machine, r: Report) -> None:
    if m.root is None:
        return
    if not git.is_repository(m.root):
        r.add(
            FAIL,
            "repo",
            f"{m.root} is not a git repository: edits cannot be checked or reviewed (git init)",
        )
        return
    branch = git.try_text(m.root, "rev-parse", "--abbrev-ref", "HEAD") or "no commit yet"
    r.add(OK, "repo", f"repository {m.root} (branch {branch})")


def _key_file(r: Report, label: str, path: Path) -> None:
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        r.add(FAIL, "keys", f"{label}: file not found; point it at your age key file")
        return
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        r.add(FAIL, "keys", f"{label}: cannot be read ({reason})")
        return
    _identities(r, label, text)
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        r.add(WARN, "keys", f"{label}: readable by other users; chmod 600 {path}")


def _identities_word(n: int) -> str:
    return f"{n} identity" if n == 1 else f"{n} identities"


def _identities(r: Report, label: str, text: str) -> None:
    scan = age.scan_identities(text)
    for recipient in scan.recipients:
        r.recipients.setdefault(recipient, label)
    shown = ", ".join(_short(x) for x in scan.recipients)
    extra = f", {_identities_word(scan.plugins)} of a plugin" if scan.plugins else ""
    status = OK if scan.count else WARN
    r.add(
        status,
        "keys",
        f"{label}: {_identities_word(scan.count)}{extra}" + (f" ({shown})" if shown else ""),
    )
    if scan.unreadable:
        r.add(
            WARN,
            "keys",
            f"{label}: {scan.unreadable} line(s) are neither a comment nor an identity",
        )


def check_identities(m: Machine, r: Report) -> None:
    env = m.env
    if env.get("SOPS_AGE_KEY"):
        _identities(r, "SOPS_AGE_KEY", env["SOPS_AGE_KEY"])
    if env.get("SOPS_AGE_KEY_FILE"):
        path = Path(env["SOPS_AGE_KEY_FILE"]).expanduser()
        _key_file(r, f"SOPS_AGE_KEY_FILE={path}", path)
    default = default_age_key_file(env)
    if default is not None and default.exists():
        _key_file(r, str(default), default)
    for name in ("SOPS_AGE_KEY_CMD", "SOPS_AGE_SSH_PRIVATE_KEY_FILE"):
        if env.get(name):
            r.add(OK, "keys", f"{name} is set (sops uses it; keyops does not look inside)")
    if any(env.get(n) for n in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_ROLE_ARN")):
        r.add(OK, "keys", "AWS credentials are set: stacks with a KMS recipient may decrypt")
    if not any(topic == "keys" for _, topic, _ in r.lines):
        r.add(
            WARN,
            "keys",
            "no age identity here: make one with keyops keygen --out FILE and set "
            "SOPS_AGE_KEY_FILE=FILE (or keep it in "
            f"{default or '~/.config/sops/age/keys.txt'})",
        )


def _file_recipients(path: Path) -> frozenset[str] | None:
    try:
        data = yaml.safe_load(path.read_bytes())
    except (OSError, yaml.YAMLError):
        return None
    meta = data.get("sops") if isinstance(data, dict) else None
    return frozenset(metadata_recipients(meta).entries)


def _stack_recipients(root: Path, stack: str, config: sopsconfig.SopsConfig) -> str | None:
    """None when every file of the stack is encrypted to its rule's recipients, else why not."""
    files = sorted((root / CREDENTIALS_DIR / stack).glob("*.yaml"))
    for path in files:
        rel = path.relative_to(root).as_posix()
        rules = config.rules_for(rel)
        if len(rules) != 1:
            return f"{rel} matches {len(rules)} creation rules in .sops.yaml (it needs one)"
        have = _file_recipients(path)
        if have is not None and have != rules[0].recipients:
            return (
                f"{rel} is encrypted to other recipients than its .sops.yaml rule; re-encrypt it "
                f"(sops updatekeys {rel})"
            )
    return None


def check_stacks(m: Machine, r: Report) -> None:
    if m.root is None or m.sops is None:
        return
    known = loader.list_stacks(WorktreeSource(m.root))
    wanted = m.args.stack
    if wanted and wanted not in known:
        r.add(FAIL, "stack", f"{wanted}: no such stack (known: {', '.join(known) or 'none'})")
        return
    if not known:
        r.add(WARN, "stack", "no stack yet: keyops stack add NAME --age RECIPIENT")
        return
    try:
        config = sopsconfig.load(m.root)
    except KeyopsError as exc:
        r.add(FAIL, "stack", f"{exc.what}. {exc.fix}")
        return
    for name in known:
        first = m.root / CREDENTIALS_DIR / name / STACK_FILE
        if not first.is_file():
            files = sorted((m.root / CREDENTIALS_DIR / name).glob("*.yaml"))
            if not files:
                r.add(FAIL, "stack", f"{name}: no credential file (keyops validate says why)")
                continue
            first = files[0]
        rel = first.relative_to(m.root).as_posix()
        rules = config.rules_for(rel)
        holders = sorted(rules[0].recipients) if len(rules) == 1 else []
        mine = [x.split(":", 1)[1] for x in holders if x.split(":", 1)[1] in r.recipients]
        mismatch = _stack_recipients(m.root, name, config)
        try:
            m.sops.decrypt(rel)
        except NoDecryptionKey:
            status = FAIL if name == wanted else SKIP
            who = ", ".join(_short(h.split(":", 1)[1]) for h in holders) or "nobody"
            r.add(
                status,
                "stack",
                f"{name}: no key here decrypts it (encrypted to {who}); its key holders and CI "
                "check it",
            )
            continue
        except KeyopsError as exc:
            r.add(FAIL, "stack", f"{name}: {exc.what}")
            continue
        via = f" with {', '.join(_short(x) for x in mine)}" if mine else ""
        if mismatch:
            r.add(FAIL, "stack", f"{name}: decrypts here{via}, but {mismatch}")
            continue
        r.decrypting.append(name)
        r.add(OK, "stack", f"{name}: decrypts here{via}; recipients match .sops.yaml")
    unused = [
        x for x in r.recipients if not any(f"age:{x}" in rule.recipients for rule in config.rules)
    ]
    for recipient in unused:
        r.add(
            WARN,
            "keys",
            f"identity {_short(recipient)} ({r.recipients[recipient]}) is a recipient of no stack",
        )
    if not wanted and not r.decrypting:
        r.add(
            FAIL,
            "stack",
            "no stack decrypts here: get the age identity of a stack's recipient (or AWS "
            "credentials for its KMS key), then run keyops doctor again",
        )


def check_diff_driver(m: Machine, r: Report) -> None:
    if m.root is None or not git.is_repository(m.root):
        return
    attributes = m.root / ".gitattributes"
    try:
        text = attributes.read_text(encoding="utf-8")
    except OSError:
        text = ""
    if "diff=sopsdiffer" not in text:
        r.add(
            WARN,
            "diff",
            ".gitattributes does not assign credentials/**/*.yaml to the sopsdiffer driver "
            "(keyops init writes it)",
        )
        return
    command = git.config_value(m.root, "diff.sopsdiffer.textconv")
    if command is None:
        r.add(
            WARN,
            "diff",
            'git diff shows ciphertext: run git config diff.sopsdiffer.textconv "sops decrypt"',
        )
        return
    program = command.split()[0] if command.split() else ""
    if program and shutil.which(program, path=m.env.get("PATH")) is None:
        r.add(WARN, "diff", f"the diff driver runs {program!r}, which is not on PATH")
        return
    r.add(OK, "diff", f"git diff decrypts through {command!r}")


def _cli(m: Machine, r: Report, name: str, version_args: list[str], missing: str) -> None:
    found = shutil.which(name, path=m.env.get("PATH"))
    if found is None:
        r.add(WARN, name, f"not on PATH: {missing}")
        return
    try:
        proc = subprocess.run(
            [found, *version_args], capture_output=True, text=True, timeout=20, check=False
        )
        first = (proc.stdout.strip().splitlines() or ["version unknown"])[0]
    except (OSError, subprocess.TimeoutExpired):
        first = "did not answer"
    r.add(OK, name, f"{first} ({found})")


def check_pulumi(m: Machine, r: Report) -> None:
    _cli(
        m,
        r,
        "pulumi",
        ["version"],
        "needed to preview and deploy a stack (install: curl -fsSL https://get.pulumi.com | sh)",
    )


def check_gh(m: Machine, r: Report) -> None:
    _cli(
        m,
        r,
        "gh",
        ["--version"],
        "needed for --pr to open the pull request (without it keyops prints the commands)",
    )


def check_aws(m: Machine, r: Report) -> None:
    """``--aws``: the read-only AWS prerequisites of a deploy (keyops.cli.doctor_aws)."""
    if not m.args.aws or m.root is None:
        return
    try:
        # boto3 only here: doctor without --aws works without the aws extra.
        from keyops.cli import doctor_aws
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in ("boto3", "botocore"):
            raise
        missing = MissingExtra("doctor --aws", "aws", exc.name or "boto3")
        r.add(FAIL, "aws", f"{missing.what}. {missing.fix}")
        return
    doctor_aws.check(r, m.root, m.args.stack, m.args.endpoint_url)


#: Every check, in screen order. A new area is one more function here.
CHECKS: tuple[Check, ...] = (
    check_keyops,
    check_sops,
    check_git,
    check_identities,
    check_stacks,
    check_diff_driver,
    check_pulumi,
    check_gh,
    check_aws,
)


def doctor(args: argparse.Namespace) -> int:
    if args.endpoint_url and not args.aws:
        raise UsageError("--endpoint-url goes with --aws", "Add --aws, or remove --endpoint-url.")
    machine = Machine(args=args, env=dict(os.environ))
    report = Report()
    for check in CHECKS:
        check(machine, report)
    where = machine.root or Path.cwd()
    out = sys.stdout
    out.write(f"keyops doctor: {where}\n")
    for status, topic, text in report.lines:
        out.write(f"  {status:<5} {topic:<7} {text}\n")
    out.write(f"result: {_result(args, report)}\n")
    return EXIT_FINDINGS if report.count(FAIL) else EXIT_OK


def _result(args: argparse.Namespace, report: Report) -> str:
    warned = report.count(WARN)
    summary = f"{warned} warning(s)" if warned else "no warning"
    deploy = report.count(FAIL, AWS_TOPICS)
    rotation = report.count(FAIL) - deploy
    if rotation or deploy:
        stops = [f"{rotation} problem(s) stop a rotation here"] if rotation else []
        stops += [f"{deploy} {'' if rotation else 'problem(s) '}stop a deploy"] if deploy else []
        return f"{' and '.join(stops)} (FAIL lines); {summary}"
    ready = (
        f"; AWS is ready for a deploy of {', '.join(report.aws_ready)}"
        if args.aws and report.aws_ready
        else ""
    )
    if not report.decrypting:
        return f"no stack to rotate yet (keyops stack add){ready}; {summary}"
    stacks = ", ".join(report.decrypting)
    return f"a rotation works here (stack(s) {stacks}){ready}; {summary}"
