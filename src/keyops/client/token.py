"""The request token of protocol v1 (docs/protocol.md), one per request.

Every request gets a fresh P-256 key pair. Its public half travels in the token as ``epk``; the
server encrypts its answer to it, and the private half never leaves this process. A recorded
request replayed by someone else therefore yields an answer nobody else can open.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey, OctKey

from keyops.client.config import ID_RE, ClientConfig
from keyops.core import patterns
from keyops.core.errors import UsageError

INSTALL_ID_RE = patterns.INSTALL_ID
# Semantic Versioning 2.0.0, the grammar the server compares app versions with. Digits are
# [0-9]: "\d" also matches every other script's digits (ARABIC-INDIC DIGIT FIVE, say).
_NUMBER = r"(?:0|[1-9][0-9]*)"
_PRE = r"(?:0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*)"
SEMVER_RE = re.compile(
    rf"\A{_NUMBER}\.{_NUMBER}\.{_NUMBER}"
    rf"(?:-{_PRE}(?:\.{_PRE})*)?"
    r"(?:\+[0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*)?\Z"
)


@dataclass(frozen=True)
class Identity:
    """What the app says about itself in every token."""

    app_version: str
    install_id: str
    #: The credential id the app holds now (adoption telemetry), if any.
    held: str | None = None

    def __post_init__(self) -> None:
        if not SEMVER_RE.fullmatch(self.app_version):
            raise UsageError(
                f"app version {self.app_version!r} is not a semantic version",
                "Use MAJOR.MINOR.PATCH, e.g. 5.2.0.",
            )
        if not INSTALL_ID_RE.fullmatch(self.install_id):
            raise UsageError(
                "the install id must be 8-64 characters of A-Z a-z 0-9 _ -",
                "Generate it once per install, e.g. a random UUID without braces.",
            )
        if self.held is not None and not ID_RE.fullmatch(self.held):
            raise UsageError(f"held credential id {self.held!r} is not a credential id", "")


@dataclass(frozen=True)
class SignedRequest:
    token: str = field(repr=False)
    #: The private half of ``epk``: the only key that opens the answer to this request.
    ephemeral: ECKey = field(repr=False)
    jti: str


def new_install_id() -> str:
    """A fresh install id (22 characters of base64url), to be stored once per install."""
    return secrets.token_urlsafe(16)


def build(config: ClientConfig, identity: Identity, now: float) -> SignedRequest:
    """A signed token for one request, issued at ``now`` (seconds since the epoch)."""
    ephemeral = ECKey.generate_key("P-256", private=True)
    public = ephemeral.as_dict(private=False)
    jti = secrets.token_urlsafe(16)
    claims: dict[str, Any] = {
        "sub": config.client,
        "aud": config.stack,
        "iat": int(now),
        "jti": jti,
        "app_version": identity.app_version,
        "install_id": identity.install_id,
        "epk": {"kty": "EC", "crv": "P-256", "x": public["x"], "y": public["y"]},
    }
    if identity.held is not None:
        claims["held"] = identity.held
    header = {"alg": "HS256", "kid": config.kid, "typ": "JWT"}
    # The config holds the decoded key bytes: joserfc would take a str as raw bytes instead.
    key = OctKey.import_key(config.secret)
    token = jwt.encode(header, claims, key, algorithms=["HS256"])
    return SignedRequest(token=token, ephemeral=ephemeral, jti=jti)
