"""Shared helpers for the validate/status acceptance tests (no tests here).

Every run goes through :func:`run`, which asserts the two promises that hold for *any* keyops
invocation: no traceback ever reaches the user, and no secret of the sample repository ever
appears in stdout or stderr.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from typing import Any

from keyops.store.sops import Sops
from support.repo import KeyRepo

SAMPLE_FILES = ("_stack", "android", "ios", "server", "web")
SECRET_FIELDS = frozenset({"key", "secret", "encryption_master_key", "private_jwk"})
RULE_DEV = "creation rule #1 (path_regex '^credentials/dev/[^/]+\\\\.yaml$')"

# The template is built once per process, so every repository of a process holds the same
# secrets: decrypt them once per recipient.
_secrets_cache: dict[str, frozenset[str]] = {}


def _leaves(node: Any) -> list[tuple[str, Any]]:
    if isinstance(node, dict):
        out: list[tuple[str, Any]] = []
        for key, value in node.items():
            if isinstance(value, (dict, list)):
                out.extend(_leaves(value))
            else:
                out.append((str(key), value))
        return out
    if isinstance(node, list):
        return [leaf for item in node for leaf in _leaves(item)]
    return []


def sample_secrets(repo: KeyRepo) -> frozenset[str]:
    """Every secret value of the sample stack, plus distinctive pieces of the JWKs."""
    if repo.recipient not in _secrets_cache:
        found: set[str] = set()
        # From the first commit: the test may already have tampered with the working tree.
        first = repo.git("rev-list", "--max-parents=0", "HEAD")
        # Run sops outside the repository: the test may have broken its .sops.yaml, which sops
        # reads even to decrypt, and this must not depend on which test ran first.
        sops = Sops(repo.home, env=repo.env())
        for name in SAMPLE_FILES:
            rel = f"credentials/dev/{name}.yaml"
            blob = repo.git("show", f"{first}:{rel}").encode() + b"\n"
            document = json.loads(sops.decrypt_bytes(blob, rel))
            for key, value in _leaves(document):
                if key in SECRET_FIELDS and isinstance(value, str):
                    found.add(value)
                    # the private scalar of a JWK alone must not leak either
                    found.update(re.findall(r'"d":"([^"]+)"', value))
        _secrets_cache[repo.recipient] = frozenset(found)
    return _secrets_cache[repo.recipient]


def run(repo: KeyRepo, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run the real CLI; fail on a traceback or on any sample secret in the output."""
    proc = repo.run(*args, **kwargs)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stdout, proc.stdout
    for secret in sample_secrets(repo):
        assert secret not in proc.stdout, f"secret value leaked to stdout by {args}"
        assert secret not in proc.stderr, f"secret value leaked to stderr by {args}"
    return proc


def lines(proc: subprocess.CompletedProcess[str]) -> list[str]:
    return proc.stdout.splitlines()


def findings(proc: subprocess.CompletedProcess[str]) -> list[str]:
    """The finding lines of a text report (without the summary line)."""
    return [line for line in lines(proc) if "::" in line]


def rewrite(repo: KeyRepo, rel: str, change: Callable[[dict[str, Any]], None]) -> None:
    """Decrypt a sample file, change the document, encrypt it back with real sops."""
    document = repo.decrypt(rel)
    change(document)
    repo.write_doc(rel, document)


def edit_text(repo: KeyRepo, rel: str, old: str, new: str) -> None:
    """Edit the encrypted file's text by hand, as someone bypassing sops would."""
    path = repo.path(rel)
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} is not unique in {rel}"
    path.write_text(text.replace(old, new))


def enc_value(repo: KeyRepo, rel: str, field: str, nth: int = 0) -> str:
    """The ``ENC[...]`` text of the nth ``field:`` line of an encrypted file."""
    values = re.findall(rf"^\s*(?:- )?{field}: (ENC\[[^\]]*\])$", repo.path(rel).read_text(), re.M)
    return values[nth]


def expect_findings(
    repo: KeyRepo, args: tuple[str, ...], expected: list[str], **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    """Run ``keyops validate ARGS``: exit 1, exactly these finding lines, nothing on stderr."""
    proc = run(repo, "validate", *args, **kwargs)
    assert (proc.returncode, proc.stderr) == (1, ""), proc.stderr
    assert findings(proc) == expected
    return proc
