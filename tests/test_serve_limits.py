"""What a client can hold of a real ``keyops serve`` on 127.0.0.1: head size, head time, sockets.

No assertion here is about time: a limit on time is checked by the server closing the connection
(the timeouts only bound how long the test waits for that). Memory is read from /proc.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from keyops.endpoint import server as server_module
from keyops.endpoint.core import Endpoint, Response
from keyops.protocol.bundle import Bundle
from support.endpoint import Server, app_auth, claims, mint, start_server
from support.repo import KeyRepo

#: How long the test waits for the server to close a connection it must close (~10 s).
WAIT = 90.0


def address(server: Server) -> tuple[str, int]:
    host, port = server.url.removeprefix("http://").split(":")
    return host, int(port)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def connect(server: Server) -> socket.socket:
    sock = socket.create_connection(address(server), timeout=WAIT)
    return sock


def exchange(server: Server, request: bytes) -> bytes:
    """Send raw bytes, read until the server closes (every request here ends in a close)."""
    with connect(server) as sock:
        sock.sendall(request)
        data = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                data += chunk
    return data


def closed_by_server(sock: socket.socket, drip: bytes = b"", limit: float = WAIT) -> bool:
    """Whether the server closes ``sock``, sending ``drip`` one byte every 0.2 s meanwhile."""
    deadline = time.monotonic() + limit
    index = 0
    while time.monotonic() < deadline:
        if drip:
            try:
                sock.send(drip[index % len(drip) : index % len(drip) + 1])
            except (BrokenPipeError, ConnectionResetError):
                return True
            index += 1
        readable, _, _ = select.select([sock], [], [], 0.2)
        if readable:
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                return True
            if not data or data.startswith(b"HTTP/1.1 4"):
                return True
    return False


def healthz(server: Server) -> bytes:
    return exchange(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")


@pytest.fixture(scope="module")
def limited(
    served_repo: KeyRepo, bundle_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A server that admits 50 connections."""
    log = tmp_path_factory.mktemp("limited") / "serve.log"
    args = ["--bundle", str(bundle_dir), "--limit-concurrency", "50"]
    running = start_server(served_repo, args, log)
    yield running
    running.stop()


def test_a_head_over_16_kib_is_refused_without_the_process_growing(server: Server) -> None:
    before = rss_kib(server.proc.pid)
    sockets = [connect(server) for _ in range(32)]
    refused = 0
    try:
        for sock in sockets:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
        chunk = b"a" * 65536
        alive = list(sockets)
        for _ in range(64):  # up to 4 MiB per connection, 128 MiB in all
            for sock in list(alive):
                try:
                    sock.sendall(chunk)
                except (BrokenPipeError, ConnectionResetError):
                    alive.remove(sock)
        for sock in sockets:
            if closed_by_server(sock):
                refused += 1
    finally:
        for sock in sockets:
            sock.close()
    grown = rss_kib(server.proc.pid) - before
    assert refused == len(sockets)
    assert grown < 8 * 1024, f"the server grew by {grown} KiB"
    assert healthz(server).startswith(b"HTTP/1.1 200 OK\r\n")


def test_a_head_over_16_kib_is_answered_431(server: Server) -> None:
    answer = exchange(server, b"GET /healthz HTTP/1.1\r\nX-Big: " + b"a" * 17000 + b"\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
    assert b"content-type: application/problem+json\r\n" in answer
    assert b'"code": "headers-too-large"' in answer
    small = exchange(
        server,
        b"GET /healthz HTTP/1.1\r\nConnection: close\r\nX-Big: " + b"a" * 15000 + b"\r\n\r\n",
    )
    assert small.startswith(b"HTTP/1.1 200 OK\r\n")


def test_a_partial_head_is_closed(server: Server) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        assert closed_by_server(sock)


def test_a_head_dripped_byte_by_byte_is_closed(server: Server) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        # An endless header, a byte every 0.2 s: always busy, never complete.
        assert closed_by_server(sock, drip=b"X-Slow: abcdefghijklmnopqrstuvwxyz\r\n")


def test_an_idle_keep_alive_connection_is_closed(server: Server) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 OK\r\n")
        assert closed_by_server(sock)


def open_idle(server: Server, count: int) -> list[socket.socket]:
    idle = []
    for index in range(count):
        sock = connect(server)
        if index % 2:
            sock.sendall(b"GET /healthz HTTP/1.1\r\n")  # half of them mid-head
        idle.append(sock)
    return idle


def test_healthz_answers_while_300_idle_connections_are_open(server: Server) -> None:
    idle = open_idle(server, 300)
    try:
        assert healthz(server).startswith(b"HTTP/1.1 200 OK\r\n")
    finally:
        for sock in idle:
            sock.close()


def test_beyond_the_limit_the_longest_idle_connection_makes_room(limited: Server) -> None:
    idle = open_idle(limited, 300)
    try:
        assert healthz(limited).startswith(b"HTTP/1.1 200 OK\r\n")
        # The server holds at most its limit: the oldest ones were closed to admit the rest.
        still_open = 0
        for sock in idle:
            sock.setblocking(False)
            try:
                still_open += sock.recv(1) != b""
            except BlockingIOError:
                still_open += 1
            except ConnectionResetError:
                pass
        assert still_open <= 50
        assert healthz(limited).startswith(b"HTTP/1.1 200 OK\r\n")
    finally:
        for sock in idle:
            sock.close()


# -- HTTP/1.1 as the endpoint speaks it --------------------------------------------------------


def test_keep_alive_pipelining_head_and_date(server: Server, served_repo: KeyRepo) -> None:
    token = mint(*app_auth(served_repo), claims())
    requests = (
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        + f"GET /v1/credentials HTTP/1.1\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
        + b"HEAD /healthz HTTP/1.1\r\n\r\n"
        + b"GET /nope HTTP/1.1\r\nConnection: close\r\n\r\n"
    )
    answer = exchange(server, requests)
    statuses = re.findall(rb"HTTP/1\.1 ([0-9]{3}) ", answer)
    assert statuses == [b"200", b"200", b"200", b"404"]
    assert answer.count(b"\r\ndate: ") == 4
    assert answer.count(b"connection: close\r\n") == 1


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /healthz HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", b"400"),
        (b"GET /healthz HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", b"400"),
        (b"GET /healthz HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", b"400"),
        (b"NOT HTTP AT ALL\r\n\r\n", b"400"),
        (b"GET /healthz HTTP/1.0\r\n\r\n", b"200"),
        (b"GET /v1/credentials HTTP/1.1\r\nAuthorization: a\r\nAuthorization: b\r\n\r\n", b"401"),
    ],
)
def test_what_the_server_refuses(server: Server, request_bytes: bytes, status: bytes) -> None:
    answer = exchange(
        server, request_bytes.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1)
    )
    assert answer.split(b" ", 2)[1] == status, answer[:200]
    assert b"content-type: application/" in answer


def test_a_fifo_at_the_bundle_path_neither_blocks_nor_stops_the_server(
    keyrepo: KeyRepo, tmp_path: Path
) -> None:
    out = tmp_path / "bundle"
    assert keyrepo.run("build", "--stack", "dev", "--out", str(out)).returncode == 0
    running = start_server(keyrepo, ["--bundle", str(out), "--poll", "0.1"], tmp_path / "log")
    try:
        fifo = tmp_path / "fifo"
        os.mkfifo(fifo)
        os.replace(fifo, out / "bundle.jws")
        refused = f"the bundle {out / 'bundle.jws'} is not a regular file"
        deadline = time.monotonic() + WAIT
        while refused not in running.output():
            assert time.monotonic() < deadline, running.output()
            time.sleep(0.1)
        assert healthz(running).startswith(b"HTTP/1.1 200 OK\r\n")
        metrics = exchange(running, b"GET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n")
        assert b"\nkeyops_bundle_reload_failures_total 1\n" in metrics
    finally:
        running.stop()


def test_a_bug_while_answering_is_a_problem_500_and_one_log_line(
    bundle_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """In-process server on 127.0.0.1 whose answer encoding fails for 200s (a stand-in bug)."""
    real = server_module.encode_response

    def broken(response: Response, date: bytes, *, head: bool, close: bool) -> bytes:
        if response.status == 200:
            raise RuntimeError("a value that must not be logged")
        return real(response, date, head=head, close=close)

    monkeypatch.setattr(server_module, "encode_response", broken)
    shared = server_module.Shared(Endpoint(Bundle.load(bundle_dir)), server_module.Limits())

    async def main() -> bytes:
        loop = asyncio.get_running_loop()
        srv = await loop.create_server(lambda: server_module.Connection(shared), "127.0.0.1", 0)
        port = srv.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = await asyncio.wait_for(reader.read(), WAIT)
        writer.close()
        srv.close()
        return answer

    with caplog.at_level(logging.ERROR, logger="keyops"):
        answer = asyncio.run(main())
    assert answer.startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
    assert b'"code": "internal-error"' in answer and b"cache-control: no-store\r\n" in answer
    assert [r.getMessage().split(" at ")[0] for r in caplog.records] == [
        "answering a request failed: RuntimeError"
    ]
    assert "must not be logged" not in caplog.text


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_port_in_use_is_a_clear_error(
    served_repo: KeyRepo, bundle_dir: Path, workers: str
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        proc = served_repo.run(
            "serve", "--bundle", str(bundle_dir), "--port", str(port), "--workers", workers,
            process=True,
        )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        f"error: the server could not start on 127.0.0.1:{port}: Address already in use. "
        "Is the port already in use? Choose another with --port."
    )
