"""Load and validate a credential repository: the pipeline behind ``keyops validate``.

Order matters and is cheap-first:

1. read each file (size, binary, symlinks leaving the repository);
2. parse strict YAML (duplicate keys, anchors, tabs, unquoted dates), with lines;
3. checks that need no key: secrets are ``ENC[...]``, nothing else is, sops metadata and MAC
   exist, recipients match the ``.sops.yaml`` creation rule for the path;
4. decrypt, every file once, in parallel (skipped with ``decrypt=False``);
5. JSON Schema on the decrypted document (or on the cleartext structure when not decrypting);
6. cross-file checks: duplicate credential ids in a stack, date order, stack-file keys.

Every step reports every problem it finds as a :class:`~keyops.findings.Finding`.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keyops.core.dates import parse_date
from keyops.core.errors import (
    KeyopsError,
    NoDecryptionKey,
    RepositoryError,
    SopsFileError,
    YamlRejected,
)
from keyops.core.findings import Finding, Severity
from keyops.core.model import ClientFile, Stack, StackFile
from keyops.store import names, sopsconfig, yamlload
from keyops.store import schema as schemas
from keyops.store.sops import Sops, metadata_recipients
from keyops.store.sources import CREDENTIALS_DIR, STACK_FILE, Entry, GitSource, Source

ProgressHook = Callable[[str, int, int], None]

#: Files whose change alters what the checks themselves enforce; the policy engine asks for an
#: approval when a change touches one of them.
GOVERNANCE_FILES = (".sops.yaml", "policies/keyops.yaml", "policies/waivers.yaml")


@dataclass
class FileRecord:
    relpath: str
    stack: str
    kind: str  # "client" | "stack"
    raw: bytes | None = None
    doc: yamlload.YamlDocument | None = None
    plain: dict[str, Any] | None = None
    #: True once static checks passed well enough to try decryption.
    decryptable: bool = False
    schema_ok: bool = False
    #: True when the file's recipients differ from its creation rule's (already reported).
    recipients_mismatch: bool = False

    @property
    def stem(self) -> str:
        return self.relpath.rsplit("/", 1)[-1].rsplit(".", 1)[0]

    def content(self) -> dict[str, Any] | None:
        """The best document known: decrypted if available, else the cleartext structure."""
        if self.plain is not None:
            return self.plain
        if self.doc is not None and isinstance(self.doc.data, dict):
            return {k: v for k, v in self.doc.data.items() if k != "sops"}
        return None


@dataclass
class LoadResult:
    source_label: str
    records: dict[str, FileRecord] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    stacks: dict[str, Stack] = field(default_factory=dict)
    decrypted: bool = False
    #: The repository's governance files as read from the same source (None when absent):
    #: who can decrypt, the policy thresholds and approvers, and the waivers.
    governance: dict[str, bytes | None] = field(default_factory=dict)
    #: With ``skip_stacks_without_key``: each stack left out because no key here decrypts it,
    #: with the error that says who can.
    missing_keys: dict[str, NoDecryptionKey] = field(default_factory=dict)

    @property
    def file_count(self) -> int:
        return len(self.records)


class _Reporter:
    def __init__(self, result: LoadResult) -> None:
        self.result = result

    def add(
        self,
        record: FileRecord | str,
        rule: str,
        message: str,
        pointer: str = "$",
        *,
        severity: Severity = Severity.ERROR,
        line: int | None = None,
        credential_id: str | None = None,
    ) -> None:
        path = record if isinstance(record, str) else record.relpath
        if not isinstance(record, str):
            if line is None and record.doc is not None:
                line = record.doc.line_of(pointer)
            if credential_id is None:
                credential_id = credential_id_at(record.content(), pointer)
        self.result.findings.append(
            Finding(
                path=path,
                pointer=pointer,
                rule=rule,
                severity=severity,
                message=message,
                credential_id=credential_id,
                line=line,
            )
        )


def credential_id_at(document: dict[str, Any] | None, pointer: str) -> str | None:
    """The id of the credential (or app_auth kid / signing kid) a pointer falls inside."""
    if not document:
        return None
    for section, key in (("credentials", "id"), ("app_auth", "kid"), ("signing_keys", "kid")):
        prefix = f"$.{section}["
        if pointer.startswith(prefix):
            try:
                index = int(pointer[len(prefix) :].split("]", 1)[0])
                item = document[section][index]
            except (ValueError, KeyError, IndexError, TypeError):
                return None
            value = item.get(key) if isinstance(item, dict) else None
            return value if isinstance(value, str) else None
    return None


def select_entries(
    entries: list[Entry], stacks: Iterable[str] | None, paths: Iterable[str] | None
) -> list[Entry]:
    chosen = entries
    if stacks:
        wanted = set(stacks)
        chosen = [e for e in chosen if _stack_of(e.relpath) in wanted]
    if paths:
        wanted_paths = list(paths)
        chosen = [
            e
            for e in chosen
            if any(
                e.relpath == p or e.relpath.startswith(p.rstrip("/") + "/") for p in wanted_paths
            )
        ]
    return chosen


def _stack_of(relpath: str) -> str:
    parts = relpath.split("/")
    return parts[1] if len(parts) > 2 else ""


def list_stacks(source: Source) -> list[str]:
    return sorted({_stack_of(e.relpath) for e in source.entries() if _stack_of(e.relpath)})


def check_stacks(root: Path, source: Source, wanted: Iterable[str] | None) -> None:
    """Refuse a ``--stack`` that names no stack with files, saying which stacks exist."""
    known = list_stacks(source)
    for stack in wanted or []:
        names.check_stack(stack)
        if stack not in known:
            empty = (root / CREDENTIALS_DIR / stack).is_dir()
            raise names.unknown_stack(stack, known, empty=empty)


def load(
    root: Path,
    source: Source,
    *,
    stacks: Iterable[str] | None = None,
    paths: Iterable[str] | None = None,
    decrypt: bool = True,
    sops: Sops | None = None,
    progress: ProgressHook | None = None,
    skip_stacks_without_key: bool = False,
) -> LoadResult:
    """Run the validation pipeline over the selected files of ``source``.

    A file no key here can decrypt raises :class:`NoDecryptionKey`, unless
    ``skip_stacks_without_key``: then its whole stack is left out and named in
    ``result.missing_keys``, and every other file is still decrypted once.
    """
    result = LoadResult(source_label=source.label)
    result.governance = {name: source.read_text_file(name) for name in GOVERNANCE_FILES}
    report = _Reporter(result)
    config = _sops_config(root, source)
    _check_config(config, report)

    entries = select_entries(source.entries(), stacks, paths)
    raw_by_path: dict[str, bytes] = {}
    if isinstance(source, GitSource):
        raw_by_path = source.read_many([e.relpath for e in entries if e.kind == "file"])

    for entry in entries:
        rel = entry.relpath
        parts = rel.split("/")
        stack = _stack_of(rel)
        if entry.kind in ("escaping-symlink", "symlink"):
            report.add(
                rel,
                "schema",
                f"is a symlink to {entry.target!r}"
                + (", which leaves the repository" if entry.kind == "escaping-symlink" else "")
                + "; credential files must be regular files in the repository",
            )
            continue
        if len(parts) != 3:
            report.add(
                rel,
                "schema",
                "unexpected location; credential files live at "
                f"{CREDENTIALS_DIR}/<stack>/<client>.yaml",
            )
            continue
        if not rel.endswith(".yaml"):
            report.add(rel, "schema", "unexpected file; credential files end in .yaml")
            continue
        kind = "stack" if parts[2] == STACK_FILE else "client"
        record = FileRecord(relpath=rel, stack=stack, kind=kind)
        result.records[rel] = record
        try:
            record.raw = raw_by_path[rel] if rel in raw_by_path else source.read(rel)
        except KeyopsError as exc:
            report.add(record, "schema", exc.what)
            continue
        try:
            record.doc = yamlload.load(record.raw)
        except YamlRejected as exc:
            for problem in exc.problems:
                report.add(record, "schema", problem.message, problem.pointer, line=problem.line)
            continue
        if not isinstance(record.doc.data, dict):
            report.add(record, "schema", "the file must hold a YAML mapping at the top level")
            record.doc = None
            continue
        _static_checks(record, config, report)

    if decrypt:
        todo = [r for r in result.records.values() if r.decryptable]
        if todo:
            result.decrypted = True
            runner = sops or Sops(root)
            missing = _decrypt_all(runner, todo, report, progress)
            if missing and not skip_stacks_without_key:
                first = missing[0]
                raise runner.no_key_error(first.relpath, first.raw, more=len(missing) - 1)
            for record in missing:
                if record.stack not in result.missing_keys:
                    same = [r for r in missing if r.stack == record.stack]
                    result.missing_keys[record.stack] = runner.no_key_error(
                        record.relpath, record.raw, more=len(same) - 1
                    )
            result.records = {
                path: record
                for path, record in result.records.items()
                if record.stack not in result.missing_keys
            }

    for record in result.records.values():
        if record.doc is None:
            continue
        _schema_checks(record, report, strict=record.plain is not None)

    _cross_file_checks(result, report, stacks)
    _stack_file_presence(result, report, source.entries())
    build_models(result)
    result.findings.sort(key=lambda f: (f.path, f.line or 0, f.pointer, f.rule, f.message))
    return result


def refuse_missing_keys(named: Iterable[str] | None, *results: LoadResult) -> list[str]:
    """The stacks skipped for want of a key, after refusing what cannot be skipped.

    For loads with ``skip_stacks_without_key``: a stack named with ``--stack`` that no key here
    decrypts, or a run where no stack at all could be decrypted, raises that stack's
    :class:`NoDecryptionKey` (exit 2). Otherwise the skipped stacks are returned, to be named.
    """
    missing: dict[str, NoDecryptionKey] = {}
    for result in results:
        for stack, error in result.missing_keys.items():
            missing.setdefault(stack, error)
    for stack in named or []:
        if stack in missing:
            raise missing[stack]
    decrypted = any(r.plain is not None for result in results for r in result.records.values())
    if missing and not decrypted:
        first, *rest = sorted(missing)
        error = missing[first]
        raise (
            error.hint(f"No key here decrypts stack(s) {', '.join(rest)} either.")
            if rest
            else error
        )
    return sorted(missing)


def drop_stacks(result: LoadResult, stacks: Iterable[str]) -> None:
    """Leave ``stacks`` out of a loaded result (their files' findings so far are kept).

    When one side of a comparison lacks a stack's key, the other side must lose that stack too,
    or the policy engine would see its credentials appear or disappear.
    """
    gone = set(stacks)
    result.records = {p: r for p, r in result.records.items() if r.stack not in gone}
    result.stacks = {name: s for name, s in result.stacks.items() if name not in gone}


def _sops_config(root: Path, source: Source) -> sopsconfig.SopsConfig:
    if isinstance(source, GitSource):
        text = source.read_text_file(".sops.yaml")
        if text is None:
            raise RepositoryError(
                f".sops.yaml is missing at {source.ref}",
                "Commit a .sops.yaml with a creation rule per stack.",
            )
        return sopsconfig.parse(text.decode("utf-8", "replace"), root / ".sops.yaml")
    return sopsconfig.load(root)


def _check_config(config: sopsconfig.SopsConfig, report: _Reporter) -> None:
    for rule in config.rules:
        if rule.path_regex and CREDENTIALS_DIR in rule.path_regex:
            if rule.encrypted_regex != sopsconfig.ENCRYPTED_REGEX:
                report.add(
                    ".sops.yaml",
                    "encrypted",
                    f"{rule.describe()} has encrypted_regex {rule.encrypted_regex!r}; keyops "
                    f"requires {sopsconfig.ENCRYPTED_REGEX!r} so that secrets are encrypted and "
                    "lifecycle fields stay readable",
                    f"$.creation_rules[{rule.index}].encrypted_regex",
                    line=rule.line,
                )
            if not rule.recipients:
                report.add(
                    ".sops.yaml",
                    "recipients",
                    f"{rule.describe()} lists no recipients (age, kms, …)",
                    f"$.creation_rules[{rule.index}]",
                    line=rule.line,
                )


def _walk_leaves(node: Any, pointer: str) -> Iterable[tuple[str, str | None, Any]]:
    """Yield (pointer, parent key, value) for every scalar leaf."""
    if isinstance(node, dict):
        for key, value in node.items():
            child = yamlload.child_pointer(pointer, str(key))
            if isinstance(value, (dict, list)):
                yield from _walk_leaves(value, child)
            else:
                yield child, str(key), value
    elif isinstance(node, list):
        for index, value in enumerate(node):
            child = yamlload.child_pointer(pointer, index)
            if isinstance(value, (dict, list)):
                yield from _walk_leaves(value, child)
            else:
                yield child, None, value


def _is_enc(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("ENC[") and value.endswith("]")


def _static_checks(record: FileRecord, config: sopsconfig.SopsConfig, report: _Reporter) -> None:
    assert record.doc is not None
    data: dict[str, Any] = record.doc.data
    meta = data.get("sops")
    body = {k: v for k, v in data.items() if k != "sops"}
    has_meta = isinstance(meta, dict)
    clear_secrets = 0
    for pointer, key, value in _walk_leaves(body, "$"):
        if key in sopsconfig.ENCRYPTED_FIELDS:
            if not _is_enc(value):
                clear_secrets += 1
                if has_meta:
                    report.add(
                        record,
                        "encrypted",
                        f"{key!r} is in clear text next to sops metadata (a partially encrypted "
                        f"file): the value is exposed. Restore the file from git (git checkout "
                        f"-- {record.relpath}), set the value with `sops edit {record.relpath}`, "
                        "and rotate the credential if the clear value was ever committed",
                        pointer,
                    )
        elif _is_enc(value):
            report.add(
                record,
                "encrypted",
                f"{key or 'this value'!r} is encrypted but only "
                f"{', '.join(sorted(sopsconfig.ENCRYPTED_FIELDS))} may be, so lifecycle metadata "
                "stays readable in diffs; re-encrypt the file under the .sops.yaml creation rule "
                f"(encrypted_regex {sopsconfig.ENCRYPTED_REGEX!r})",
                pointer,
            )
    if not has_meta:
        what = "the file is not sops-encrypted (it has no sops metadata)"
        if clear_secrets:
            what += f" and holds {clear_secrets} secret value(s) in clear text"
        report.add(
            record,
            "encrypted",
            f"{what}; encrypt it: sops encrypt -i {record.relpath}. If it was ever committed, "
            "treat its secrets as exposed and rotate them",
        )
        return
    assert isinstance(meta, dict)
    if not _is_enc(meta.get("mac")):
        report.add(
            record,
            "encrypted",
            "the sops metadata has no MAC, so tampering cannot be detected; re-encrypt the file "
            "with sops",
            "$.sops.mac",
        )
    regex = meta.get("encrypted_regex")
    if regex != sopsconfig.ENCRYPTED_REGEX:
        report.add(
            record,
            "encrypted",
            f"the file was encrypted with encrypted_regex {regex!r}; keyops requires "
            f"{sopsconfig.ENCRYPTED_REGEX!r}. Re-encrypt it under the .sops.yaml creation rule",
            "$.sops.encrypted_regex",
        )
    # sops would only fail on a clear value with a vaguer message than the one above.
    record.decryptable = _is_enc(meta.get("mac")) and not clear_secrets
    _recipient_checks(record, meta, config, report)


def _recipient_checks(
    record: FileRecord, meta: dict[str, Any], config: sopsconfig.SopsConfig, report: _Reporter
) -> None:
    rules = config.rules_for(record.relpath)
    if not rules:
        report.add(
            record,
            "recipients",
            f"no creation rule in .sops.yaml matches {record.relpath}; add a rule for "
            f"{CREDENTIALS_DIR}/{record.stack}/ (see README: Adding a stack)",
            "$.sops",
        )
        return
    if len(rules) > 1:
        names = " and ".join(r.describe() for r in rules)
        report.add(
            record,
            "recipients",
            f"{record.relpath} is matched by {names}; sops would use the first, so reordering "
            "would change who can decrypt. Make the path_regex patterns disjoint",
            "$.sops",
        )
        return
    rule = rules[0]
    have = set(metadata_recipients(meta).entries)
    want = set(rule.recipients)
    record.recipients_mismatch = have != want
    for missing in sorted(want - have):
        report.add(
            record,
            "recipients",
            f"{missing} is a recipient in {rule.describe()} but the file is not encrypted to it "
            f"(stale after a key change?); run: sops updatekeys {record.relpath}",
            "$.sops",
        )
    for extra in sorted(have - want):
        report.add(
            record,
            "recipients",
            f"the file is encrypted to {extra}, which {rule.describe()} does not list (copied "
            f"from another stack, or a removed key?); run: sops updatekeys {record.relpath}",
            "$.sops",
        )


def _decrypt_all(
    runner: Sops,
    todo: list[FileRecord],
    report: _Reporter,
    progress: ProgressHook | None,
) -> list[FileRecord]:
    """Decrypt every file once; return the files no key here can open."""
    items = [(r.relpath, r.raw) for r in todo]
    hook = progress
    outcomes = runner.decrypt_many(
        items, on_done=(lambda done, total: hook("decrypting", done, total)) if hook else None
    )
    missing_key: list[FileRecord] = []
    for record in todo:
        outcome = outcomes[record.relpath]
        if isinstance(outcome, NoDecryptionKey):
            # A file encrypted to the wrong recipients is already reported as such; not
            # holding *their* key is expected and must not hide the other files' findings.
            if not record.recipients_mismatch:
                missing_key.append(record)
        elif isinstance(outcome, SopsFileError):
            message = outcome.render().removeprefix("error: ").removeprefix(record.relpath + ": ")
            report.add(record, "encrypted", message)
        elif isinstance(outcome, KeyopsError):
            raise outcome
        else:
            try:
                plain = json.loads(outcome)
            except ValueError:
                report.add(record, "schema", "decrypted content is not a JSON-compatible mapping")
                continue
            record.plain = plain if isinstance(plain, dict) else None
    return missing_key


def _schema_checks(record: FileRecord, report: _Reporter, *, strict: bool) -> None:
    document = record.content()
    name = schemas.STACK_SCHEMA if record.kind == "stack" else schemas.CREDENTIAL_SCHEMA
    stem = record.stack if record.kind == "stack" else record.stem
    problems = schemas.validate(document, name, strict=strict, file_stem=stem)
    for pointer, message in problems:
        report.add(record, "schema", message, pointer)
    record.schema_ok = not problems


def _cross_file_checks(result: LoadResult, report: _Reporter, stacks: Iterable[str] | None) -> None:
    seen_ids: dict[tuple[str, str], tuple[str, str]] = {}
    for record in result.records.values():
        document = record.content()
        if not document:
            continue
        if record.kind == "stack":
            _stack_file_checks(record, document, report)
            continue
        for index, item in enumerate(document.get("credentials") or []):
            if not isinstance(item, dict) or not isinstance(item.get("id"), str):
                continue
            pointer = f"$.credentials[{index}]"
            ident = (record.stack, item["id"])
            if ident in seen_ids:
                other_path, other_pointer = seen_ids[ident]
                report.add(
                    record,
                    "schema",
                    f"duplicate credential id {item['id']!r}: also used at {other_path}::"
                    f"{other_pointer}; ids are unique within a stack, give this one a new id",
                    f"{pointer}.id",
                )
            else:
                seen_ids[ident] = (record.relpath, pointer)
            _date_order(record, item, pointer, report)
        kids: dict[str, int] = {}
        auth = document.get("app_auth") or []
        for index, item in enumerate(auth):
            if isinstance(item, dict) and isinstance(item.get("kid"), str):
                if item["kid"] in kids:
                    report.add(
                        record,
                        "schema",
                        f"duplicate app_auth kid {item['kid']!r} (also at $.app_auth"
                        f"[{kids[item['kid']]}])",
                        f"$.app_auth[{index}].kid",
                    )
                kids.setdefault(item["kid"], index)
        if document.get("delivery") == "served" and isinstance(auth, list):
            if auth and not any(isinstance(a, dict) and a.get("state") == "active" for a in auth):
                report.add(
                    record,
                    "schema",
                    "a served client needs one active app_auth entry, or its apps cannot "
                    "authenticate to the endpoint",
                    "$.app_auth",
                )


def _stack_file_presence(result: LoadResult, report: _Reporter, entries: list[Entry]) -> None:
    """Each validated stack needs its stack file, even when only some files were selected."""
    present = {_stack_of(e.relpath) for e in entries if e.relpath.endswith("/" + STACK_FILE)}
    for stack in sorted({record.stack for record in result.records.values()}):
        if stack and stack not in present:
            report.add(
                f"{CREDENTIALS_DIR}/{stack}/{STACK_FILE}",
                "schema",
                f"stack {stack!r} has no stack file; create {CREDENTIALS_DIR}/{stack}/{STACK_FILE} "
                "with the stack's signing key (see README: Adding a stack)",
            )


_DATE_ORDER = ("created", "activated", "retiring_since", "retired")


def _date_order(record: FileRecord, item: dict[str, Any], pointer: str, report: _Reporter) -> None:
    dates = [(name, parse_date(item.get(name))) for name in _DATE_ORDER]
    present = [(name, value) for name, value in dates if value is not None]
    for (first, a), (second, b) in itertools.pairwise(present):
        if b < a:
            report.add(
                record,
                "schema",
                f"{second} ({b}) is before {first} ({a}); dates must follow the lifecycle order "
                "created ≤ activated ≤ retiring_since ≤ retired",
                f"{pointer}.{second}",
            )
    created = parse_date(item.get("created"))
    revoked = parse_date(item.get("revoked"))
    if created and revoked and revoked < created:
        report.add(
            record,
            "schema",
            f"revoked ({revoked}) is before created ({created})",
            f"{pointer}.revoked",
        )


def _stack_file_checks(record: FileRecord, document: dict[str, Any], report: _Reporter) -> None:
    keys = [k for k in document.get("signing_keys") or [] if isinstance(k, dict)]
    active = [k for k in keys if k.get("state") == "active"]
    if keys and len(active) != 1:
        report.add(
            record,
            "schema",
            f"exactly one signing key must be active, found {len(active)}",
            "$.signing_keys",
        )
    seen: set[str] = set()
    for index, item in enumerate(keys):
        kid = item.get("kid")
        if isinstance(kid, str):
            if kid in seen:
                report.add(
                    record,
                    "schema",
                    f"duplicate signing kid {kid!r}",
                    f"$.signing_keys[{index}].kid",
                )
            seen.add(kid)
        jwk_text = item.get("private_jwk")
        if record.plain is not None and isinstance(jwk_text, str):
            problem = _jwk_problem(jwk_text)
            if problem:
                report.add(record, "schema", problem, f"$.signing_keys[{index}].private_jwk")


def _jwk_problem(text: str) -> str | None:
    try:
        data = json.loads(text)
    except ValueError:
        return "private_jwk is not valid JSON"
    if not isinstance(data, dict):
        return "private_jwk must be a JSON object"
    if data.get("kty") != "EC" or data.get("crv") != "P-256":
        return "private_jwk must be an EC key on curve P-256 (ES256)"
    if not all(isinstance(data.get(f), str) for f in ("x", "y", "d")):
        return "private_jwk must be a private key with x, y and d"
    from joserfc.errors import JoseError
    from joserfc.jwk import ECKey

    try:
        ECKey.import_key(data)
    except (JoseError, ValueError) as exc:
        return f"private_jwk is not a valid P-256 key ({type(exc).__name__})"
    return None


def build_models(result: LoadResult) -> None:
    for record in result.records.values():
        document = record.content()
        stack = result.stacks.setdefault(record.stack, Stack(name=record.stack))
        if not document or not record.schema_ok:
            continue
        if record.kind == "stack":
            stack.stack_file = StackFile.from_dict(record.relpath, record.stack, document)
        else:
            stack.clients[record.stem] = ClientFile.from_dict(
                record.relpath, record.stack, document
            )
