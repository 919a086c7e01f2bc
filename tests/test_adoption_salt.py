"""The per-stack salt of install hashes: in the stack file (encrypted), then in the bundle."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from joserfc import jws

from keyops.build.bundle import build_bundle
from keyops.store import sample
from support.repo import PROJECT, KeyRepo
from support.validate import expect_findings, rewrite, run

STACK = "credentials/dev/_stack.yaml"


def bundle_document(repo: KeyRepo) -> dict[str, Any]:
    bundle = build_bundle(repo.root, "dev", sops=repo.sops())
    payload: dict[str, Any] = json.loads(jws.extract_compact(bundle.raw).payload)
    return payload


def test_sops_encrypts_the_salt_under_the_project_creation_rule(keyrepo: KeyRepo) -> None:
    raw = keyrepo.path(STACK).read_text()
    assert "adoption:\n    secret: ENC[AES256_GCM,data:" in raw
    salt = keyrepo.decrypt(STACK)["adoption"]["secret"]
    assert len(salt) >= 43 and salt not in raw


def test_the_committed_dev_stack_has_an_encrypted_salt() -> None:
    raw = (PROJECT / STACK).read_text()
    assert "adoption:\n    secret: ENC[AES256_GCM,data:" in raw


def test_the_bundle_carries_the_salt_for_the_endpoint(keyrepo: KeyRepo) -> None:
    salt = keyrepo.decrypt(STACK)["adoption"]["secret"]
    assert bundle_document(keyrepo)["adoption"] == {"install_salt": salt}


def test_a_stack_without_a_salt_builds_a_bundle_without_one(keyrepo: KeyRepo) -> None:
    rewrite(keyrepo, STACK, lambda doc: doc.pop("adoption"))
    assert run(keyrepo, "validate").returncode == 0
    assert "adoption" not in bundle_document(keyrepo)


def test_a_salt_in_the_wrong_format_is_a_finding_that_does_not_echo_it(keyrepo: KeyRepo) -> None:
    def change(doc: dict[str, Any]) -> None:
        doc["adoption"] = {"secret": "short", "note": "x"}

    rewrite(keyrepo, STACK, change)
    proc = expect_findings(
        keyrepo,
        (),
        [
            "credentials/dev/_stack.yaml::$.adoption.secret: error[schema] must be base64url "
            "without padding of at least 32 random bytes (line 12)",
            "credentials/dev/_stack.yaml::$.adoption.note: error[schema] unknown field 'note'; "
            "remove it or check its spelling (line 13)",
        ],
    )
    assert "short" not in proc.stdout + proc.stderr


def test_the_sample_generator_makes_a_fresh_salt_per_stack(tmp_path: Path) -> None:
    import datetime as dt

    one = sample.stack_document("dev", dt.date(2026, 11, 1))["adoption"]["secret"]
    two = sample.stack_document("dev", dt.date(2026, 11, 1))["adoption"]["secret"]
    assert one != two and len(one) == 43
