"""Pusher channel authorization signatures from the keyops keyring.

A private or presence channel subscription is authorized with
``"<key>:" + hex(HMAC-SHA256(secret, "<socket_id>:<channel>[:<channel_data>]"))``, where the
secret belongs to *the key the client connected with*. During a rotation that may be any live
key, which is why the auth server looks the secret up in the keyring instead of holding one.
HMAC comes from the standard library; nothing here implements cryptography.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from typing import Any

from keyops.core.errors import InputError

# Pusher's own formats: socket ids are "<digits>.<digits>"; channel names are at most 200
# characters of this alphabet (the official libraries refuse anything else the same way).
SOCKET_ID = re.compile(r"\A\d+\.\d+\Z")
CHANNEL = re.compile(r"\A[-a-zA-Z0-9_=@,.;]{1,200}\Z")
AUTH_PREFIXES = ("private-", "presence-")


def sign_channel(
    keyring: Mapping[str, Any],
    socket_id: str,
    channel: str,
    connecting_key: str,
    channel_data: str | None = None,
) -> str:
    """The ``auth`` value for a subscription: ``"<key>:<hex hmac-sha256>"``.

    ``keyring`` is :func:`keyops.build.keyring.build_keyring`'s result (or its ``keys`` mapping).
    ``channel_data`` is the exact JSON string sent to the client (presence channels).
    """
    if not SOCKET_ID.match(socket_id):
        raise InputError(
            f"invalid socket id {socket_id!r}", 'Pusher socket ids look like "123.456".'
        )
    if not CHANNEL.match(channel):
        raise InputError(f"invalid channel name {channel!r}", "Use Pusher's channel name alphabet.")
    if not channel.startswith(AUTH_PREFIXES):
        raise InputError(
            f"channel {channel!r} needs no authorization",
            "Only private- and presence- channels do.",
        )
    if channel.startswith("presence-") and channel_data is None:
        raise InputError("presence channels need channel_data", "Pass the user's JSON data.")
    keys = keyring.get("keys", keyring)
    entry = keys.get(connecting_key) if isinstance(keys, Mapping) else None
    if not isinstance(entry, Mapping) or not isinstance(entry.get("secret"), str):
        # The key itself is public, but say nothing more: the caller answers the client 403.
        raise InputError(
            "the connecting key is not in the keyring (unknown, retired or revoked)",
            "Refuse the subscription (HTTP 403); redeploy the keyring if the key is new.",
        )
    message = f"{socket_id}:{channel}"
    if channel_data is not None:
        message += f":{channel_data}"
    digest = hmac.new(entry["secret"].encode(), message.encode(), hashlib.sha256).hexdigest()
    return f"{connecting_key}:{digest}"
