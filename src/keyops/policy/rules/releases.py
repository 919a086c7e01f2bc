"""``release-record``: what a bundled client's release records claim must hold together."""

from __future__ import annotations

from collections.abc import Iterable

from keyops.core.findings import Finding, Severity
from keyops.policy.rules.base import Facts, rule


@rule(
    "release-record",
    Severity.ERROR,
    "Adoption evidence for bundled keys maps app versions to credentials through the release "
    "records; a record naming no credential of the client, or two records for one version, "
    "would count installs against the wrong key.",
    "Record releases with keyops release; fix or remove the record the finding names.",
    history_free=True,
)
def release_record(facts: Facts) -> Iterable[Finding]:
    for client in facts.clients():
        ids = {c.id for c in client.credentials}
        seen: dict[str, str] = {}
        for release in client.releases:
            if release.credential_id not in ids:
                yield release_record.finding(
                    facts,
                    client.path,
                    f"release {release.app_version} names {release.credential_id}, which client "
                    f"{client.client} does not have (its credentials: {', '.join(sorted(ids))})",
                    f"{release.pointer}.credential_id",
                    credential_id=release.credential_id,
                )
            previous = seen.get(release.app_version)
            if previous is not None:
                yield release_record.finding(
                    facts,
                    client.path,
                    f"release {release.app_version} is recorded twice ({previous} and "
                    f"{release.credential_id}); one app version carries one key",
                    f"{release.pointer}.app_version",
                    credential_id=release.credential_id,
                )
            seen.setdefault(release.app_version, release.credential_id)
