"""A Pusher channel-authorization endpoint built on keyops, for private- and presence- channels.

Pusher lets a client join a private or presence channel only with a signature made with the
secret of *the key that client connected with*. During a rotation apps connect with the pending,
the active and the retiring key at once, so one secret is not enough: this server signs from the
keyring that ``keyops export --stack S --auth-keyring --out keyring.json`` writes (every live
key, mode 0600), with ``keyops.pusher.channel_auth.sign_channel``. It re-reads the keyring when
the file changes, so a redeployed keyring takes effect without a restart.

Run it (standard library only, besides keyops)::

    python examples/auth_server.py --keyring keyring.json --host 127.0.0.1 --port 8080

and point pusher-js at it, passing the key the client connected with::

    new Pusher(key, {
      cluster,
      channelAuthorization: {
        endpoint: "https://your.app/pusher/auth",
        params: { pusher_key: key },
      },
    });

``POST /pusher/auth`` takes pusher-js's form (``socket_id``, ``channel_name``) plus ``pusher_key``
and answers ``{"auth": ...}`` (presence: with ``channel_data``), ``403`` for a key not in the
keyring (unknown, retired or revoked: that client must refetch its key), ``400`` for a malformed
request. Trusting the client's word for ``pusher_key`` is safe: a signature made for another key
than the one the socket connected with is refused by Pusher.

Two things are yours to write before production (both marked ``YOUR APP``): who the user is
(from your session, never from the request), and whether that user may join that channel. For a
demonstration, ``--demo-user-header`` takes the user id from an ``X-Demo-User`` header; without it,
presence channels are refused. Serve it behind HTTPS. It never logs a secret or a request body.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from keyops.core.errors import InputError
from keyops.pusher.channel_auth import sign_channel

MAX_BODY = 4096
USER_ID = re.compile(r"\A[A-Za-z0-9_.@-]{1,64}\Z")


class Keyring:
    """The keyring file, re-read whenever its size or modification time changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._seen: tuple[int, int] | None = None
        self._keys: dict[str, Any] = {}
        self.keys()  # refuse to start without a usable keyring

    def keys(self) -> dict[str, Any]:
        with self._lock:
            stat = os.stat(self.path)
            seen = (stat.st_mtime_ns, stat.st_size)
            if seen != self._seen:
                document = json.loads(self.path.read_text())
                keys = document.get("keys") if isinstance(document, dict) else None
                if not isinstance(keys, dict):
                    raise ValueError(f"{self.path} is not a keyops keyring (no keys object)")
                self._keys, self._seen = keys, seen
            return self._keys


def may_join(user_id: str | None, channel: str) -> bool:
    """YOUR APP: may this user join this channel? The example lets anyone in."""
    return True


def make_handler(keyring: Keyring, demo_user_header: bool) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "keyops-auth-example"

        def current_user(self) -> str | None:
            """YOUR APP: the signed-in user from your session. The demo trusts a header."""
            if not demo_user_header:
                return None
            user = self.headers.get("X-Demo-User", "")
            return user if USER_ID.match(user) else None

        def answer(self, status: int, payload: dict[str, str]) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            if self.path != "/pusher/auth":
                return self.answer(404, {"error": "not found"})
            try:
                length = int(self.headers.get("Content-Length", "0"))
            except ValueError:
                length = -1
            if not 0 < length <= MAX_BODY:
                return self.answer(400, {"error": f"send a form body of 1 to {MAX_BODY} bytes"})
            try:
                form = parse_qs(self.rfile.read(length).decode(), strict_parsing=True)
            except (UnicodeDecodeError, ValueError):
                return self.answer(400, {"error": "the body is not a form"})
            fields = {name: values[0] for name, values in form.items() if len(values) == 1}
            socket_id = fields.get("socket_id", "")
            channel = fields.get("channel_name", "")
            key = fields.get("pusher_key", "")
            try:
                keys = keyring.keys()
            except (OSError, ValueError):
                return self.answer(503, {"error": "the keyring is unavailable"})
            if key not in keys:
                # Retired, revoked or unknown: the client must refetch its key (keyops fetch).
                return self.answer(403, {"error": "this key is not live; refetch the key"})
            user = self.current_user()
            if not may_join(user, channel):
                return self.answer(403, {"error": "not allowed on this channel"})
            channel_data = None
            if channel.startswith("presence-"):
                if user is None:
                    return self.answer(403, {"error": "presence channels need a signed-in user"})
                channel_data = json.dumps(
                    {"user_id": user, "user_info": {"name": user}}, separators=(",", ":")
                )
            try:
                auth = sign_channel(keys, socket_id, channel, key, channel_data)
            except InputError as exc:
                return self.answer(400, {"error": exc.what})
            payload = {"auth": auth}
            if channel_data is not None:
                payload["channel_data"] = channel_data
            return self.answer(200, payload)

        def log_message(self, format: str, *args: Any) -> None:
            # The request line and status only: no header, no body.
            sys.stderr.write(f"{self.address_string()} {format % args}\n")

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--keyring", type=Path, required=True, help="keyops export --auth-keyring")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument(
        "--demo-user-header",
        action="store_true",
        help="DEMO ONLY: take the user id from the X-Demo-User header",
    )
    args = parser.parse_args(argv)
    try:
        keyring = Keyring(args.keyring)
    except (OSError, ValueError) as exc:
        print(f"error: cannot use the keyring: {exc}", file=sys.stderr)
        return 2
    server = ThreadingHTTPServer(
        (args.host, args.port), make_handler(keyring, args.demo_user_header)
    )
    print(f"auth server on http://{args.host}:{server.server_address[1]}/pusher/auth", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
