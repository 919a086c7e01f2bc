"""The stack's ES256 signing keys: private keys for building bundles, public JWKS for pinning.

Keys in state ``next`` and ``active`` are published (apps pin ``next`` before it signs, so a
signing-key rotation never strands an installed app); ``retired`` keys are not.
"""

from __future__ import annotations

import json
from typing import Any

from joserfc.jwk import ECKey

from keyops.core.errors import KeyopsError
from keyops.core.model import SigningKey, StackFile

PUBLISHED_STATES = ("active", "next")


def _import(key: SigningKey, stack: str) -> ECKey:
    if key.private_jwk is None:
        raise KeyopsError(
            f"the signing key {key.kid!r} of stack {stack!r} is not decrypted",
            "Load the stack with decryption (a key for its sops recipients is needed).",
        )
    data = json.loads(key.private_jwk)
    data["kid"] = key.kid
    imported = ECKey.import_key(data)
    return imported


def active_key(stack_file: StackFile) -> ECKey:
    """The private key that signs this stack's payloads."""
    active = [k for k in stack_file.signing_keys if k.state == "active"]
    if len(active) != 1:
        raise KeyopsError(
            f"stack {stack_file.stack!r} has {len(active)} active signing keys, needs exactly one",
            f"Fix {stack_file.path} (run keyops validate).",
        )
    return _import(active[0], stack_file.stack)


def public_jwks(stack_file: StackFile) -> dict[str, Any]:
    """The JWKS apps pin: public parts of the ``active`` and ``next`` signing keys."""
    keys = []
    for key in stack_file.signing_keys:
        if key.state in PUBLISHED_STATES:
            public = _import(key, stack_file.stack).as_dict(private=False)
            public.update({"kid": key.kid, "use": "sig", "alg": "ES256"})
            keys.append(public)
    return {"keys": keys}
