"""Reading ``.sops.yaml``: which creation rule governs which credential file.

keyops needs to answer, without any decryption key: which rule would sops apply to this path,
and do the file's recipients match it? sops itself applies the *first* matching rule; keyops is
stricter and treats a path matched by several rules as an error, because reordering rules would
then silently change who can decrypt.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from keyops.core.errors import RepositoryError

#: docs/file-format.md: lifecycle metadata stays readable in diffs; secrets do not.
ENCRYPTED_REGEX = "^(key|secret|encryption_master_key|private_jwk)$"
ENCRYPTED_FIELDS = frozenset({"key", "secret", "encryption_master_key", "private_jwk"})

_RECIPIENT_FIELDS = {
    "age": "age",
    "kms": "kms",
    "pgp": "pgp",
    "gcp_kms": "gcp_kms",
    "hc_vault_transit_uri": "hc_vault",
    "azure_keyvault": "azure_kv",
}


@dataclass(frozen=True)
class CreationRule:
    index: int
    path_regex: str | None
    encrypted_regex: str | None
    recipients: frozenset[str]
    line: int | None

    def matches(self, relpath: str) -> bool:
        if self.path_regex is None:
            return True
        return re.search(self.path_regex, relpath) is not None

    def describe(self) -> str:
        return f"creation rule #{self.index + 1} (path_regex {self.path_regex!r})"


@dataclass(frozen=True)
class SopsConfig:
    path: Path
    rules: tuple[CreationRule, ...]

    def rules_for(self, relpath: str) -> list[CreationRule]:
        return [rule for rule in self.rules if rule.matches(relpath)]


def _split(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.replace("\n", ",").split(",") if part.strip()]
    if isinstance(value, list):
        out: list[str] = []
        for item in value:
            out.extend(_split(item) if isinstance(item, str) else [])
            if isinstance(item, dict):
                # key_groups entries: {"arn": ...} for kms, plain strings for age/pgp.
                for field in ("arn", "recipient", "fp", "resource_id", "vault_url"):
                    if isinstance(item.get(field), str):
                        out.append(item[field])
        return out
    return []


def _recipients(rule: dict[str, Any]) -> frozenset[str]:
    found: set[str] = set()
    sources: list[dict[str, Any]] = [rule]
    groups = rule.get("key_groups")
    if isinstance(groups, list):
        sources.extend(g for g in groups if isinstance(g, dict))
    for source in sources:
        for field, kind in _RECIPIENT_FIELDS.items():
            for value in _split(source.get(field)):
                found.add(f"{kind}:{value}")
    return frozenset(found)


def load(root: Path) -> SopsConfig:
    path = root / ".sops.yaml"
    if not path.is_file():
        raise RepositoryError(
            f"{path} is missing: sops needs a creation rule for each stack",
            "Create .sops.yaml with one creation rule per credentials/<stack>/ directory "
            "(see README: Adding a stack).",
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RepositoryError(f".sops.yaml cannot be read: {exc}", "Fix the file.") from exc
    return parse(text, path)


def parse(text: str, path: Path) -> SopsConfig:
    """Parse the text of a ``.sops.yaml`` (from disk or from a git revision)."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RepositoryError(
            f".sops.yaml cannot be read as YAML: {exc}", "Fix its syntax."
        ) from exc
    rules_data = data.get("creation_rules") if isinstance(data, dict) else None
    if not isinstance(rules_data, list):
        raise RepositoryError(
            ".sops.yaml has no creation_rules list", "Add a creation rule per stack."
        )
    lines: list[int | None] = []
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if key_node.value == "creation_rules" and isinstance(value_node, yaml.SequenceNode):
                lines = [item.start_mark.line + 1 for item in value_node.value]
    rules = []
    for index, raw in enumerate(rules_data):
        if not isinstance(raw, dict):
            raise RepositoryError(
                f".sops.yaml creation rule #{index + 1} is not a mapping", "Fix its syntax."
            )
        regex = raw.get("path_regex")
        if regex is not None:
            try:
                re.compile(str(regex))
            except re.error as exc:
                raise RepositoryError(
                    f".sops.yaml creation rule #{index + 1} has an invalid path_regex: {exc}",
                    "Fix the regular expression.",
                ) from exc
        rules.append(
            CreationRule(
                index=index,
                path_regex=None if regex is None else str(regex),
                encrypted_regex=raw.get("encrypted_regex"),
                recipients=_recipients(raw),
                line=lines[index] if index < len(lines) else None,
            )
        )
    return SopsConfig(path=path, rules=tuple(rules))


# -- adding a stack's rule (keyops stack add) ----------------------------------------------------


def stack_path_regex(stack: str) -> str:
    """The ``path_regex`` of a stack's creation rule: its files, and nothing below them."""
    return rf"^credentials/{re.escape(stack)}/[^/]+\.yaml$"


def with_stack_rule(
    text: str, stack: str, age: list[str], kms: list[str], path: Path
) -> tuple[str, str]:
    """``.sops.yaml`` text with a creation rule for ``stack``, and what was done (for the user).

    The rule is appended, keeping every comment and the order of the others; a rule that already
    names exactly this stack's path (a placeholder written before the stack existed) gets the
    new recipients instead. Any other rule that matches the stack's files is refused: sops would
    apply whichever comes first, so who can decrypt would depend on the order of the file.
    """
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap, CommentedSeq
    from ruamel.yaml.error import YAMLError

    config = parse(text, path)
    probes = (f"credentials/{stack}/_stack.yaml", f"credentials/{stack}/client.yaml")
    matching = [r for r in config.rules if any(r.matches(p) for p in probes)]
    regex = stack_path_regex(stack)
    foreign = [r for r in matching if r.path_regex != regex]
    if foreign:
        raise RepositoryError(
            f".sops.yaml {foreign[0].describe()} already matches the files of stack {stack!r}",
            "sops applies the first rule that matches; narrow or remove that rule so each stack "
            "has exactly one, then run keyops stack add again.",
        )
    yaml = YAML(typ="rt")
    yaml.width = 4096
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    try:
        tree = yaml.load(text)
    except YAMLError as exc:  # parse() above already read it; a ruamel-only quirk
        raise RepositoryError(f".sops.yaml cannot be edited: {exc}", "Fix its syntax.") from None
    rules: CommentedSeq = tree["creation_rules"]
    rule: CommentedMap
    if matching:
        rule = rules[matching[0].index]
        done = f"replaced the recipients of the existing {matching[0].describe()}"
    else:
        rule = CommentedMap()
        rule["path_regex"] = regex
        rules.fa.set_block_style()
        rules.append(rule)
        rules.yaml_set_comment_before_after_key(
            len(rules) - 1, before=f"{stack}: added by keyops stack add", indent=2
        )
        done = f"added creation rule #{len(rules)} for credentials/{stack}/"
    rule["encrypted_regex"] = ENCRYPTED_REGEX
    for field, values in (("kms", kms), ("age", age)):
        if values:
            rule[field] = ",".join(values)
        elif field in rule:
            del rule[field]
    out = io.StringIO()
    yaml.dump(tree, out)
    new_text = out.getvalue()
    rule_now = parse(new_text, path).rules_for(probes[0])
    expected = frozenset({*(f"age:{a}" for a in age), *(f"kms:{k}" for k in kms)})
    if len(rule_now) != 1 or rule_now[0].recipients != expected:
        raise RepositoryError(  # pragma: no cover - a ruamel regression, not user input
            ".sops.yaml could not be edited to the intended rule", "Report this as a bug."
        )
    return new_text, done
