"""The layout ``keyops init`` writes: a credentials repository of its own, from package data.

The templates live in ``keyops/templates/init/`` and ship in the wheel. A path component named
``dot-X`` becomes ``.X`` (so no template is a hidden file), and a ``.tmpl`` suffix is dropped (so
the Python files of the layout are not modules of keyops). Three placeholders are filled in:
``@@APPROVERS@@`` (policies/keyops.yaml), ``@@CODEOWNERS@@`` (.github/CODEOWNERS) and
``@@REQUIREMENT@@`` / ``@@VERSION@@`` (requirements.txt).

What the new repository installs is pinned to the keyops that wrote it (:func:`requirement`):
the git URL and commit it was installed from, or the exact release from a package index. An
install from a local directory has no address the team's CI can reach; the release number is
written then, with a note to point it at wherever the team installs keyops from.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import metadata, resources
from importlib.resources.abc import Traversable

from keyops import __version__
from keyops.core.errors import UsageError

TEMPLATES = ("templates", "init")
#: What CI and the Pulumi program need of keyops (the Pulumi SDK and the AWS provider).
EXTRA = "deploy"
#: A GitHub login: what ``--approver`` takes (review authors, not teams).
LOGIN_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}$")
#: The paths CODEOWNERS gives to the approvers.
CODEOWNED = ("/credentials/", "/policies/", "/.sops.yaml", "/.github/", "/requirements.txt")


@dataclass(frozen=True)
class Pin:
    """The requirement line for keyops, and a note when it needs the user's attention."""

    line: str
    note: str | None = None


def requirement(distribution: str = "keyops") -> Pin:
    """The keyops this process runs, as a pip requirement others can install (PEP 610)."""
    try:
        dist = metadata.distribution(distribution)
    except metadata.PackageNotFoundError:
        return Pin(f"keyops[{EXTRA}]=={__version__}", "keyops is not installed as a package here")
    version = dist.version
    raw = dist.read_text("direct_url.json")
    data = None
    if raw:
        try:
            data = json.loads(raw)
        except ValueError:
            data = None
    if not isinstance(data, dict) or not isinstance(data.get("url"), str):
        return Pin(f"keyops[{EXTRA}]=={version}")
    url: str = data["url"]
    vcs = data.get("vcs_info")
    if isinstance(vcs, dict) and isinstance(vcs.get("commit_id"), str) and "://" in url:
        return Pin(f"keyops[{EXTRA}] @ {vcs.get('vcs', 'git')}+{url}@{vcs['commit_id']}")
    if url.startswith(("https://", "http://")):
        return Pin(f"keyops[{EXTRA}] @ {url}")
    return Pin(
        f"keyops[{EXTRA}]=={version}",
        f"this keyops was installed from a local path ({url}), which CI cannot reach; "
        "requirements.txt names release "
        f"{version}: point it at where your team installs keyops from (a package index, or "
        "keyops[deploy] @ git+https://…@COMMIT)",
    )


def check_logins(logins: list[str]) -> list[str]:
    for login in logins:
        if not LOGIN_RE.fullmatch(login):
            raise UsageError(
                f"--approver {login!r} is not a GitHub login",
                "Give the login of a person (letters, digits and single hyphens), without '@'.",
            )
    return list(dict.fromkeys(logins))


def _target(parts: list[str]) -> str:
    out = [("." + p[4:]) if p.startswith("dot-") else p for p in parts]
    if out[-1].endswith(".tmpl"):
        out[-1] = out[-1][: -len(".tmpl")]
    return "/".join(out)


def _walk(node: Traversable, parts: list[str]) -> list[tuple[str, Traversable]]:
    found: list[tuple[str, Traversable]] = []
    for child in sorted(node.iterdir(), key=lambda c: c.name):
        if child.name == "__pycache__":
            continue
        if child.is_dir():
            found += _walk(child, [*parts, child.name])
        else:
            found.append((_target([*parts, child.name]), child))
    return found


def template_files() -> list[tuple[str, Traversable]]:
    """(path in the new repository, template) for every file of the layout."""
    root = resources.files("keyops").joinpath(*TEMPLATES)
    return sorted(_walk(root, []), key=lambda item: item[0])


def render(approvers: list[str], pin: Pin) -> dict[str, bytes]:
    """Every file of the layout, by its path in the new repository."""
    approver_lines = (
        "approvers:\n" + "".join(f"  - {login}\n" for login in approvers)
        if approvers
        else "# No approver yet: list GitHub logins here (keyops init --approver LOGIN).\n"
        "approvers: []\n"
    )
    owners = " ".join(f"@{login}" for login in approvers)
    codeowners = (
        "".join(f"{path:<18} {owners}\n" for path in CODEOWNED)
        if approvers
        else "# No owner yet: add lines such as  /credentials/  @your-org/security\n"
    )
    values = {
        "@@APPROVERS@@\n": approver_lines,
        "@@CODEOWNERS@@\n": codeowners,
        "@@REQUIREMENT@@": pin.line,
        "@@VERSION@@": __version__,
    }
    files: dict[str, bytes] = {}
    for path, template in template_files():
        text = template.read_text(encoding="utf-8")
        for token, value in values.items():
            text = text.replace(token, value)
        files[path] = text.encode("utf-8")
    return files
