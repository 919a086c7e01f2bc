"""JSON Schema and cross-file checks, through the real CLI on re-encrypted sample files."""

from __future__ import annotations

from typing import Any

import pytest

from keyops.store import schema
from support.repo import KeyRepo
from support.validate import expect_findings, findings, rewrite, run

WEB = "credentials/dev/web.yaml"
IOS = "credentials/dev/ios.yaml"


def _expect(keyrepo: KeyRepo, rel: str, change: Any, expected: list[str]) -> None:
    rewrite(keyrepo, rel, change)
    for args in ((), ("--no-decrypt",)):
        proc = run(keyrepo, "validate", *args)
        assert proc.returncode == 1, (args, proc.stderr)
        assert findings(proc) == expected, args
        assert proc.stderr == ""


def test_unknown_field(keyrepo: KeyRepo) -> None:
    def change(doc: dict[str, Any]) -> None:
        doc["colour"] = "blue"
        doc["credentials"][0]["expires"] = "2027-01-01"

    _expect(
        keyrepo,
        WEB,
        change,
        [
            "credentials/dev/web.yaml::$.credentials[0].expires: error[schema] unknown field "
            "'expires'; remove it or check its spelling (credential web-2026-06, line 14)",
            "credentials/dev/web.yaml::$.colour: error[schema] unknown field 'colour'; remove it "
            "or check its spelling (line 23)",
        ],
    )


def test_active_with_retiring_since(keyrepo: KeyRepo) -> None:
    def change(doc: dict[str, Any]) -> None:
        doc["credentials"][0]["retiring_since"] = "2026-07-01"

    _expect(
        keyrepo,
        WEB,
        change,
        [
            "credentials/dev/web.yaml::$.credentials[0].retiring_since: error[schema] field "
            "'retiring_since' is not allowed when state is 'active' (credential web-2026-06, "
            "line 14)"
        ],
    )


def test_retiring_without_retiring_since(keyrepo: KeyRepo) -> None:
    _expect(
        keyrepo,
        IOS,
        lambda doc: doc["credentials"][1].pop("retiring_since"),
        [
            "credentials/dev/ios.yaml::$.credentials[1]: error[schema] state 'retiring' requires "
            "'retiring_since' (credential ios-2026-05, line 14)"
        ],
    )


def test_dates_out_of_order(keyrepo: KeyRepo) -> None:
    def change(doc: dict[str, Any]) -> None:
        doc["credentials"][0]["activated"] = "2026-10-01"
        doc["credentials"][1]["retiring_since"] = "2026-05-03"

    _expect(
        keyrepo,
        IOS,
        change,
        [
            "credentials/dev/ios.yaml::$.credentials[0].activated: error[schema] activated "
            "(2026-10-01) is before created (2026-11-01); dates must follow the lifecycle order "
            "created ≤ activated ≤ retiring_since ≤ retired (credential ios-2026-11, line 13)",
            "credentials/dev/ios.yaml::$.credentials[1].retiring_since: error[schema] "
            "retiring_since (2026-05-03) is before activated (2026-05-04); dates must follow the "
            "lifecycle order created ≤ activated ≤ retiring_since ≤ retired (credential "
            "ios-2026-05, line 20)",
        ],
    )


def test_revoked_needs_reason_and_incident(keyrepo: KeyRepo) -> None:
    def change(doc: dict[str, Any]) -> None:
        doc["credentials"][1]["state"] = "revoked"
        doc["credentials"][1]["revoked"] = "2026-11-20"

    _expect(
        keyrepo,
        IOS,
        change,
        [
            "credentials/dev/ios.yaml::$.credentials[1]: error[schema] state 'revoked' requires "
            "'reason', 'incident' (credential ios-2026-05, line 14)"
        ],
    )


def test_invalid_date_and_state(keyrepo: KeyRepo) -> None:
    def change(doc: dict[str, Any]) -> None:
        doc["credentials"][0]["created"] = "2026-02-30"
        doc["credentials"][0]["state"] = "enabled"

    _expect(
        keyrepo,
        WEB,
        change,
        [
            "credentials/dev/web.yaml::$.credentials[0].state: error[schema] 'enabled' is not one "
            "of 'pending', 'active', 'retiring', 'retired', 'revoked' (credential web-2026-06, "
            "line 9)",
            "credentials/dev/web.yaml::$.credentials[0].created: error[schema] '2026-02-30' is "
            'not a calendar date; use a real day, quoted: "YYYY-MM-DD" (credential web-2026-06, '
            "line 12)",
        ],
    )


def test_duplicate_credential_id_across_files(keyrepo: KeyRepo) -> None:
    def change(doc: dict[str, Any]) -> None:
        doc["credentials"][0]["id"] = "android-2026-03"

    _expect(
        keyrepo,
        WEB,
        change,
        [
            "credentials/dev/web.yaml::$.credentials[0].id: error[schema] duplicate credential id "
            "'android-2026-03': also used at credentials/dev/android.yaml::$.credentials[0]; ids "
            "are unique within a stack, give this one a new id (credential android-2026-03, "
            "line 8)"
        ],
    )


def test_client_file_name_mismatch(keyrepo: KeyRepo) -> None:
    def change(doc: dict[str, Any]) -> None:
        doc["client"] = "website"

    _expect(
        keyrepo,
        WEB,
        change,
        [
            "credentials/dev/web.yaml::$.client: error[schema] client is 'website' but the file "
            "name says 'web'; they must be equal (line 1)"
        ],
    )


def test_app_id_as_a_number(keyrepo: KeyRepo) -> None:
    def change(doc: dict[str, Any]) -> None:
        doc["pusher"]["app_id"] = 1874221

    _expect(
        keyrepo,
        WEB,
        change,
        [
            "credentials/dev/web.yaml::$.pusher.app_id: error[schema] 1874221 must be the Pusher "
            "app id: digits, as a quoted string (line 5)"
        ],
    )


def test_every_finding_is_reported(keyrepo: KeyRepo) -> None:
    """Three problems in one file give three lines, not just the first."""

    def change(doc: dict[str, Any]) -> None:
        doc["pusher"]["app_id"] = "app-1"
        doc["platform"] = "tvos"
        doc["credentials"][0]["rollout_percent"] = "ten"

    rewrite(keyrepo, WEB, change)
    proc = expect_findings(
        keyrepo,
        (),
        [
            "credentials/dev/web.yaml::$.platform: error[schema] 'tvos' is not one of 'ios', "
            "'android', 'web', 'server' (line 2)",
            "credentials/dev/web.yaml::$.pusher.app_id: error[schema] 'app-1' must be the Pusher "
            "app id: digits, as a quoted string (line 5)",
            "credentials/dev/web.yaml::$.credentials[0].rollout_percent: error[schema] 'ten' must "
            "be a whole number (credential web-2026-06, line 14)",
        ],
    )
    assert proc.stdout.endswith("\n3 error(s), 0 warning(s) in 5 file(s)\n")


def test_secret_in_wrong_format_is_not_echoed(keyrepo: KeyRepo) -> None:
    bad = "ABCDEF0123456789ABCD"

    def change(doc: dict[str, Any]) -> None:
        doc["credentials"][0]["secret"] = bad

    rewrite(keyrepo, WEB, change)
    proc = expect_findings(
        keyrepo,
        (),
        [
            "credentials/dev/web.yaml::$.credentials[0].secret: error[schema] must be 20 lowercase "
            "hexadecimal characters (Pusher's format) (credential web-2026-06, line 11)"
        ],
    )
    assert bad not in proc.stdout + proc.stderr
    # without the key, the ENC[...] value is all keyops can see: no finding
    assert run(keyrepo, "validate", "--no-decrypt").returncode == 0


def test_stack_file_problems(keyrepo: KeyRepo) -> None:
    def change(doc: dict[str, Any]) -> None:
        doc["region"] = "eu-west-1"
        doc["stack"] = "development"
        doc["signing_keys"][0]["state"] = "next"

    rewrite(keyrepo, "credentials/dev/_stack.yaml", change)
    expect_findings(
        keyrepo,
        (),
        [
            "credentials/dev/_stack.yaml::$.stack: error[schema] stack is 'development' but the "
            "directory name says 'dev'; they must be equal (line 1)",
            "credentials/dev/_stack.yaml::$.signing_keys: error[schema] exactly one signing key "
            "must be active, found 0 (line 5)",
            "credentials/dev/_stack.yaml::$.region: error[schema] unknown field 'region'; remove "
            "it or check its spelling (line 13)",
        ],
    )


def test_served_client_without_app_auth(keyrepo: KeyRepo) -> None:
    _expect(
        keyrepo,
        WEB,
        lambda doc: doc.pop("app_auth"),
        [
            "credentials/dev/web.yaml::$: error[schema] a served client needs an app_auth list "
            "(the HMAC secrets its builds sign with) (line 1)"
        ],
    )


@pytest.mark.parametrize("name", [schema.CREDENTIAL_SCHEMA, schema.STACK_SCHEMA])
def test_published_schemas_are_valid_2020_12(name: str) -> None:
    from jsonschema import Draft202012Validator

    Draft202012Validator.check_schema(schema.load_schema(name))
    assert schema.load_schema(name)["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_allowed_origins_only_on_a_served_web_client(keyrepo: KeyRepo) -> None:
    def change(doc: dict[str, Any]) -> None:
        doc["allowed_origins"] = ["https://app.example.com"]

    _expect(
        keyrepo,
        IOS,
        change,
        [
            "credentials/dev/ios.yaml::$.allowed_origins: error[schema] allowed_origins is only "
            "for a served web client (platform: web, delivery: served): only browsers check "
            "CORS; remove it (line 26)"
        ],
    )


def test_allowed_origins_is_a_list_of_strings(keyrepo: KeyRepo) -> None:
    def change(doc: dict[str, Any]) -> None:
        doc["allowed_origins"] = ["https://app.example.com", 8443, ""]

    _expect(
        keyrepo,
        WEB,
        change,
        [
            "credentials/dev/web.yaml::$.allowed_origins[1]: error[schema] must be of type "
            "string, not int (line 21)",
            "credentials/dev/web.yaml::$.allowed_origins[2]: error[schema] '' should be "
            "non-empty (line 22)",
        ],
    )
