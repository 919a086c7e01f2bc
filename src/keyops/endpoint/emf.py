"""One CloudWatch Embedded Metric Format (EMF) line per answer: the adoption evidence on AWS.

On Lambda each execution environment keeps its own counters, so ``/metrics`` describes one
instance. Instead every answer writes one JSON line to stdout; Lambda sends stdout to CloudWatch
Logs, which turns each line into metrics by its ``_aws`` envelope (no SDK, no network call on the
request path). The names are a contract with the dashboards and with
``keyops adoption --from cloudwatch``:

========== ======================================== ===========================================
metric     dimensions                               written for
========== ======================================== ===========================================
Served     Stack, Client, Credential, Held          a credential served; ``Held`` is one of the
                                                    client's credential ids, or ``none``
HeldUnknown Stack, Client, Credential               a credential served to an app that named an
                                                    id the client does not have (never a
                                                    dimension value: apps must not mint them)
Errors     Stack, Code                              an error answer, by problem code
========== ======================================== ===========================================

Namespace ``keyops``, unit ``Count``, value 1. Served and HeldUnknown lines also carry the
property ``install``: :func:`~keyops.endpoint.installs.install_hash` of the app's install id
under the stack's salt (never a dimension, so it costs no metric; Logs Insights counts distinct
values of it). The install id itself never leaves this function. Without a salt the property is
left out, and distinct installs cannot be counted.

Imports are the standard library and :mod:`keyops.endpoint.installs` only: nothing is added to
the cold start.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any

from keyops.endpoint.installs import NONE, UNKNOWN, InstallHasher

NAMESPACE = "keyops"
SERVED = "Served"
HELD_UNKNOWN = "HeldUnknown"
ERRORS = "Errors"
INSTALL_PROPERTY = "install"
SERVED_DIMENSIONS = ("Stack", "Client", "Credential", "Held")
UNKNOWN_DIMENSIONS = ("Stack", "Client", "Credential")
ERROR_DIMENSIONS = ("Stack", "Code")


def _stdout(line: str) -> None:
    # One write per line, flushed: Lambda makes one log event of each line.
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class EmfLog:
    """Writes the EMF lines of one stack's endpoint."""

    def __init__(
        self,
        stack: str,
        salt: bytes | None,
        *,
        write: Callable[[str], None] = _stdout,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.stack = stack
        self._hasher = InstallHasher(salt) if salt is not None else None
        self._write = write
        self._clock = clock

    def served(
        self, client: str, credential: str, held: str, install_id: str, digest: str | None = None
    ) -> None:
        """A served answer; ``held`` is the bounded label of
        :func:`~keyops.endpoint.installs.held_label` (an id of the client, ``none`` or
        ``other``). ``digest`` is the install hash when the caller has it already."""
        members: dict[str, Any] = {"Stack": self.stack, "Client": client, "Credential": credential}
        dimensions: tuple[str, ...]
        if held == UNKNOWN:
            metric, dimensions = HELD_UNKNOWN, UNKNOWN_DIMENSIONS
        else:
            metric, dimensions = SERVED, SERVED_DIMENSIONS
            members["Held"] = held or NONE
        if self._hasher is not None:
            members[INSTALL_PROPERTY] = digest or self._hasher(install_id)
        self._emit(metric, dimensions, members)

    def error(self, status: int, code: str) -> None:
        """An error answer (``problem+json``), by its problem code."""
        self._emit(ERRORS, ERROR_DIMENSIONS, {"Stack": self.stack, "Code": code, "Status": status})

    def _emit(self, metric: str, dimensions: tuple[str, ...], members: dict[str, Any]) -> None:
        document = {
            "_aws": {
                "Timestamp": int(self._clock() * 1000),
                "CloudWatchMetrics": [
                    {
                        "Namespace": NAMESPACE,
                        "Dimensions": [list(dimensions)],
                        "Metrics": [{"Name": metric, "Unit": "Count"}],
                    }
                ],
            },
            **members,
            metric: 1,
        }
        self._write(json.dumps(document, separators=(",", ":")))
