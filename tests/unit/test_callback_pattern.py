"""The callback URL's published pattern is the whole rule of its form (validation.callback_url_pattern): whatever it
matches every front door takes, and its dotted quads are exactly the addresses the outbound rule lets a URL name,
with and without an operator's allowance. wa_queue/ip_pattern.py's ranges are checked number by number."""

from __future__ import annotations

import ipaddress
import random
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wa_queue.errors import ValidationError
from wa_queue.ip_pattern import ipv4_networks, number_range
from wa_queue.outbound import _IPV4_EDGES, NOTHING_ALLOWED, literal_problem, parse_allow, reachable_ipv4
from wa_queue.validation import MAX_CALLBACK_URL, callback_url_pattern, validate_callback_url, whole

ALLOWED = parse_allow(["127.0.0.1", "10.0.0.0/8", "192.168.1.0/28", "hooks.internal"])


@pytest.mark.parametrize(("low", "high"), [(0, 255), (0, 0), (7, 7), (0, 9), (10, 99), (7, 123), (100, 255),
                                           (199, 201), (250, 255), (64, 127), (0, 65535), (1, 65535)])
def test_number_range_matches_exactly_those_numbers_without_leading_zeros(low: int, high: int) -> None:
    form = re.compile(number_range(low, high) + r"\Z")
    assert [n for n in range(70_000) if form.match(str(n))] == list(range(low, high + 1))
    assert not any(form.match("0" + str(n)) for n in range(300))


@pytest.mark.parametrize("allow", [NOTHING_ALLOWED, ALLOWED], ids=["nothing allowed", "an allowance"])
def test_the_dotted_quads_are_the_addresses_the_outbound_rule_lets_a_url_name(allow) -> None:  # noqa: ANN001
    form = re.compile(ipv4_networks(reachable_ipv4(allow)) + r"\Z")
    rng = random.Random(7)
    numbers = [rng.getrandbits(32) for _ in range(20_000)]
    for edge in (*_IPV4_EDGES, *allow.networks):  # each side of every place the verdict may change
        first, last = int(edge.network_address), int(edge.broadcast_address)
        numbers += [n for n in (first - 1, first, last, last + 1) if 0 <= n < 2 ** 32]
    for number in numbers:
        address = str(ipaddress.IPv4Address(number))
        assert bool(form.match(address)) == (literal_problem(address, allow) is None), address


@pytest.mark.parametrize("allow", [NOTHING_ALLOWED, ALLOWED], ids=["nothing allowed", "an allowance"])
def test_whatever_the_pattern_matches_is_taken(allow) -> None:  # noqa: ANN001
    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.from_regex(whole(callback_url_pattern(allow))).filter(lambda url: len(url) <= MAX_CALLBACK_URL))
    def taken(url: str) -> None:
        assert validate_callback_url(url, allow) == url

    taken()


@pytest.mark.parametrize(("url", "words"), [
    ("HTTP://0", "not written as four decimal numbers"), ("http://0x7f.1/", "not written as four decimal numbers"),
    ("http://a.1/", "not written as four decimal numbers"), ("http://127.0.0.1:8080/", "must not point inward"),
    ("http://10.0.0.1/", "must not point inward"), ("http://localhost:99999/", "port of 0-65535"),
    ("http://" + "a" * 64 + ".example/", "cannot be encoded (IDNA"), ("ftp://x/", "http:// or https://"),
    ("http://[::1]/", "http:// or https://"),
])
def test_a_refusal_names_the_rule_the_url_breaks(url: str, words: str) -> None:
    with pytest.raises(ValidationError) as refused:
        validate_callback_url(url)
    assert refused.value.field == "callback_url" and words in str(refused.value), str(refused.value)
    assert not whole(callback_url_pattern()).match(url)
    if url.startswith("http://10."):
        assert validate_callback_url(url, ALLOWED) == url  # an allowance widens the pattern too
