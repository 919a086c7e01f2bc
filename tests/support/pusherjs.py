"""A real pusher-js client in Node (tests/e2e/pusher/driver.mjs), driven from a test.

The test writes commands (connect with a key, subscribe, disconnect) and waits for the events
pusher-js reports (state changes, Pusher errors with their close codes, subscriptions, channel
events). A reader thread queues every event; :meth:`PusherJs.wait_for` takes events off the
queue until one matches, keeping the others in ``events`` for the failure message.
"""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from support.soketi import PUSHER_DIR, Soketi, check_node

DRIVER = PUSHER_DIR / "driver.mjs"
Event = dict[str, Any]


class PusherJs:
    def __init__(self, proc: subprocess.Popen[str], log: Path) -> None:
        self.proc = proc
        self.log = log
        self.events: list[Event] = []
        self._queue: queue.Queue[Event | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                self._queue.put(json.loads(line))
            except ValueError:
                self._queue.put({"type": "unparsed", "line": line})
        self._queue.put(None)

    def send(self, **command: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()

    def connect(self, soketi: Soketi, key: str, **extra: Any) -> None:
        self.send(op="connect", key=key, host="127.0.0.1", port=soketi.port, **extra)

    def wait_for(self, match: Callable[[Event], bool], what: str, timeout: float = 60) -> Event:
        """The next event that matches; fails the test, showing what came, after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                event = self._queue.get(timeout=max(left, 0.01)) if left > 0 else None
            except queue.Empty:
                event = None
            if event is None:
                stderr = self.log.read_text(errors="replace")[-2000:]
                pytest.fail(
                    f"pusher-js never reported {what}. Events:\n"
                    + "\n".join(json.dumps(e) for e in self.events[-30:])
                    + f"\nstderr:\n{stderr}",
                    pytrace=False,
                )
            self.events.append(event)
            if match(event):
                return event

    def connected(self, timeout: float = 60) -> Event:
        return self.wait_for(
            lambda e: e["type"] == "state" and e["current"] == "connected", "connected", timeout
        )

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.send(op="exit")
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(timeout=10)


@contextmanager
def pusher_js(workdir: Path, name: str = "pusher-js") -> Iterator[PusherJs]:
    node = check_node()
    log = workdir / f"{name}.stderr"
    with log.open("w") as stderr:
        proc = subprocess.Popen(
            [node, str(DRIVER)],
            cwd=PUSHER_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            bufsize=1,
        )
    client = PusherJs(proc, log)
    try:
        yield client
    finally:
        client.close()
