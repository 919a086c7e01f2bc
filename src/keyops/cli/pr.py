"""``--pr``: turn a finished edit into a branch, a commit and a pull request for review.

The branch is ``keyops/<stack>-<client>-<action>-<id>`` and the commit message is conventional
(``chore(credentials): …``). The body tells reviewers what changes, why, what ``keyops check``
says, what they must verify and what comes next. With an authenticated ``gh`` CLI the pull request
is opened; otherwise the body is saved under ``.git/keyops/`` and the exact commands are printed.
"""

from __future__ import annotations

import importlib.util
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from keyops.cli.proposal import Proposal, Target
from keyops.core.atomic import make_dirs, write_atomic
from keyops.core.errors import RepositoryError
from keyops.store import git

#: What to do when git fails after the edit: the file itself is complete.
_AFTER_WRITE = "The file was written; commit it by hand (git add/commit) or fix git and rerun."


def _git(root: Path, *args: str) -> str:
    return git.text(root, *args, fix=_AFTER_WRITE)


def command_words(action: str) -> str:
    """The command that made a proposal: ``app-auth-rotate`` was ``app-auth rotate``."""
    for prefix in ("app-auth-", "client-"):
        if action.startswith(prefix):
            return f"{prefix[:-1]} {action[len(prefix) :]}"
    return action


def branch_name(target: Target, proposal: Proposal) -> str:
    return f"keyops/{target.stack}-{target.client}-{proposal.action}-{proposal.subject}"


def commit_message(target: Target, proposal: Proposal) -> str:
    verb = proposal.action.replace("-", " ")
    title = f"chore(credentials): {verb} {target.stack}/{target.client} {proposal.subject}"
    body = "\n".join(f"- {line}" for line in proposal.changes)
    return f"{title}\n\n{body}\n\nWhy: {proposal.why}\n"


def check_summary(target: Target, base: str) -> str | None:
    """``keyops check --format markdown`` against the commit before the change, if it exists."""
    if importlib.util.find_spec("keyops.cli.commands.check") is None:
        return None
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "keyops",
            "-C",
            str(target.root),
            "check",
            "--base",
            base,
            "--now",
            target.today.isoformat(),
            "--format",
            "markdown",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode not in (0, 1) or not proc.stdout.strip():
        first = (proc.stderr.strip().splitlines() or ["no output"])[0]
        return f"_keyops check did not produce a summary: {first}_"
    return proc.stdout.strip()


def body(target: Target, proposal: Proposal, summary: str | None) -> str:
    parts = [
        "## What changes",
        f"`{target.relpath}` ({target.stack}/{target.client}):",
        *(f"- {line}" for line in proposal.changes),
        "",
        "## Why",
        proposal.why,
        "",
        # keyops check's markdown brings its own "## keyops check" heading.
        summary
        if summary and summary.startswith("#")
        else "## keyops check\n" + (summary or "_keyops check is not available; CI runs it._"),
        "",
        "## Reviewers must verify",
        *(f"- [ ] {line}" for line in proposal.verify),
        "- [ ] no secret or ciphertext appears in this description or its comments",
        "",
        "## Next step",
        proposal.next_step,
        "",
        f"_Made with `keyops {command_words(proposal.action)} --pr`._",
    ]
    return "\n".join(parts) + "\n"


def default_branch(root: Path) -> tuple[str, str] | None:
    """The branch pull requests normally target, and the ref to compare with: origin's HEAD,
    else a local main or master."""
    remote = git.try_text(root, "symbolic-ref", "--quiet", "--short", "refs/remotes/origin/HEAD")
    if remote:
        return remote.removeprefix("origin/"), remote
    for name in ("main", "master"):
        if git.try_text(root, "rev-parse", "--verify", "--quiet", f"refs/heads/{name}"):
            return name, name
    return None


def unmerged_base(root: Path, base_branch: str) -> str | None:
    """The default branch, when ``base_branch`` is another branch not merged into it yet."""
    found = default_branch(root)
    if found is None or base_branch in (found[0], "HEAD"):
        return None
    name, ref = found
    merged = git.try_text(root, "merge-base", "--is-ancestor", base_branch, ref)
    return None if merged is not None else name


def _gh_ready() -> bool:
    if shutil.which("gh") is None:
        return False
    proc = subprocess.run(["gh", "auth", "status"], capture_output=True, check=False)
    return proc.returncode == 0


def open_pull_request(target: Target, proposal: Proposal) -> None:
    root = target.root
    base_branch = _git(root, "rev-parse", "--abbrev-ref", "HEAD")
    base_sha = _git(root, "rev-parse", "HEAD")
    branch = branch_name(target, proposal)
    if git.try_text(root, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}"):
        raise RepositoryError(
            f"branch {branch} already exists; {target.relpath} was written but not committed",
            f"Delete or rename that branch, then commit by hand (git switch -c {branch}).",
        )
    _git(root, "switch", "--quiet", "-c", branch)
    title, _, _ = commit_message(target, proposal).partition("\n")
    _git(root, "add", "--", target.relpath)
    _git(root, "commit", "--quiet", "-m", commit_message(target, proposal), "--", target.relpath)
    # The body's keyops check compares against the base the pull request targets, named as
    # such: on a branch that is not merged yet, that branch (a stacked pull request).
    base_ref = base_branch if base_branch != "HEAD" else base_sha
    text = body(target, proposal, check_summary(target, base_ref))
    git_dir = Path(_git(root, "rev-parse", "--absolute-git-dir"))
    body_file = git_dir / "keyops" / f"pr-{branch.replace('/', '-')}.md"
    make_dirs(body_file.parent)
    write_atomic(body_file, text.encode())
    print(f"committed on branch {branch}: {title}")
    stacked_on = unmerged_base(root, base_branch)
    if stacked_on is not None:
        print(
            f"note: this pull request is stacked on {base_branch}, which is not merged into "
            f"{stacked_on} yet: its keyops check compares against {base_branch}. Merge that one "
            "first (one step per pull request)."
        )
    create = [
        "gh",
        "pr",
        "create",
        "--base",
        base_branch,
        "--head",
        branch,
        "--title",
        title,
        "--body-file",
        str(body_file),
    ]
    if _gh_ready():
        _git(root, "push", "--quiet", "-u", "origin", branch)
        proc = subprocess.run(create, cwd=root, capture_output=True, text=True, check=False)
        if proc.returncode == 0:
            print(f"opened pull request: {proc.stdout.strip()}")
            return
        print(f"gh pr create failed: {proc.stderr.strip()[:300]}", file=sys.stderr)
    print("\n--- pull request body ---")
    print(text.rstrip())
    print("--- end ---\n")
    print("gh is not available or not authenticated; open the pull request with:")
    print(f"  git push -u origin {branch}")
    print("  " + shlex.join(create))
