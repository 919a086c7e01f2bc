"""Channel auth from the keyring, checked against the official `pusher` Python library."""

from __future__ import annotations

import datetime as dt
import json

import pusher
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keyops.build.keyring import build_keyring
from keyops.core.errors import InputError
from keyops.core.model import ClientFile, Credential, Stack
from keyops.pusher.channel_auth import sign_channel
from keyops.store import sample

D = dt.date.fromisoformat


def rotating_stack() -> Stack:
    """iOS mid-rotation (pending, active, retiring, retired, revoked) and a server client."""
    ios = sample.client_document(
        "ios",
        "ios",
        "served",
        [
            sample.credential("ios-2026-12", "pending", D("2026-12-01")),
            sample.credential("ios-2026-11", "active", D("2026-11-01"), activated=D("2026-11-03")),
            sample.credential(
                "ios-2026-05",
                "retiring",
                D("2026-05-02"),
                activated=D("2026-05-04"),
                retiring_since=D("2026-11-03"),
            ),
            sample.credential(
                "ios-2025-11",
                "retired",
                D("2025-11-02"),
                activated=D("2025-11-04"),
                retiring_since=D("2026-05-04"),
                retired=D("2026-06-10"),
            ),
            sample.credential(
                "ios-2025-05",
                "revoked",
                D("2025-05-02"),
                revoked=D("2025-06-01"),
                reason="leaked",
                incident="INC-1",
            ),
        ],
        app_id="1874221",
        cluster="eu",
    )
    server = sample.client_document(
        "server",
        "server",
        "secret-store",
        [
            sample.credential(
                "server-2026-01", "active", D("2026-01-12"), activated=D("2026-01-13")
            ),
        ],
        app_id="1874222",
        cluster="eu",
    )
    stack = Stack(name="dev")
    for name, doc in (("ios", ios), ("server", server)):
        stack.clients[name] = ClientFile.from_dict(f"credentials/dev/{name}.yaml", "dev", doc)
    return stack


STACK = rotating_stack()
KEYRING = build_keyring(STACK)
LIVE = [c for client in STACK.clients.values() for c in client.credentials if c.live]


def test_keyring_holds_every_live_key_and_nothing_else() -> None:
    assert KEYRING["stack"] == "dev"
    assert sorted(e["credential_id"] for e in KEYRING["keys"].values()) == [
        "ios-2026-05",
        "ios-2026-11",
        "ios-2026-12",
        "server-2026-01",
    ]
    entry = KEYRING["keys"][STACK.clients["ios"].credentials[2].key]
    assert entry == {
        "secret": STACK.clients["ios"].credentials[2].secret,
        "app_id": "1874221",
        "cluster": "eu",
        "client": "ios",
        "credential_id": "ios-2026-05",
        "state": "retiring",
    }


@pytest.mark.parametrize("cred", LIVE, ids=lambda c: c.id)
def test_private_and_presence_match_the_official_library(cred: Credential) -> None:
    app_id = KEYRING["keys"][cred.key]["app_id"]
    official = pusher.Pusher(app_id=app_id, key=cred.key, secret=cred.secret, cluster="eu")
    expected = official.authenticate(channel="private-orders", socket_id="1234.5678")
    assert sign_channel(KEYRING, "1234.5678", "private-orders", cred.key) == expected["auth"]
    data = {"user_id": "42", "user_info": {"name": "Ada"}}
    expected = official.authenticate(channel="presence-room", socket_id="99.1", custom_data=data)
    mine = sign_channel(KEYRING, "99.1", "presence-room", cred.key, expected["channel_data"])
    assert mine == expected["auth"]
    assert json.loads(expected["channel_data"]) == data


@settings(max_examples=60, deadline=None)
@given(
    socket=st.tuples(st.integers(0, 10**12), st.integers(0, 10**12)).map(
        lambda t: f"{t[0]}.{t[1]}"
    ),
    name=st.text("abcXYZ019-_=@,.;", min_size=1, max_size=60),
    index=st.integers(0, len(LIVE) - 1),
)
def test_any_channel_and_socket_match_the_official_library(
    socket: str, name: str, index: int
) -> None:
    cred = LIVE[index]
    channel = f"private-{name}"
    official = pusher.Pusher(app_id="1", key=cred.key, secret=cred.secret)
    expected = official.authenticate(channel=channel, socket_id=socket)["auth"]
    assert sign_channel(KEYRING["keys"], socket, channel, str(cred.key)) == expected


def test_each_key_signs_with_its_own_secret() -> None:
    old, new = (c for c in LIVE if c.id in ("ios-2026-05", "ios-2026-11"))
    a = sign_channel(KEYRING, "1.2", "private-x", str(old.key))
    b = sign_channel(KEYRING, "1.2", "private-x", str(new.key))
    assert a.split(":")[0] == old.key and b.split(":")[0] == new.key
    assert a.split(":")[1] != b.split(":")[1]


def test_retired_and_revoked_keys_are_refused() -> None:
    for cred in STACK.clients["ios"].credentials[3:]:
        with pytest.raises(InputError) as caught:
            sign_channel(KEYRING, "1.2", "private-x", str(cred.key))
        assert caught.value.render() == (
            "error: the connecting key is not in the keyring (unknown, retired or revoked). "
            "Refuse the subscription (HTTP 403); redeploy the keyring if the key is new."
        )
        assert str(cred.secret) not in caught.value.render()


@pytest.mark.parametrize(
    ("socket", "channel", "data", "message"),
    [
        ("abc", "private-x", None, "error: invalid socket id 'abc'"),
        ("1.2", "public-news", None, "error: channel 'public-news' needs no authorization"),
        ("1.2", "private-a b", None, "error: invalid channel name 'private-a b'"),
        ("1.2", "presence-x", None, "error: presence channels need channel_data"),
    ],
)
def test_bad_requests_are_refused(
    socket: str, channel: str, data: str | None, message: str
) -> None:
    with pytest.raises(InputError) as caught:
        sign_channel(KEYRING, socket, channel, str(LIVE[0].key), data)
    assert caught.value.render().startswith(message + ".")


def test_keyring_refuses_an_undecrypted_stack() -> None:
    doc = sample.client_document(
        "web",
        "web",
        "bundled",
        [
            {
                "id": "web-2026-06",
                "state": "active",
                "key": "ENC[AES256_GCM,data:x]",
                "secret": "ENC[AES256_GCM,data:y]",
                "created": "2026-06-15",
                "activated": "2026-06-16",
            },
        ],
    )
    stack = Stack(
        name="dev", clients={"web": ClientFile.from_dict("credentials/dev/web.yaml", "dev", doc)}
    )
    with pytest.raises(InputError, match="credential web-2026-06 is not decrypted"):
        build_keyring(stack)
