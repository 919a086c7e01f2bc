"""base64url as JOSE and the credential files use it: unpadded, strict alphabet.

Shared by the bundle (app-auth keys it verifies with) and the reference client (its request
key and JOSE headers), so both sides decode a secret the same way. Deliberately free of other
keyops imports: the client must stay portable.
"""

from __future__ import annotations

import base64
import binascii
import re

_ALPHABET = re.compile(r"[A-Za-z0-9_-]*={0,2}")
#: Characters of unpadded base64url (ASCII only: ``\w`` would admit other scripts).
_UNPADDED = re.compile(r"[A-Za-z0-9_-]*")


def encode(data: bytes) -> str:
    """Unpadded base64url, as JOSE and the credential files write it."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def decode(text: str) -> bytes:
    """Decode base64url with or without padding; raise ValueError on anything else."""
    if not _ALPHABET.fullmatch(text):
        raise ValueError("not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not base64url") from exc


def decode_unpadded(text: str) -> bytes:
    """Strict unpadded base64url (a JOSE segment); anything else is a ValueError."""
    if len(text) % 4 == 1 or not _UNPADDED.fullmatch(text):
        raise ValueError("not unpadded base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error as exc:
        raise ValueError("not unpadded base64url") from exc
