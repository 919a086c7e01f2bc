"""age X25519 identities and recipients, made and read in-process.

An age identity is 32 random bytes (an X25519 scalar); its recipient is the matching public
key. Both are written as Bech32 (BIP 173, the original checksum, not Bech32m) without the 90
character limit: the identity upper-case with the prefix ``AGE-SECRET-KEY-``, the recipient
lower-case with the prefix ``age``. This is the format of age's specification, which ``age``,
``rage`` and sops read. keyops makes identities here so that no key passes through argv, the
environment, a temporary file or another program; the tests prove that pyrage (rage) and the
real sops binary accept what this module writes.

Reading is for ``keyops doctor`` and ``keyops stack add``: the recipients of the identities in a
key file (never the identities themselves) and the validation of a recipient argument.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from keyops.core.errors import UsageError

IDENTITY_HRP = "age-secret-key-"
RECIPIENT_HRP = "age"
#: The committed TEST-ONLY identity of this project's demo ``dev`` stack. Anyone can read its
#: private half, so ``keyops stack add`` refuses it for every stack but ``dev``.
TEST_ONLY_RECIPIENT = "age1xptlq8ymcsam5wdxrguuaww5nup3m5qw28yrgj7lm98pu8d4s96svmtsp5"

_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


# -- Bech32 (BIP 173) --------------------------------------------------------------------------


def _polymod(values: Iterable[int]) -> int:
    checksum = 1
    for value in values:
        top = checksum >> 25
        checksum = (checksum & 0x1FFFFFF) << 5 ^ value
        for bit, generator in enumerate(_GENERATOR):
            if (top >> bit) & 1:
                checksum ^= generator
    return checksum


def _expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _regroup(data: Sequence[int], source: int, target: int, *, pad: bool) -> list[int] | None:
    """Regroup ``source``-bit values into ``target``-bit values (None when not exact)."""
    accumulator, bits, out = 0, 0, []
    mask = (1 << target) - 1
    for value in data:
        accumulator = (accumulator << source) | value
        bits += source
        while bits >= target:
            bits -= target
            out.append((accumulator >> bits) & mask)
    if pad and bits:
        out.append((accumulator << (target - bits)) & mask)
    elif not pad and (bits >= source or (accumulator << (target - bits)) & mask):
        return None
    return out


def bech32_encode(hrp: str, payload: bytes) -> str:
    words = _regroup(payload, 8, 5, pad=True) or []
    check = _polymod([*_expand(hrp), *words, 0, 0, 0, 0, 0, 0]) ^ 1
    words += [(check >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_CHARSET[w] for w in words)


def bech32_decode(text: str) -> tuple[str, bytes] | None:
    """``(hrp, payload)`` of a Bech32 string, or None when it is not one (checksum included)."""
    if text.lower() != text and text.upper() != text:
        return None  # mixed case is invalid Bech32
    text = text.lower()
    hrp, sep, rest = text.rpartition("1")
    if not sep or not hrp or len(rest) < 6 or any(not 33 <= ord(c) <= 126 for c in hrp):
        return None
    if any(c not in _CHARSET for c in rest):
        return None
    words = [_CHARSET.index(c) for c in rest]
    if _polymod([*_expand(hrp), *words]) != 1:
        return None
    payload = _regroup(words[:-6], 5, 8, pad=False)
    return None if payload is None else (hrp, bytes(payload))


# -- identities and recipients -----------------------------------------------------------------


@dataclass(frozen=True)
class AgeIdentity:
    """A new identity: the secret line (never printed) and its public recipient."""

    secret: str = field(repr=False)
    recipient: str

    def key_file(self, created: dt.datetime) -> bytes:
        """The text of a key file, in the layout ``age-keygen`` writes."""
        return (
            f"# created: {created.isoformat(timespec='seconds')}\n"
            f"# public key: {self.recipient}\n"
            f"{self.secret}\n"
        ).encode()


def _recipient_of_scalar(scalar: bytes) -> str:
    public = X25519PrivateKey.from_private_bytes(scalar).public_key().public_bytes_raw()
    return bech32_encode(RECIPIENT_HRP, public)


def generate() -> AgeIdentity:
    """A new X25519 identity from the operating system's CSPRNG."""
    scalar = X25519PrivateKey.generate().private_bytes_raw()
    secret = bech32_encode(IDENTITY_HRP, scalar).upper()
    return AgeIdentity(secret=secret, recipient=_recipient_of_scalar(scalar))


def recipient_of(identity: str) -> str | None:
    """The recipient of an ``AGE-SECRET-KEY-1…`` line, or None when it is not a valid one."""
    decoded = bech32_decode(identity.strip())
    if decoded is None or decoded[0] != IDENTITY_HRP or len(decoded[1]) != 32:
        return None
    return _recipient_of_scalar(decoded[1])


def check_recipient(value: str, option: str = "--age") -> str:
    """``value`` when it is an age recipient (X25519 or a plugin's); a UsageError otherwise."""
    decoded = bech32_decode(value)
    valid = (
        decoded is not None
        and value == value.lower()
        and decoded[0].startswith(RECIPIENT_HRP)
        and (decoded[0] != RECIPIENT_HRP or len(decoded[1]) == 32)
    )
    if not valid:
        shown = value if value.startswith("age1") and len(value) < 120 else f"{value[:8]}…"
        hint = (
            "That is an identity (the private half): pass its recipient, which keyops keygen "
            "printed (age1…)."
            if value.upper().startswith("AGE-SECRET-KEY-")
            else "An age recipient is the age1… line that keyops keygen (or age-keygen) printed."
        )
        if value.upper().startswith("AGE-SECRET-KEY-"):
            shown = "AGE-SECRET-KEY-…"
        raise UsageError(f"{option} {shown} is not a valid age recipient", hint)
    return value


@dataclass(frozen=True)
class KeyFileScan:
    """What a key file (or ``SOPS_AGE_KEY``) holds, without the secrets themselves."""

    recipients: tuple[str, ...]
    #: ``AGE-PLUGIN-…`` identities: usable by sops with the plugin, recipient unknown here.
    plugins: int = 0
    #: Lines that are neither a comment, an identity nor blank.
    unreadable: int = 0

    @property
    def count(self) -> int:
        return len(self.recipients) + self.plugins


def scan_identities(text: str) -> KeyFileScan:
    """The recipients of every identity in an age key file's text."""
    recipients: list[str] = []
    plugins = unreadable = 0
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("AGE-PLUGIN-"):
            plugins += 1
            continue
        recipient = recipient_of(line)
        if recipient is None:
            unreadable += 1
        else:
            recipients.append(recipient)
    return KeyFileScan(tuple(recipients), plugins, unreadable)
