"""The pure lifecycle moves and the layout-keeping YAML merge behind every edit."""

from __future__ import annotations

import copy
import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keyops.core import lifecycle
from keyops.core.errors import UsageError
from keyops.store import edit, sample

D = dt.date.fromisoformat


def ios() -> dict:  # type: ignore[type-arg]
    return sample.dev_stack(D("2026-11-27"))["ios"]


def test_rotate_adds_pending_on_top_and_leaves_the_input_alone() -> None:
    doc = ios()
    frozen = copy.deepcopy(doc)
    new = lifecycle.rotate(
        doc,
        cred_id="ios-2026-12",
        key="a" * 20,
        secret="b" * 20,
        today=D("2026-12-01"),
        rollout_percent=5,
    )
    assert doc == frozen
    assert new["credentials"][0] == {
        "id": "ios-2026-12",
        "state": "pending",
        "key": "a" * 20,
        "secret": "b" * 20,
        "created": "2026-12-01",
        "rollout_percent": 5,
    }
    assert new["credentials"][1:] == doc["credentials"]


def test_promote_sets_dates_and_drops_the_rollout() -> None:
    doc = lifecycle.rotate(
        ios(),
        cred_id="ios-2026-12",
        key="a" * 20,
        secret="b" * 20,
        today=D("2026-12-01"),
        rollout_percent=50,
    )
    new, demoted = lifecycle.promote(doc, lifecycle.pick_pending(doc, None), D("2026-12-05"))
    assert demoted == ["ios-2026-11"]
    first, second = new["credentials"][:2]
    assert first["state"] == "active" and first["activated"] == "2026-12-05"
    assert "rollout_percent" not in first
    assert list(second) == [
        "id",
        "state",
        "key",
        "secret",
        "created",
        "activated",
        "retiring_since",
    ]
    assert second["retiring_since"] == "2026-12-05"


def test_retire_and_revoke_set_their_fields() -> None:
    retired = lifecycle.retire(ios(), "ios-2026-05", D("2026-12-04"))
    assert retired["credentials"][1]["state"] == "retired"
    assert retired["credentials"][1]["retired"] == "2026-12-04"
    revoked = lifecycle.revoke(ios(), "ios-2026-11", D("2026-12-04"), "leaked", "INC-1")
    assert {
        k: revoked["credentials"][0][k] for k in ("state", "revoked", "reason", "incident")
    } == {"state": "revoked", "revoked": "2026-12-04", "reason": "leaked", "incident": "INC-1"}


def test_unknown_ids_and_ambiguity_are_usage_errors() -> None:
    with pytest.raises(UsageError) as caught:
        lifecycle.retire(ios(), "ios-1999-01", D("2026-12-04"))
    assert caught.value.render() == (
        "error: the file has no credential 'ios-1999-01'. Known ids: ios-2026-11, ios-2026-05."
    )
    doc = ios()
    for n in (1, 2):
        doc = lifecycle.rotate(
            doc, cred_id=f"ios-new-{n}", key=f"{n}" * 20, secret="c" * 20, today=D("2026-12-01")
        )
    with pytest.raises(
        UsageError, match=r"several credentials are pending \(ios-new-2, ios-new-1\)"
    ):
        lifecycle.pick_pending(doc, None)


def test_default_ids() -> None:
    assert lifecycle.default_id("ios", D("2026-12-01"), set()) == "ios-2026-12"
    taken = {"ios-2026-12", "ios-2026-12-2"}
    assert lifecycle.default_id("ios", D("2026-12-01"), taken) == "ios-2026-12-3"
    assert lifecycle.default_kid("ios", D("2026-01-01"), {"ios-build-2026a"}) == "ios-build-2026b"


@pytest.mark.parametrize(
    ("value", "shape"),
    [
        ("abc", "3 characters"),
        (" " + "a" * 20, "21 characters with surrounding whitespace"),
        ("A" * 20, "20 characters including upper-case letters"),
        ("g" * 20, "20 characters"),
    ],
)
def test_pusher_format_errors_describe_without_echoing(value: str, shape: str) -> None:
    with pytest.raises(UsageError) as caught:
        lifecycle.check_pusher_hex(value, "secret")
    assert caught.value.what == (
        f"the secret is not in Pusher's format: expected 20 lowercase hexadecimal characters, "
        f"got {shape}"
    )
    assert value.strip() not in caught.value.render()


ENCRYPTED = b"""# owner: team
client: ios   # the file stem
credentials:
    # newest first
    - id: ios-2026-11
      state: active
      key: ENC[AES256_GCM,data:AAAA,type:str]
      created: "2026-11-01"
      activated: "2026-11-03"
sops:
    mac: ENC[x]
"""


def test_render_keeps_comments_order_and_replaces_only_values() -> None:
    doc = {
        "client": "ios",
        "credentials": [
            {
                "id": "ios-2026-11",
                "state": "retiring",
                "key": "f" * 20,
                "created": "2026-11-01",
                "activated": "2026-11-03",
                "retiring_since": "2026-12-01",
            }
        ],
    }
    text = edit.render_plaintext(ENCRYPTED, doc).decode()
    assert text == (
        "# owner: team\n"
        "client: ios   # the file stem\n"
        "credentials:\n"
        "    # newest first\n"
        "- id: ios-2026-11\n"
        "  state: retiring\n"
        f"  key: {'f' * 20}\n"
        '  created: "2026-11-01"\n'
        '  activated: "2026-11-03"\n'
        "  retiring_since: '2026-12-01'\n"
    )


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text("abc-19", max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text("abcdef", min_size=1, max_size=3), inner, max_size=3)
    ),
    max_leaves=12,
)


@settings(deadline=None)
@given(
    old=st.dictionaries(st.text("abcdef", min_size=1, max_size=3), json_values, max_size=4),
    new=st.dictionaries(st.text("abcdef", min_size=1, max_size=3), json_values, max_size=4),
)
def test_merge_always_yields_the_new_document(old: dict, new: dict) -> None:  # type: ignore[type-arg]
    import io

    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    buf = io.StringIO()
    yaml.dump(old, buf)
    tree = yaml.load(buf.getvalue()) if old else None
    if tree is None:
        return
    edit.merge(tree, new)
    out = io.StringIO()
    yaml.dump(tree, out)
    assert YAML(typ="safe").load(out.getvalue()) == new
