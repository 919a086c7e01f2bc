"""keyops.endpoint.cors: what an allowed_origins entry may be, how Origin matches, the headers."""

from __future__ import annotations

import pytest

from keyops.endpoint import cors
from keyops.endpoint.cors import NO_ORIGINS, AllowedOrigins, Preflight

DEV_LIST = ["http://localhost:*", "https://app.dev.example.com"]
PROD_LIST = ["https://app.example.com", "https://admin.example.com:8443"]


# -- entries: valid anywhere, valid in dev only, never valid ---------------------------------------
@pytest.mark.parametrize(
    "entry",
    [
        "https://app.example.com",
        "https://admin.example.com:8443",
        "https://xn--bcher-kva.example",
        "https://10.0.0.7",
        "https://localhost:3000",
        "https://a",
    ],
)
def test_https_origins_are_valid_in_every_stack(entry: str) -> None:
    assert cors.entry_problem(entry, dev=False) is None
    assert cors.entry_problem(entry, dev=True) is None


@pytest.mark.parametrize(
    "entry",
    [
        "http://localhost:*",
        "http://localhost:5173",
        "http://localhost",
        "http://127.0.0.1:*",
        "http://127.0.0.1:8080",
        "http://[::1]:*",
        "http://[::1]:3000",
    ],
)
def test_http_loopback_origins_are_valid_in_dev_only(entry: str) -> None:
    assert cors.entry_problem(entry, dev=True) is None
    assert cors.entry_problem(entry, dev=False) == (
        f"{entry!r}: http:// origins are allowed only in a dev stack (test_stacks in "
        "policies/keyops.yaml); a deployed page must use https://"
    )


def test_http_for_another_host_is_refused_even_in_dev() -> None:
    assert cors.entry_problem("http://app.example.com", dev=True) == (
        "'http://app.example.com': http:// is allowed only for localhost, 127.0.0.1 and [::1] "
        "(pages on the developer's machine); use https://"
    )


WILDCARD_ONLY_LOOPBACK = (
    "uses the port wildcard ':*', which only http://localhost:* (or 127.0.0.1, [::1]) may "
    "use, in a dev stack; list each origin with its port"
)


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        (
            "*",
            "would let every web page call the endpoint from a browser; list each origin "
            "exactly, e.g. 'https://app.example.com'",
        ),
        (
            "null",
            "is the origin of sandboxed and file:// pages, which cannot be told apart; remove it",
        ),
        (
            "app.example.com",
            "is not an origin: write scheme://host[:port], e.g. 'https://app.example.com'",
        ),
        (
            "HTTPS://app.example.com",
            "must be lowercase, as browsers send it: 'https://app.example.com'",
        ),
        (
            "https://App.Example.com",
            "must be lowercase, as browsers send it: 'https://app.example.com'",
        ),
        (
            "ftp://files.example.com",
            "has the scheme 'ftp'; use https:// (or http:// for localhost in a dev stack)",
        ),
        (
            "https://app.example.com/",
            "has a path, which an origin never has: write 'https://app.example.com'",
        ),
        (
            "https://app.example.com/login",
            "has a path, which an origin never has: write 'https://app.example.com'",
        ),
        (
            "https://app.example.com?x=1",
            "has a query, which an origin never has: write 'https://app.example.com'",
        ),
        (
            "https://app.example.com#top",
            "has a fragment, which an origin never has: write 'https://app.example.com'",
        ),
        (
            "https://user@app.example.com",
            "has a user name, which an origin never has: write 'https://app.example.com'",
        ),
        (
            "https://app.example.com/x?y#z",
            "has a path, which an origin never has: write 'https://app.example.com'",
        ),
        (
            "https://app.example.com?next=/x",
            "has a query, which an origin never has: write 'https://app.example.com'",
        ),
        ("https://*.example.com", "has a wildcard in the host; list each origin exactly"),
        ("https://app.example.com:*", WILDCARD_ONLY_LOOPBACK),
        ("https://localhost:*", WILDCARD_ONLY_LOOPBACK),
        ("http://app.example.com:*", WILDCARD_ONLY_LOOPBACK),
        (
            "https://app.example.com:443",
            "names the default port :443, which browsers leave out of the Origin header, so it "
            "would never match: write 'https://app.example.com'",
        ),
        (
            "http://localhost:80",
            "names the default port :80, which browsers leave out of the Origin header, so it "
            "would never match: write 'http://localhost'",
        ),
        (
            "https://app.example.com:0",
            "has the port '0'; a port is a number from 1 to 65535 without leading zeros",
        ),
        (
            "https://app.example.com:08443",
            "has the port '08443'; a port is a number from 1 to 65535 without leading zeros",
        ),
        (
            "https://app.example.com:65536",
            "has the port '65536'; a port is a number from 1 to 65535 without leading zeros",
        ),
        (
            "https://app.example.com:",
            "has the port ''; a port is a number from 1 to 65535 without leading zeros",
        ),
        ("https://", "has no host"),
        ("https://:8443", "has no host"),
        (
            "https://[2001:db8::1]",
            "is an IPv6 literal; only [::1] is supported, use a host name",
        ),
        (
            "https://bücher.example",
            "has a non-ASCII host; write it in punycode (xn--...), as browsers send it",
        ),
        (
            "https://app_1.example.com",
            "has an invalid host name (letters, digits and '-' in dot-separated labels)",
        ),
        (
            "https://app.example.com.",
            "has an invalid host name (letters, digits and '-' in dot-separated labels)",
        ),
        (
            "https://-app.example.com",
            "has an invalid host name (letters, digits and '-' in dot-separated labels)",
        ),
        (
            "https://app.example.com\r\nx-injected: 1",
            "has an invalid host name (letters, digits and '-' in dot-separated labels)",
        ),
    ],
)
def test_invalid_entries_are_refused_everywhere_with_the_fix(entry: str, problem: str) -> None:
    for dev in (True, False):
        assert cors.entry_problem(entry, dev=dev) == f"{entry!r} {problem}"


def test_a_huge_or_non_string_entry_is_refused_without_echoing_it_whole() -> None:
    huge = "https://" + "a" * 10_000 + ".example"
    problem = cors.entry_problem(huge, dev=True)
    assert problem is not None and len(problem) < 500
    assert problem.endswith("is longer than 300 characters; an origin is scheme://host[:port]")
    assert (
        cors.entry_problem(8443, dev=True) == "must be a string such as 'https://app.example.com'"
    )
    assert (
        cors.entry_problem(None, dev=True) == "must be a string such as 'https://app.example.com'"
    )


def test_redundant_entries_are_named_with_their_index() -> None:
    assert cors.redundant(DEV_LIST) == []
    assert cors.redundant(
        [
            "https://app.example.com",
            "http://localhost:3000",
            "http://localhost:*",
            "https://app.example.com",
            "http://localhost",
            "http://127.0.0.1:3000",
            "http://localhost:*",
        ]
    ) == [
        (1, "'http://localhost:3000' is already allowed by 'http://localhost:*'; remove it"),
        (3, "'https://app.example.com' is listed twice; remove one"),
        (4, "'http://localhost' is already allowed by 'http://localhost:*'; remove it"),
        (6, "'http://localhost:*' is listed twice; remove one"),
    ]


# -- matching Origin headers ---------------------------------------------------------------------
def test_exact_entries_match_only_the_same_string() -> None:
    allowed = AllowedOrigins.of(PROD_LIST)
    assert allowed.allows("https://app.example.com")
    assert allowed.allows("https://admin.example.com:8443")
    for origin in (
        "https://app.example.com:443",
        "https://APP.example.com",
        "http://app.example.com",
        "https://app.example.com/",
        "https://app.example.com.evil.test",
        "https://evilapp.example.com",
        "https://admin.example.com",
        "https://admin.example.com:8444",
        "https://app.example.com, https://evil.test",
        "null",
        "*",
        "",
        None,
    ):
        assert not allowed.allows(origin), origin


@pytest.mark.parametrize(
    "origin",
    ["http://localhost", "http://localhost:1", "http://localhost:5173", "http://localhost:65535"],
)
def test_the_port_wildcard_matches_every_port_of_that_host_as_browsers_write_it(
    origin: str,
) -> None:
    assert AllowedOrigins.of(DEV_LIST).allows(origin)


@pytest.mark.parametrize(
    "origin",
    [
        "http://localhost:0",
        "http://localhost:65536",
        "http://localhost:080",
        "http://localhost:80",  # browsers leave the default port out
        "http://localhost:",
        "http://localhost:*",
        "http://localhost:5173/",
        "http://localhost:5173 ",
        "http://localhost:5173\n",
        "http://localhost:٣٠٠٠",  # Arabic-Indic digits are digits to str.isdigit, not to us
        "http://localhost.evil.test:5173",
        "http://127.0.0.1:5173",  # another host: not covered by localhost's wildcard
        "https://localhost:5173",
        "http://[::1]:5173",
        "http://evil.test:5173",
    ],
)
def test_the_port_wildcard_matches_nothing_else(origin: str) -> None:
    assert not AllowedOrigins.of(DEV_LIST).allows(origin)


def test_entries_valid_nowhere_are_dropped_whatever_the_bundle_holds() -> None:
    allowed = AllowedOrigins.of(
        [
            "*",
            "null",
            "https://*.example.com",
            "https://app.example.com/",
            7,
            None,
            "https://ok.example",
        ]
    )
    assert allowed == AllowedOrigins(frozenset({"https://ok.example"}), frozenset())
    for origin in ("*", "null", "https://x.example.com", "https://app.example.com/"):
        assert not allowed.allows(origin)
    assert not AllowedOrigins.of([]) and not NO_ORIGINS and AllowedOrigins.of(DEV_LIST)


# -- the headers -----------------------------------------------------------------------------------
ALLOWED = AllowedOrigins.of(DEV_LIST)


def test_a_preflight_from_an_allowed_origin_answers_204_with_the_documented_headers() -> None:
    assert cors.preflight("OPTIONS", "/v1/credentials", "http://localhost:5173", ALLOWED) == (
        Preflight(
            204,
            {
                "access-control-allow-origin": "http://localhost:5173",
                "access-control-allow-methods": "GET",
                "access-control-allow-headers": "Authorization",
                "access-control-max-age": "7200",
                "vary": "Origin",
            },
        )
    )
    # The method is compared case-insensitively, as the core compares it.
    assert cors.preflight("options", "/v1/credentials", "https://app.dev.example.com", ALLOWED)


@pytest.mark.parametrize(
    ("method", "path", "origin"),
    [
        ("OPTIONS", "/v1/credentials", "https://evil.test"),  # not allowed: the usual 405
        ("OPTIONS", "/v1/credentials", None),
        ("OPTIONS", "/healthz", "http://localhost:5173"),  # only the credentials path
        ("OPTIONS", "/v1/credentials/", "http://localhost:5173"),
        ("GET", "/v1/credentials", "http://localhost:5173"),
    ],
)
def test_anything_else_is_not_a_preflight(method: str, path: str, origin: str | None) -> None:
    assert cors.preflight(method, path, origin, ALLOWED) is None


def test_answers_to_an_allowed_origin_expose_date_and_others_get_nothing() -> None:
    assert cors.response_headers("http://localhost:8080", ALLOWED) == {
        "access-control-allow-origin": "http://localhost:8080",
        "access-control-expose-headers": "Date",
        "vary": "Origin",
    }
    assert cors.response_headers("https://evil.test", ALLOWED) == {}
    assert cors.response_headers(None, ALLOWED) == {}
    assert cors.response_headers("http://localhost:8080", NO_ORIGINS) == {}


def test_with_cors_keeps_the_answers_headers_and_merges_vary() -> None:
    problem = {"content-type": "application/problem+json", "cache-control": "no-store"}
    assert cors.with_cors(problem, "http://localhost:8080", ALLOWED) == {
        **problem,
        "access-control-allow-origin": "http://localhost:8080",
        "access-control-expose-headers": "Date",
        "vary": "Origin",
    }
    assert cors.with_cors(problem, "https://evil.test", ALLOWED) == problem
    merged = cors.with_cors({"vary": "Accept"}, "http://localhost:8080", ALLOWED)
    assert merged["vary"] == "Accept, Origin"
    again = cors.with_cors({"vary": "accept, origin"}, "http://localhost:8080", ALLOWED)
    assert again["vary"] == "accept, origin"
