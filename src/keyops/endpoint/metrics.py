"""Prometheus counters of the endpoint: the adoption evidence for retirements.

``keyops_served_total{client, credential, held}`` counts successful answers by the credential
served and the credential the app said it held (``none`` when it sent no ``held``, ``other``
when it named an id the client does not have: labels stay bounded whatever apps send).
``keyops_responses_total{status, code}`` counts every answer of ``/v1/credentials``.
``keyops_installs{client, held}`` counts distinct installs (hashes of their install ids) by the
credential they held, in a sliding window (:mod:`keyops.endpoint.installs`): replaying one token
or minting many tokens for one install moves no figure.

With several worker processes, each worker writes a snapshot of its counters to a shared
directory; ``/metrics`` answers the sum over all workers, so any worker tells the whole story.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from keyops.endpoint import installs
from keyops.endpoint.installs import InstallCounter
from keyops.protocol.bundle import Bundle

if TYPE_CHECKING:
    from pathlib import Path

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
Served = tuple[str, str, str]
Answer = tuple[int, str]


class Metrics:
    def __init__(
        self, shared_dir: Path | None = None, installs: InstallCounter | None = None
    ) -> None:
        self.served: Counter[Served] = Counter()
        self.responses: Counter[Answer] = Counter()
        self.reload_failures = 0
        self.installs = installs or InstallCounter()
        self.shared_dir = shared_dir
        self._lock = threading.Lock()
        self._flushed_at = -1
        #: Observations since start, so that flush() notices a new install.
        self._install_events = 0

    def count_served(self, client: str, credential: str, held: str) -> None:
        with self._lock:
            self.served[(client, credential, held)] += 1

    def count_install(self, client: str, held: str, digest: str, now: float) -> None:
        with self._lock:
            self.installs.observe(client, held, digest, now)
            self._install_events += 1

    def count_response(self, status: int, code: str) -> None:
        with self._lock:
            self.responses[(status, code)] += 1

    def count_reload_failure(self) -> None:
        with self._lock:
            self.reload_failures += 1

    # -- sharing between worker processes --------------------------------------------------
    def _snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "served": [[*k, v] for k, v in self.served.items()],
                "responses": [[*k, v] for k, v in self.responses.items()],
                "reload_failures": self.reload_failures,
                "installs": self.installs.snapshot(time.time()),
            }

    def flush(self) -> None:
        """Write this worker's counters for the others to read (atomic replace)."""
        if self.shared_dir is None:
            return
        total = sum(self.served.values()) + sum(self.responses.values()) + self.reload_failures
        total += self._install_events
        if total == self._flushed_at:
            return
        # Only keyops serve with several workers gets here: the Lambda never imports this.
        from keyops.core.atomic import PRIVATE, write_atomic

        target = self.shared_dir / f"worker-{os.getpid()}.json"
        write_atomic(target, json.dumps(self._snapshot()).encode(), mode=PRIVATE)
        self._flushed_at = total

    def _merged(self) -> tuple[Counter[Served], Counter[Answer], int, list[dict[str, Any]]]:
        served: Counter[Served] = Counter()
        responses: Counter[Answer] = Counter()
        failures = 0
        snapshots = [self._snapshot()]
        if self.shared_dir is not None:
            self.flush()
            snapshots = []
            for file in sorted(self.shared_dir.glob("worker-*.json")):
                try:
                    snapshots.append(json.loads(file.read_text()))
                except (OSError, ValueError):
                    continue  # a worker mid-write: its next snapshot will count
        for snap in snapshots:
            for client, cred, held, value in snap["served"]:
                served[(client, cred, held)] += value
            for status, code, value in snap["responses"]:
                responses[(int(status), code)] += value
            failures += int(snap["reload_failures"])
        return served, responses, failures, [s["installs"] for s in snapshots if "installs" in s]

    def render(self, bundle: Bundle | None, now: float) -> str:
        served, responses, failures, install_snapshots = self._merged()
        stack = _label(bundle.stack) if bundle else ""
        lines = [
            "# HELP keyops_served_total Credentials served, by client, served and held credential.",
            "# TYPE keyops_served_total counter",
        ]
        for (client, cred, held), value in sorted(served.items()):
            lines.append(
                f'keyops_served_total{{stack="{stack}",client="{_label(client)}",'
                f'credential="{_label(cred)}",held="{_label(held)}"}} {value}'
            )
        lines += [
            "# HELP keyops_responses_total Answers of /v1/credentials by status and problem code.",
            "# TYPE keyops_responses_total counter",
        ]
        for (status, code), value in sorted(responses.items()):
            lines.append(f'keyops_responses_total{{status="{status}",code="{code}"}} {value}')
        lines += [
            "# HELP keyops_bundle_reload_failures_total New bundles ignored for failing checks.",
            "# TYPE keyops_bundle_reload_failures_total counter",
            f"keyops_bundle_reload_failures_total {failures}",
        ]
        if bundle is not None:
            lines += [
                "# HELP keyops_bundle_version The bundle_version being served.",
                "# TYPE keyops_bundle_version gauge",
                f'keyops_bundle_version{{stack="{stack}"}} {bundle.bundle_version}',
                "# HELP keyops_bundle_expires_in_seconds Seconds until the bundle expires.",
                "# TYPE keyops_bundle_expires_in_seconds gauge",
                f'keyops_bundle_expires_in_seconds{{stack="{stack}"}} {int(bundle.exp - now)}',
            ]
        lines += installs.render(stack, install_snapshots, now, self.installs.window_seconds)
        return "\n".join(lines) + "\n"


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
