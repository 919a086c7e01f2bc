"""The whole exception tree of keyops, in one place.

Every error a user can cause or meet is a :class:`KeyopsError`. The CLI prints it as
``error: <what>. <fix>`` and exits with its ``exit_code``; nothing else reaches the terminal as a
traceback. Foreign exceptions (subprocess, OS, YAML, JSON Schema, HTTP, JOSE) are mapped to this
tree by the module that talks to them, never further up. No other module declares an exception.

    KeyopsError                    exit 2 unless stated
    ├── UsageError                 bad arguments or options
    │   ├── LifecycleError         a move that cannot be expressed (unknown id, ambiguous target)
    │   └── MissingExtra           a command whose optional dependencies are not installed
    ├── InputError                 a file or directory the user named is missing or unreadable
    │   ├── WriteError             a file could not be written (the old one is unchanged)
    │   └── ClientConfigError      the app's bootstrap config is unusable
    ├── RepositoryError            not a keyops repository, no .sops.yaml, unknown stack
    │   └── GitError               a git command failed
    ├── SopsError                  the sops boundary
    │   ├── SopsNotFound           the sops binary is missing
    │   ├── SopsVersionError       the sops binary is not the pinned version
    │   ├── SopsTimeout            sops did not answer in time
    │   ├── NoDecryptionKey        no key here can decrypt (sops exit 128)
    │   └── SopsFileError          exit 1: the file itself is bad (MAC, not encrypted…)
    ├── PolicyRefused              exit 1: a change or a build the policy engine refuses
    │   └── Refused                exit 1: the same, listing each finding on its own line
    ├── BundleError                a bundle that cannot be used: missing, tampered, malformed
    │   └── BundleExpired          a bundle whose exp has passed
    ├── ServiceError               the endpoint's HTTP errors (status + problem code)
    ├── GitHubError                the GitHub API refused or failed a request
    ├── AwsError                   an AWS API refused or failed a request (keyops adoption)
    ├── DeployConfigError          Pulumi stack settings missing or invalid
    ├── AssetError                 the Lambda asset could not be built
    ├── VerifyError                exit 1: an endpoint answer the client must not use
    ├── PusherUnreachable          no Pusher-protocol server answered any call of keyops verify
    ├── CacheError                 the client's cache could not be written
    ├── NothingUsable              exit 1: no endpoint, cache or bundled key gave a usable key
    └── Interrupted                exit 130: Ctrl-C after a file was replaced

    Internal signals (caught inside keyops, never shown as such):
    ├── YamlRejected               strict YAML refused a document (its problems become findings)
    └── TransportError             no HTTP answer from an endpoint (the client tries the next)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keyops.core.findings import Finding

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_ERROR = 2
#: A bug in keyops: the last-resort handler's exit code.
EXIT_UNEXPECTED = 3
EXIT_INTERRUPTED = 130


class KeyopsError(Exception):
    """Base of every error keyops reports to a user."""

    exit_code: int = EXIT_ERROR

    def __init__(self, what: str, fix: str = "") -> None:
        super().__init__(what)
        self.what = what.rstrip(".")
        self.fix = fix

    def render(self) -> str:
        text = f"error: {self.what}."
        if self.fix:
            text += f" {self.fix}"
        return text

    def __str__(self) -> str:
        return self.render()


class UsageError(KeyopsError):
    pass


class LifecycleError(UsageError):
    """The move cannot even be expressed on this document (unknown id, ambiguous target)."""


class MissingExtra(UsageError):
    """A command needs optional dependencies that are not installed."""

    def __init__(self, command: str, extra: str, module: str) -> None:
        super().__init__(
            f"'keyops {command}' needs the {extra!r} extra ({module.split('.')[0]} is not "
            "installed)",
            f"Install it: pip install 'keyops[{extra}]'.",
        )
        self.extra = extra


class InputError(KeyopsError):
    pass


class WriteError(InputError):
    """A file could not be written; ``reason`` is the operating system's word for why."""

    def __init__(self, path: str, reason: str, fix: str) -> None:
        super().__init__(f"cannot write {path}: {reason}", fix)
        self.path = path
        self.reason = reason


class ClientConfigError(InputError):
    """The bootstrap configuration an app build carries is unusable (exit 2)."""

    FIX = "Regenerate it with 'keyops client-config --stack S --client C --out FILE'."

    def __init__(self, where: str, problem: str, fix: str = FIX) -> None:
        super().__init__(f"client config {where}: {problem}", fix)


class RepositoryError(KeyopsError):
    pass


class GitError(RepositoryError):
    """``git <command>`` failed; ``what`` names the command and git's first line of error."""

    def __init__(self, command: str, message: str, fix: str) -> None:
        super().__init__(f"git {command} failed: {message}", fix)
        self.command = command


class SopsError(KeyopsError):
    pass


class SopsNotFound(SopsError):
    pass


class SopsVersionError(SopsError):
    pass


class SopsTimeout(SopsError):
    pass


class NoDecryptionKey(SopsError):
    """No key here decrypts a file (sops exit 128): who can, what was found, what to do.

    Rendered as a few short lines: the error, then each detail on its own indented line.
    """

    def __init__(self, what: str, details: Sequence[str] = ()) -> None:
        super().__init__(what)
        self.details = list(details)

    def hint(self, line: str) -> NoDecryptionKey:
        """The same error with one more line (a command adds what only it offers)."""
        return NoDecryptionKey(self.what, [*self.details, line])

    def render(self) -> str:
        return "\n".join([f"error: {self.what}.", *(f"  {d}" for d in self.details)])


class SopsFileError(SopsError):
    """A problem with one file's encryption: reported as a finding, not a crash.

    ``kind`` is a stable short name (``mac-mismatch``, ``not-encrypted``, ``decrypt-failed``,
    ``already-encrypted``, ``no-creation-rule``, ``invalid``) so callers can branch without
    parsing text.
    """

    exit_code = EXIT_FINDINGS

    def __init__(self, kind: str, what: str, fix: str = "") -> None:
        super().__init__(what, fix)
        self.kind = kind


class PolicyRefused(KeyopsError):
    exit_code = EXIT_FINDINGS


class Refused(PolicyRefused):
    """A refusal with its findings: the one-line error, then each finding on its own line."""

    def __init__(self, what: str, fix: str, findings: Sequence[Finding]) -> None:
        super().__init__(what, fix)
        self.findings = list(findings)

    def render(self) -> str:
        lines = [f"  {f.render()}" for f in self.findings]
        return "\n".join([super().render(), *lines])


class BundleError(KeyopsError):
    """A bundle that cannot be used: missing, unreadable, tampered or malformed (exit 2)."""


class BundleExpired(BundleError):
    """A bundle whose ``exp`` has passed: rebuild it."""


class ServiceError(KeyopsError):
    """An HTTP error of the key-serving endpoint (status + problem code, docs/protocol.md)."""

    def __init__(self, status: int, code: str, title: str, retry_after: int | None = None) -> None:
        super().__init__(title)
        self.status = status
        self.code = code
        self.title = title
        #: Seconds for a ``retry-after`` header (503 ``replay-cache-full``), when set.
        self.retry_after = retry_after


class GitHubError(KeyopsError):
    """The GitHub API refused or failed a request (exit 2: an environment problem)."""

    def __init__(self, what: str, fix: str = "", status: int | None = None) -> None:
        super().__init__(what, fix)
        self.status = status


class AwsError(KeyopsError):
    """An AWS API refused or failed a request, or no AWS credentials were found (exit 2)."""


class DeployConfigError(KeyopsError):
    """One or more Pulumi stack settings are missing or invalid."""


class AssetError(KeyopsError):
    """The Lambda asset could not be built."""


class VerifyError(KeyopsError):
    """An answer that must not be used. ``reason`` is a stable short code for logs and tests."""

    exit_code = EXIT_FINDINGS

    def __init__(self, reason: str, what: str) -> None:
        super().__init__(what)
        self.reason = reason


class PusherUnreachable(KeyopsError):
    """``keyops verify`` got no answer for any credential: the network or the URL, not the keys.

    Exit 2, like any environment problem: a verification that verified nothing is no success.
    """


class CacheError(KeyopsError):
    """The client's cache could not be written (the fetch itself still succeeded)."""


class NothingUsable(KeyopsError):
    """Every endpoint failed and there is neither a usable cache nor a bundled key (exit 1).

    ``attempts`` are the client's ``Attempt`` records and ``notes`` what it noticed on the way.
    """

    exit_code = EXIT_FINDINGS

    def __init__(self, attempts: tuple[Any, ...], notes: tuple[str, ...]) -> None:
        super().__init__(
            "no usable Pusher key: every endpoint failed, and there is no cached or bundled key",
            "See the attempts above; check the network and the endpoints' /healthz.",
        )
        self.attempts = attempts
        self.notes = notes


class Interrupted(KeyopsError):
    """Ctrl-C after the file was replaced: the edit is complete, later steps are not."""

    exit_code = EXIT_INTERRUPTED


# -- internal signals: caught inside keyops, never shown to a user as such --------------------


class YamlRejected(Exception):
    """Strict YAML refused a document; ``problems`` are ``yamlload.YamlProblem`` records."""

    def __init__(self, problems: Sequence[Any]) -> None:
        super().__init__("; ".join(str(getattr(p, "message", p)) for p in problems))
        self.problems = list(problems)


class TransportError(Exception):
    """No HTTP answer: the endpoint is down, unreachable or too slow. Worth trying another."""
