"""Typed views of credential and stack files.

Built from schema-valid documents, either decrypted (secrets present) or read from the
encrypted file's cleartext (secrets ``None``). Nothing here touches sops or the disk.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal

from keyops.core.dates import parse_date

State = Literal["pending", "active", "retiring", "retired", "revoked"]
LIVE_STATES: frozenset[str] = frozenset({"pending", "active", "retiring"})
STATES: tuple[str, ...] = ("pending", "active", "retiring", "retired", "revoked")


def _clear(value: Any) -> str | None:
    """A secret's clear value, or None when it is still ``ENC[...]`` or absent."""
    if isinstance(value, str) and not value.startswith("ENC["):
        return value
    return None


@dataclass(frozen=True)
class Credential:
    id: str
    state: str
    created: dt.date | None
    key: str | None = field(default=None, repr=False)
    secret: str | None = field(default=None, repr=False)
    activated: dt.date | None = None
    retiring_since: dt.date | None = None
    retired: dt.date | None = None
    revoked: dt.date | None = None
    reason: str | None = None
    incident: str | None = None
    min_app_version: str | None = None
    rollout_percent: int | None = None
    index: int = 0

    @classmethod
    def from_dict(cls, data: dict[str, Any], index: int) -> Credential:
        rollout = data.get("rollout_percent")
        return cls(
            id=str(data.get("id", "")),
            state=str(data.get("state", "")),
            created=parse_date(data.get("created")),
            key=_clear(data.get("key")),
            secret=_clear(data.get("secret")),
            activated=parse_date(data.get("activated")),
            retiring_since=parse_date(data.get("retiring_since")),
            retired=parse_date(data.get("retired")),
            revoked=parse_date(data.get("revoked")),
            reason=data.get("reason"),
            incident=data.get("incident"),
            min_app_version=data.get("min_app_version"),
            rollout_percent=rollout if isinstance(rollout, int) else None,
            index=index,
        )

    @property
    def live(self) -> bool:
        return self.state in LIVE_STATES

    @property
    def pointer(self) -> str:
        return f"$.credentials[{self.index}]"

    def age_days(self, today: dt.date) -> int | None:
        return (today - self.created).days if self.created else None

    def ended_on(self) -> dt.date | None:
        """The day it left service for good (retired or revoked)."""
        return self.retired if self.state == "retired" else self.revoked


@dataclass(frozen=True)
class AppAuth:
    kid: str
    state: str
    secret: str | None = field(default=None, repr=False)
    created: dt.date | None = None
    retired: dt.date | None = None
    index: int = 0


@dataclass(frozen=True)
class Release:
    """A bundled app release and the credential built into it (``keyops release``)."""

    app_version: str
    credential_id: str
    recorded: dt.date | None = None
    index: int = 0

    @property
    def pointer(self) -> str:
        return f"$.releases[{self.index}]"


@dataclass(frozen=True)
class ClientFile:
    path: str
    stack: str
    client: str
    platform: str
    delivery: str
    app_id: str
    cluster: str
    credentials: tuple[Credential, ...]
    app_auth: tuple[AppAuth, ...] = ()
    releases: tuple[Release, ...] = ()
    #: Web pages a browser may call the endpoint from (served web clients; CORS).
    allowed_origins: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, path: str, stack: str, data: dict[str, Any]) -> ClientFile:
        pusher = data.get("pusher") or {}
        return cls(
            path=path,
            stack=stack,
            client=str(data.get("client", "")),
            platform=str(data.get("platform", "")),
            delivery=str(data.get("delivery", "")),
            app_id=str(pusher.get("app_id", "")),
            cluster=str(pusher.get("cluster", "")),
            credentials=tuple(
                Credential.from_dict(item, i)
                for i, item in enumerate(data.get("credentials") or [])
                if isinstance(item, dict)
            ),
            app_auth=tuple(
                AppAuth(
                    kid=str(item.get("kid", "")),
                    state=str(item.get("state", "")),
                    secret=_clear(item.get("secret")),
                    created=parse_date(item.get("created")),
                    retired=parse_date(item.get("retired")),
                    index=i,
                )
                for i, item in enumerate(data.get("app_auth") or [])
                if isinstance(item, dict)
            ),
            releases=tuple(
                Release(
                    app_version=str(item.get("app_version", "")),
                    credential_id=str(item.get("credential_id", "")),
                    recorded=parse_date(item.get("recorded")),
                    index=i,
                )
                for i, item in enumerate(data.get("releases") or [])
                if isinstance(item, dict)
            ),
            allowed_origins=tuple(
                item for item in data.get("allowed_origins") or [] if isinstance(item, str)
            ),
        )

    def by_id(self, credential_id: str) -> Credential | None:
        return next((c for c in self.credentials if c.id == credential_id), None)

    def in_state(self, *states: str) -> list[Credential]:
        return [c for c in self.credentials if c.state in states]


@dataclass(frozen=True)
class SigningKey:
    kid: str
    state: str
    created: dt.date | None
    private_jwk: str | None = field(default=None, repr=False)
    index: int = 0


@dataclass(frozen=True)
class StackFile:
    path: str
    stack: str
    signing_keys: tuple[SigningKey, ...]
    endpoints: tuple[str, ...] = ()
    encryption_master_key: str | None = field(default=None, repr=False)
    #: ``adoption.secret``: the salt (HMAC key) of install hashes in adoption metrics.
    adoption_secret: str | None = field(default=None, repr=False)

    @classmethod
    def from_dict(cls, path: str, stack: str, data: dict[str, Any]) -> StackFile:
        adoption = data.get("adoption")
        return cls(
            path=path,
            stack=stack,
            signing_keys=tuple(
                SigningKey(
                    kid=str(item.get("kid", "")),
                    state=str(item.get("state", "")),
                    created=parse_date(item.get("created")),
                    private_jwk=_clear(item.get("private_jwk")),
                    index=i,
                )
                for i, item in enumerate(data.get("signing_keys") or [])
                if isinstance(item, dict)
            ),
            endpoints=tuple(str(e) for e in data.get("endpoints") or []),
            encryption_master_key=_clear(data.get("encryption_master_key")),
            adoption_secret=_clear(adoption.get("secret")) if isinstance(adoption, dict) else None,
        )


@dataclass
class Stack:
    name: str
    clients: dict[str, ClientFile] = field(default_factory=dict)
    stack_file: StackFile | None = None

    def credentials(self) -> list[tuple[ClientFile, Credential]]:
        return [(c, cred) for c in self.clients.values() for cred in c.credentials]
