"""API Gateway HTTP API (payload format 2.0) events for the real Lambda handler.

Built from the recorded event in tests/events/credentials.json, with the method, path, query and
headers of the request being played (header names in lower case, as API Gateway sends them).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

TEMPLATE = Path(__file__).resolve().parents[1] / "events" / "credentials.json"


def http_api_event(
    method: str,
    path: str,
    headers: Mapping[str, str],
    *,
    query: str = "",
    source_ip: str = "127.0.0.1",
) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(TEMPLATE.read_text())
    event["rawPath"] = path
    event["rawQueryString"] = query
    event["headers"] = {name.lower(): value for name, value in headers.items()}
    event["requestContext"]["http"].update({"method": method, "path": path, "sourceIp": source_ip})
    event["requestContext"]["timeEpoch"] = int(time.time() * 1000)
    return event
