"""boto3 clients, and the one mapping of what AWS can answer to an :class:`AwsError`.

Imported only by the parts of the command line that call AWS (``keyops adoption --from
cloudwatch``, ``keyops doctor --aws``), so keyops without the ``aws`` extra never imports boto3.
Each caller says what fixes its own failures (which role, which calls); the kinds of failure,
and how they read, are decided here once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
)

from keyops.core.errors import AwsError
from keyops.core.text import printable

#: Error codes that mean "these credentials may not do this" (or are not valid at all).
DENIED = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "AuthorizationError",
        "UnauthorizedOperation",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "ExpiredToken",
        "ExpiredTokenException",
        "SignatureDoesNotMatch",
    }
)
UNREACHABLE = (
    EndpointConnectionError,
    ConnectTimeoutError,
    ReadTimeoutError,
    ConnectionClosedError,
)

#: What the SDK's parsers raise on an answer that is not what AWS documents (a number that is
#: not one, nesting too deep): the SDK does not wrap these.
MALFORMED = (ValueError, TypeError, ArithmeticError, RecursionError)
#: Everything a call can raise that :func:`failure` maps; catch these around every call.
CALL_ERRORS = (BotoCoreError, ClientError, *MALFORMED)

#: ``(service, region, endpoint_url)`` to a boto3 client.
ClientFactory = Callable[[str, str, str | None], Any]


@dataclass(frozen=True)
class Fixes:
    """What the caller tells the user to do, per kind of failure."""

    #: No credentials, or credentials AWS refuses for the call.
    credentials: str
    #: Any other error AWS answered with.
    other: str
    #: Credentials that are valid but may not make the call (default: ``credentials``).
    denied: str = ""


def _config() -> Config:
    return Config(
        connect_timeout=5, read_timeout=30, retries={"max_attempts": 3, "mode": "standard"}
    )


def clients() -> ClientFactory:
    """Clients of one new session: credentials are looked up for it, never reused from a cache.

    The session is made at the first client, so that a bad AWS configuration (an unknown
    ``AWS_PROFILE``) fails where the caller maps failures, like any other call.
    """
    sessions: list[Any] = []

    def client(service: str, region: str, endpoint_url: str | None) -> Any:
        if not sessions:
            sessions.append(boto3.session.Session())
        return sessions[0].client(
            service, region_name=region, endpoint_url=endpoint_url, config=_config()
        )

    return client


def no_credentials(exc: Exception) -> bool:
    """No credentials at all (or a profile that does not exist): no call can work."""
    return isinstance(exc, (NoCredentialsError, PartialCredentialsError, ProfileNotFound))


def unreachable(exc: Exception) -> bool:
    return isinstance(exc, UNREACHABLE)


def error_code(exc: Exception) -> str | None:
    """The code of an error AWS answered with (``HTTP 403`` when its body was unreadable)."""
    if not isinstance(exc, ClientError):
        return None
    code = str((exc.response.get("Error") or {}).get("Code") or "error")
    # An error body the SDK could not parse: only the status is sure.
    return f"HTTP {code}" if code.isdigit() else printable(code, 60)


def failure(
    exc: Exception, region: str, call: str, endpoint_url: str | None, fixes: Fixes
) -> AwsError:
    """One clear error per way AWS can fail; the message never holds a credential."""
    if isinstance(exc, ProfileNotFound):
        profile = printable(str(exc.kwargs.get("profile", "")), 60)
        return AwsError(f"the AWS profile {profile!r} is not configured", fixes.credentials)
    if no_credentials(exc):
        return AwsError("no AWS credentials were found", fixes.credentials)
    if unreachable(exc):
        where = endpoint_url or f"the {region} endpoint"
        return AwsError(
            f"region {region} does not answer ({call} at {where})",
            "Check the network, the regions in the stack's Pulumi file, or --endpoint-url.",
        )
    code = error_code(exc)
    if isinstance(exc, ClientError) and code is not None:
        status = (exc.response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
        if code in DENIED or status == 403:
            return AwsError(
                f"AWS denied {call} in {region} ({code})", fixes.denied or fixes.credentials
            )
        message = printable(str((exc.response.get("Error") or {}).get("Message") or ""), 200)
        return AwsError(f"{call} failed in {region}: {code}: {message}", fixes.other)
    if isinstance(exc, MALFORMED):
        where = endpoint_url or f"the {region} endpoint"
        return AwsError(
            f"{call} in {region} got an answer the AWS SDK cannot read ({type(exc).__name__})",
            f"Check that {where} is AWS (or an emulator of it), then run it again.",
        )
    return AwsError(
        f"{call} failed in {region} ({type(exc).__name__})", "Check the AWS configuration."
    )
