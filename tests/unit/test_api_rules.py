"""The API's pure rules: webhook URLs (SSRF), batch templates and CSV, the token bucket."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress

import pytest

from api.batching import parse_template, rows_from_csv
from api.ratelimit import RateLimiter
from api.webhooks import address_allowed, check_url, sign
from studio.apikeys import hash_token
from studio.errors import InvalidRecipe


@pytest.mark.parametrize(
    "url",
    ["https://hooks.example.com/atelier", "https://example.co.uk:8443/x?y=1", "https://93.184.216.34/hook"],
)
def test_public_https_webhooks_are_accepted(url: str) -> None:
    assert check_url(url) == url


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://hooks.example.com/x", "https://"),
        ("ftp://example.com/x", "https://"),
        ("https://127.0.0.1/x", "this machine"),
        ("https://localhost:8080/x", "this machine"),
        ("https://[::1]/x", "this machine"),
        ("https://10.0.0.8/x", "private"),
        ("https://192.168.1.1/x", "private"),
        ("https://169.254.169.254/latest/meta-data/", "private"),
        ("https://100.64.0.1/x", "private"),
        ("https://[::ffff:10.0.0.1]/x", "private"),
        ("https://[fe80::1]/x", "private"),
        ("https://0.0.0.0/x", "private"),
        ("https://2130706433/x", "public host name"),
        ("https://0x7f.1/x", "public host name"),
        ("https://metadata.google.internal/x", "public host name"),
        ("https://printer.local/x", "public host name"),
        ("https://intranet/x", "public host name"),
        ("https://a:b@example.com/x", "credentials"),
        ("https://example.com:99999/x", "not a valid URL"),
        ("https://exa mple.com/x", "spaces"),
        ("https:///x", "no host"),
    ],
)
def test_internal_or_odd_webhooks_are_refused(url: str, why: str) -> None:
    with pytest.raises(InvalidRecipe, match=why):
        check_url(url)


def test_loopback_is_allowed_only_when_the_operator_says_so() -> None:
    assert check_url("http://127.0.0.1:9000/hook", allow_loopback=True) == "http://127.0.0.1:9000/hook"
    assert check_url("http://localhost/hook", allow_loopback=True) == "http://localhost/hook"
    with pytest.raises(InvalidRecipe):
        check_url("http://10.0.0.1/hook", allow_loopback=True)
    assert address_allowed(ipaddress.ip_address("127.0.0.1"), allow_loopback=True)
    assert not address_allowed(ipaddress.ip_address("127.0.0.1"))
    assert not address_allowed(ipaddress.ip_address("224.0.0.1"))


def test_signatures_and_token_hashes() -> None:
    assert sign("k", b"{}") == "sha256=" + hmac.new(b"k", b"{}", hashlib.sha256).hexdigest()
    assert sign("k", b"{}") != sign("k", b"{ }") and sign("k", b"{}") != sign("j", b"{}")
    assert hash_token("atl_x") == hashlib.sha256(b"atl_x").hexdigest()


def test_templates_fill_rows_and_name_what_is_missing() -> None:
    template = parse_template("a portrait of {name} in {city}, {{not a variable}}")
    assert template.variables == ("name", "city")
    assert template.fill({"name": "Ada", "city": "Paris", "extra": 1}, 1) == (
        "a portrait of Ada in Paris, {not a variable}"
    )
    assert parse_template("{n} x {n}").fill({"n": 2.0}, 1) == "2 x 2"
    with pytest.raises(InvalidRecipe, match="Row 3 has no value for `city`"):
        template.fill({"name": "Lin", "city": ""}, 3)
    for bad in ("{a.b}", "{a[0]}", "{}", "{0}", "{a!r}", "{a:>10}", "{a", "a}"):
        with pytest.raises(InvalidRecipe):
            parse_template(bad)


def test_csv_rows() -> None:
    assert rows_from_csv("\ufeffname, city\nAda,Paris\nLin\n") == [
        {"name": "Ada", "city": "Paris"},
        {"name": "Lin", "city": None},
    ]
    with pytest.raises(InvalidRecipe, match="no rows"):
        rows_from_csv("name,city\n")
    with pytest.raises(InvalidRecipe, match="line"):
        rows_from_csv('name\n"open')


def test_token_bucket() -> None:
    now = [0.0]
    limiter = RateLimiter(60, 3, clock=lambda: now[0])  # one a second, bursts of three
    assert [limiter.take("k") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("k") == pytest.approx(1.0)
    assert limiter.take("other") == 0.0  # buckets are per key
    now[0] = 1.0
    assert limiter.take("k") == 0.0 and limiter.take("k") > 0
