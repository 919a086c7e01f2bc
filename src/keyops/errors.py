"""The one exception tree of keyops.

Every error a user can cause or meet is a :class:`KeyopsError`. The CLI prints it as
``error: <what>. <fix>`` and exits with its ``exit_code``; nothing else reaches the terminal as a
traceback. Foreign exceptions (subprocess, OS, YAML, JSON Schema) are mapped to this tree at the
module that talks to them, never further up.

    KeyopsError                  exit 2 unless stated
    ├── UsageError               bad arguments or options
    ├── InputError               a file or directory the user named is missing or unreadable
    ├── RepositoryError          not a keyops repository, no .sops.yaml, unknown stack
    ├── SopsError                the sops boundary
    │   ├── SopsNotFound         the sops binary is missing
    │   ├── SopsVersionError     the sops binary is not the pinned version
    │   ├── SopsTimeout          sops did not answer in time
    │   ├── NoDecryptionKey      exit 128 from sops: no key could decrypt
    │   └── SopsFileError        exit 1 via findings: the file itself is bad (MAC, not encrypted…)
    ├── PolicyRefused            exit 1: a change the policy engine refuses
    └── ServiceError             the endpoint's HTTP errors (status + problem code)
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_ERROR = 2


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


class InputError(KeyopsError):
    pass


class RepositoryError(KeyopsError):
    pass


class SopsError(KeyopsError):
    pass


class SopsNotFound(SopsError):
    pass


class SopsVersionError(SopsError):
    pass


class SopsTimeout(SopsError):
    pass


class NoDecryptionKey(SopsError):
    pass


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


class ServiceError(KeyopsError):
    """An HTTP error of the key-serving endpoint (DESIGN.md section 6)."""

    def __init__(self, status: int, code: str, title: str) -> None:
        super().__init__(title)
        self.status = status
        self.code = code
        self.title = title
