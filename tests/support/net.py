"""Loopback ports for tests: every server a test starts listens on 127.0.0.1 only."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def closed_url() -> str:
    """A loopback URL nothing listens on: connections are refused at once."""
    return f"http://127.0.0.1:{free_port()}"


def free_udp_port() -> int:
    """A UDP port on 127.0.0.1 that nothing is bound to right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def port_is_free(port: int) -> bool:
    """Nothing listens on 127.0.0.1:port. A bind test without SO_REUSEPORT: a server that
    listens with it (uWebSockets does) would otherwise share the port silently. SO_REUSEADDR
    lets the probe pass connections still in TIME_WAIT, which a new server may bind over."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def bound_addresses(pid: int) -> set[tuple[str, str, int]]:
    """(protocol, address, port) of every TCP and UDP socket process ``pid`` has bound.

    Read from /proc (Linux): the process's socket inodes, looked up in /proc/net/{tcp,udp}[6].
    Only bound sockets count (port != 0); IPv4 addresses come back dotted, IPv6 as hex.
    """
    inodes = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in fd_dir.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found: set[tuple[str, str, int]] = set()
    for proto in ("tcp", "tcp6", "udp", "udp6"):
        table = Path(f"/proc/{pid}/net/{proto}")
        for line in table.read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] not in inodes:
                continue
            address, port = fields[1].split(":")
            if int(port, 16) == 0:
                continue
            if len(address) == 8:  # IPv4, little-endian hex
                address = ".".join(str(b) for b in reversed(bytes.fromhex(address)))
            found.add((proto, address, int(port, 16)))
    return found


@contextlib.contextmanager
def http_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """A threading HTTP server on 127.0.0.1 running ``handler``; yields its base URL.

    The server and its connection threads are daemons and the server is shut down on exit, so
    nothing outlives the ``with`` block even when a client left a connection hanging.
    """
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
