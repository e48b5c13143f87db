"""The producer's phone rule (validation.validate_phone): PHONE_PATTERN is the whole of it, so what the published
schema accepts is what every front door accepts (a stock schemathesis run sends any string the pattern matches),
and how a number without + is read is a rule of lengths."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wa_queue.errors import ValidationError
from wa_queue.validation import (
    MAX_PHONE_CHARS,
    MAX_PHONE_DIGITS,
    MIN_PHONE_DIGITS,
    PHONE_PATTERN,
    validate_phone,
    whole,
)

E164 = re.compile(rf"\+[1-9][0-9]{{{MIN_PHONE_DIGITS - 1},{MAX_PHONE_DIGITS - 1}}}\Z")


@pytest.mark.parametrize(("written", "region", "e164"), [
    ("+1 (415) 555-0123", "US", "+14155550123"),
    ("415.555.0123", "US", "+14155550123"),  # a US number's length in the US: read as one
    ("1 415 555 0123", "US", "+14155550123"),  # the US's own country code first
    ("44 7911 123456", "US", "+447911123456"),  # no US number is that long: international without its +
    ("7911 123456", "GB", "+447911123456"),  # a UK mobile's national length in GB
    ("+44 (0)7911 123456", "US", "+447911123456"),  # the written "(0)" trunk after the country code is dropped
    ("+39 06 1234 5678", "US", "+390612345678"),  # ...but Italy's leading 0 is part of the number
    ("+1 000 000 0000", "US", "+10000000000"),  # no such range, yet possible: WhatsApp says at send time
    ("+999 123 4567", "US", "+9991234567"),  # a country code phonenumbers lacks stays as written
])
def test_the_written_forms_and_what_is_stored(written: str, region: str, e164: str) -> None:
    assert validate_phone(written, region) == e164


@pytest.mark.parametrize("written", ["0", "12345", "07911 123456", "+000000000000000000000000000000",
                                     "+1234567890123456", "tel:+14155550123", "+1 800 FLOWERS", "1 415 555 0123\n",
                                     "+1415555012\uff13", "+1 415 555 0123" + " " * 20, "", "++14155550123"])
def test_what_is_no_possible_number_is_refused_naming_phone(written: str) -> None:
    with pytest.raises(ValidationError) as refused:
        validate_phone(written)
    assert refused.value.field == "phone"
    assert "6-15 digits" in str(refused.value)


@settings(max_examples=500, deadline=None)
@given(st.from_regex(whole(PHONE_PATTERN)).filter(lambda text: len(text) <= MAX_PHONE_CHARS),
       st.sampled_from(["US", "GB", "DE", "IN", "BR", "AT"]))
def test_whatever_the_pattern_takes_is_accepted_as_e164(written: str, region: str) -> None:
    assert E164.match(validate_phone(written, region))
