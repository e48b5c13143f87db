"""Input rules shared by the Python API (wa_queue.enqueue), the REST API and the CLI: the one place that says what
a message's phone, text, session, idempotency key, callback URL, metadata, send window, schedule, expiry, priority
and batch may be.

Each rule is a function that returns the accepted value or raises errors.ValidationError naming the field, with the
same message whichever front door called it. The patterns and limits the REST API's OpenAPI document publishes are
the constants below (api/messages.py builds the document from them); the functions enforce them and what no pattern
can say (metadata's size and depth).
"""

from __future__ import annotations

import functools
import json
import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import phonenumbers

from wa_queue.errors import TimeConflict, ValidationError
from wa_queue.ip_pattern import ipv4_networks, number_range
from wa_queue.models import Category, Priority
from wa_queue.outbound import NOTHING_ALLOWED, AllowList, host_form_problem, literal_problem, reachable_ipv4
from wa_queue.send_window import SendWindow, check_opens, parse_window

MAX_BULK = 1000  # messages in one bulk request (REST's /messages/bulk): stored all or none

MAX_TEXT_CHARS = 4096  # the WhatsApp Cloud API's limit, adopted for every message
MAX_PHONE_CHARS = 32
MAX_CALLBACK_URL = 2048
MAX_METADATA_BYTES = 16 * 1024  # metadata is stored with every message; keep rows small
# Deep nesting stored once would make every later read of the row recurse that deep (and MongoDB refuses documents
# nested past 100 levels).
MAX_METADATA_DEPTH = 32
MAX_IDEMPOTENCY_KEY = 200
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]+$"  # printable ASCII, no spaces
# Python's str.isspace() (what str.strip() removes) spelled out: ECMA-262's \s, which OpenAPI tools read, differs.
_SPACE = r"\u0009-\u000d\u001c-\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
# A possible number, as every front door takes it: E.164's shape (an optional leading +, a first digit 1-9, 6-15
# digits in all), written with an opening ( before the first digit and up to two of space ( ) . - / between digits
# (+1 (415) 555-0123, +44 (0)20 7946 0958, 415.555.0123); no tel: prefix, no letters, no trunk 0 first. The pattern
# is the whole rule: whether a number exists is WhatsApp's to say at send time (an absent one fails as
# InvalidNumber, once), because phonenumbers' ranges lag the carriers' and a schema cannot carry them.
MIN_PHONE_DIGITS, MAX_PHONE_DIGITS = 6, 15  # Austria's shortest (+43 and 4 digits); E.164's longest
PHONE_PATTERN = f"^\\+?\\(?[1-9]([ ().\\-/]{{0,2}}[0-9]){{{MIN_PHONE_DIGITS - 1},{MAX_PHONE_DIGITS - 1}}}$"
# validate_text's rule: something besides whitespace, and no NUL character.
TEXT_PATTERN = f"^[{_SPACE}]*[^\\u0000{_SPACE}][^\\u0000]*$"
# A send window's start and end: 24-hour HH:MM with two digits each (send_window.parse_hh_mm's rule).
HH_MM_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"


# send_at and expires_at: an ISO 8601 date and time with its UTC offset (or Z); without one a time means nothing.
# RFC 3339's date-time (what OpenAPI's format says), narrowed to what Python reads: a year from 1000, no leap second,
# at most microseconds.
DATETIME_PATTERN = (r"^[1-9][0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
                    r"(\.[0-9]{1,6})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$")
MAX_DATETIME_CHARS = 40
MAX_TTL_S = 400 * 24 * 3600  # a bound any schedule fits (WAQ_MAX_SCHEDULE_DAYS counts days, not years)
PRIORITIES = tuple(p.value for p in Priority)
# What a producer may give; Category.OPT_OUT_REPLY is the system's own (inbound.py).
CATEGORIES = (Category.TRANSACTIONAL.value, Category.MARKETING.value)
# A batch's name: what a producer reads back in URLs and the CLI, so the characters of a path segment only.
BATCH_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
MAX_BATCH_CHARS = 64


# callback_url: http(s)://host[:port], then an optional path, query or fragment; no whitespace or control characters.
# The host is a name whose last label starts with a letter (so never an address in disguise: WHATWG reads a host
# whose last label is a number as IPv4, 2130706433 and 0x7f.1 included) of labels of 1-63 characters (IDNA's limit;
# its 253 in all is checked at delivery: a lookahead saying it makes schema tools crawl), or a dotted quad of an
# address the outbound rule lets a URL name (public, or allowed by WAQ_OUTBOUND_ALLOW). So the pattern is the whole
# rule of a callback URL's form, and it depends on the allowance: callback_url_pattern(allow) builds it, and the
# document publishes the running API's.
_SCHEME = "[Hh][Tt][Tt][Pp][Ss]?://"
_REST = f"([/?#][^\\u0000-\\u001f\\u007f{_SPACE}]*)?"  # path, query, fragment
_LABEL = "[A-Za-z0-9_-]"
_HOST_NAME = f"({_LABEL}{{1,63}}\\.)*[A-Za-z]{_LABEL}{{0,62}}\\.?"
_PORT = number_range(0, 65535)


@functools.lru_cache(maxsize=16)
def callback_url_pattern(allow: AllowList = NOTHING_ALLOWED) -> str:
    """The callback URL's pattern (anchored, OpenAPI's syntax) for an API whose WAQ_OUTBOUND_ALLOW is `allow`."""
    return f"^{_SCHEME}({_HOST_NAME}|{ipv4_networks(reachable_ipv4(allow))})(:{_PORT})?{_REST}$"


CALLBACK_URL_PATTERN = callback_url_pattern()  # with nothing allowed
# The shape alone (any labels, any 1-5 digit port), checked first so that the rules after it can say what is wrong
# in their own words.
_URL_SHAPE = re.compile(f"{_SCHEME}{_LABEL}+(\\.{_LABEL}+)*\\.?(:[0-9]{{1,5}})?{_REST}\\Z")


def whole(pattern: str) -> re.Pattern[str]:
    """`pattern` as OpenAPI reads it: its closing $ is the end of the string (Python's also allows a final \\n)."""
    return re.compile(pattern[:-1] + r"\Z")


_PHONE = whole(PHONE_PATTERN)
_IDEMPOTENCY_KEY = whole(IDEMPOTENCY_KEY_PATTERN)
_DATETIME = whole(DATETIME_PATTERN)
_BATCH = whole(BATCH_PATTERN)


def validate_phone(raw: object, default_region: str = "US") -> str:
    """A producer's number (PHONE_PATTERN, at most MAX_PHONE_CHARS) -> E.164.

    With a + it is international. Without one, a number as long as one of `default_region`'s is read as that
    region's (415 555 0123 in the US), any other as international written without its + (wa.me's form): a rule of
    lengths, never a guess from which ranges phonenumbers knows."""
    if not isinstance(raw, str):
        raise ValidationError("phone must be a string such as '+14155550123'", "phone")
    if not (len(raw) <= MAX_PHONE_CHARS and _PHONE.match(raw)):
        raise ValidationError(f"phone must be {MIN_PHONE_DIGITS}-{MAX_PHONE_DIGITS} digits 0-9, the first 1-9, with an "
                              "optional leading + or (, up to two of space ( ) . - / between digits, at most "
                              f"{MAX_PHONE_CHARS} characters: such as '+1 (415) 555-0123'", "phone")
    digits = "".join(ch for ch in raw if ch.isdigit())
    if not raw.startswith("+"):
        national = _parsed(raw, default_region)
        if national is not None and phonenumbers.is_possible_number_with_reason(national) == \
                phonenumbers.ValidationResult.IS_POSSIBLE:
            e164 = _e164(national)
            if e164:
                return e164
    # phonenumbers drops an Italian-style "(0)" after the country code and keeps the digits otherwise; a country
    # code it does not know stays as written.
    return _e164(_parsed("+" + digits, None)) or "+" + digits


def _e164(number: phonenumbers.PhoneNumber | None) -> str:
    """`number` in E.164, or "" when it is none or its digits are not E.164's 6-15."""
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164) if number is not None else ""
    return e164 if MIN_PHONE_DIGITS <= len(e164) - 1 <= MAX_PHONE_DIGITS else ""


def _parsed(text: str, region: str | None) -> phonenumbers.PhoneNumber | None:
    try:
        return phonenumbers.parse(text, region.upper() if region else None)
    except phonenumbers.NumberParseException:
        return None


def normalize_phone(raw: object, default_region: str = "US") -> str:
    """Any written form of an existing number (an operator's, e.g. `waq session open --phone`) -> E.164, refusing
    what phonenumbers does not know as a number. Producers' numbers go through validate_phone instead."""
    if not isinstance(raw, str):
        raise ValidationError("phone must be a string such as '+14155550123'", "phone")
    text = raw.strip()
    if _has_lone_surrogate(text):
        raise ValidationError("phone must be valid Unicode", "phone")
    if not text or len(text) > MAX_PHONE_CHARS:
        raise ValidationError(f"phone must be 1-{MAX_PHONE_CHARS} characters", "phone")
    if any(ch.isdigit() and not ("0" <= ch <= "9") for ch in text):
        raise ValidationError("phone must use the digits 0-9 only", "phone")
    try:
        number = phonenumbers.parse(text, default_region.upper())
    except phonenumbers.NumberParseException as exc:
        raise ValidationError(f"phone {text!r} is not a phone number: {exc._msg}", "phone") from None
    if not phonenumbers.is_valid_number(number):
        raise ValidationError(f"phone {text!r} is not a valid number (add the country code, e.g. +44...)", "phone")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def validate_text(text: object) -> str:
    """The message's text (TEXT_PATTERN, at most MAX_TEXT_CHARS, valid Unicode)."""
    if not isinstance(text, str):
        raise ValidationError("text must be a string", "text")
    if not text.strip():
        raise ValidationError("text must not be empty", "text")
    if len(text) > MAX_TEXT_CHARS:
        raise ValidationError(f"text is {len(text)} characters; the limit is {MAX_TEXT_CHARS}", "text")
    if "\x00" in text:
        raise ValidationError("text must not contain NUL characters", "text")
    if _has_lone_surrogate(text):
        raise ValidationError("text must be valid Unicode (it contains a lone surrogate)", "text")
    return text


def _has_lone_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def validate_session(session: object, known: tuple[str, ...]) -> str | None:
    """None (any session) or one of the configured sessions (the OpenAPI document's enum)."""
    if session is None:
        return None
    if not isinstance(session, str) or session not in known:
        raise ValidationError(f"session must be one of: {', '.join(known)}", "session")
    return session


def validate_idempotency_key(key: object, field: str = "idempotency_key") -> str | None:
    """None or 1-MAX_IDEMPOTENCY_KEY printable ASCII characters without spaces (IDEMPOTENCY_KEY_PATTERN). `field`
    is the caller's name for it: the REST API reads it from the Idempotency-Key header."""
    if key is None:
        return None
    if not isinstance(key, str) or len(key) > MAX_IDEMPOTENCY_KEY or not _IDEMPOTENCY_KEY.match(key):
        raise ValidationError(f"{field} must be 1-{MAX_IDEMPOTENCY_KEY} printable ASCII characters without spaces",
                              field)
    return key


@functools.lru_cache(maxsize=16)
def _callback_url_form(allow: AllowList) -> re.Pattern[str]:
    return whole(callback_url_pattern(allow))


def validate_callback_url(value: object, allow: AllowList = NOTHING_ALLOWED) -> str | None:
    """None or an http(s) URL: callback_url_pattern(allow) decides, at most MAX_CALLBACK_URL characters. A refusal
    says why in the words of the rule it breaks: the URL's shape, an IPv4 address not written as a dotted quad
    (2130706433, 0x7f000001, 127.1, 0177.0.0.1 reach loopback past any form check: outbound.host_form_problem), an
    address the outbound rule refuses (loopback, private, link-local, ...) that `allow` (WAQ_OUTBOUND_ALLOW) does not
    name (outbound.literal_problem). Where a host name resolves to is decided when the callback is delivered
    (outbound.check_url), which also refuses a name over IDNA's 253 characters: resolving it now would only guess
    what it resolves to then, and no pattern a client can check says a host's total length."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_CALLBACK_URL:
        raise ValidationError(f"callback_url must be a string of at most {MAX_CALLBACK_URL} characters",
                              "callback_url")
    if _callback_url_form(allow).match(value):  # the published pattern: the whole rule of the form
        return value
    if not _URL_SHAPE.match(value):
        raise ValidationError("callback_url must be an http:// or https:// URL with a host name or IPv4 address, "
                              "and no spaces or control characters", "callback_url")
    host = urlsplit(value).hostname or ""  # the shape above is one urlsplit reads
    form = host_form_problem(host)
    if form:
        raise ValidationError(f"callback_url: {form}", "callback_url")
    inward = literal_problem(host, allow)
    if inward:
        raise ValidationError(f"callback_url must not point inward: {inward}", "callback_url")
    raise ValidationError("callback_url must have a host name whose last label starts with a letter (labels of "
                          "1-63 characters) or a dotted quad, and a port of 0-65535", "callback_url")


def validate_send_window(raw: object, phone: str | None = None, now: datetime | None = None) -> SendWindow | None:
    """None (no window of its own) or {"start": "HH:MM", "end": "HH:MM"} (a CSV cell or the CLI: "HH:MM-HH:MM"),
    24-hour times; a start after the end wraps past midnight, a start equal to it is the whole day (send_window.py).
    With the message's E.164 `phone`, a window never open at once in all the number's time zones raises
    SendWindowNeverOpen (a TimeConflict: 409), judged from `now` (default: the current time)."""
    if raw is None:
        return None
    try:
        window = parse_window(raw)
    except ValueError as exc:
        raise ValidationError(f"send_window {exc}", "send_window") from None
    if phone is not None:
        check_opens(window, phone, now if now is not None else datetime.now(UTC))
    return window


def validate_metadata(value: object) -> dict[str, Any] | None:
    """None or a JSON object: at most MAX_METADATA_BYTES as JSON, nested at most MAX_METADATA_DEPTH levels, any keys
    (both stores keep it as JSON text). From Python, only JSON's own values (the REST API gets nothing
    else): a set, a datetime or NaN would be stored as something else, or not at all."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValidationError(f"metadata must be a JSON object, not {json_type(value)}", "metadata")
    foreign = _foreign_value(value)
    if foreign is not None:
        raise ValidationError(f"metadata must hold only JSON values (objects with string keys, arrays, strings, "
                              f"finite numbers, true, false, null), not {foreign}", "metadata")
    try:
        encoded = json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError("metadata must be valid Unicode (it contains a lone surrogate)", "metadata") from None
    except RecursionError:
        encoded = b""  # deeper than json can write: the depth rule below refuses it
    if len(encoded) > MAX_METADATA_BYTES:
        raise ValidationError(f"metadata is larger than {MAX_METADATA_BYTES} bytes as JSON", "metadata")
    if _depth(value) > MAX_METADATA_DEPTH:
        raise ValidationError(f"metadata is nested deeper than {MAX_METADATA_DEPTH} levels", "metadata")
    return value


def metadata_from_json(text: str | None) -> dict[str, Any] | None:
    """Metadata written as JSON text (the CLI's --metadata, a CSV cell) -> validate_metadata's verdict on it."""
    if text is None:
        return None
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:  # RecursionError: nested deeper than json can read
        raise ValidationError(f"metadata is not valid JSON: {str(exc).splitlines()[0][:200]}", "metadata") from None
    return validate_metadata(value)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def json_type(value: object) -> str:
    """How a JSON document would name the type of `value` ("an array", "a string", ...)."""
    return {list: "an array", str: "a string", int: "a number", float: "a number", bool: "a boolean",
            type(None): "null"}.get(type(value), "a value")


def _foreign_value(value: object) -> str | None:
    """The first value json.loads could not have made (a description of it), or None. Without recursion."""
    stack, seen = [value], set()
    while stack:
        item = stack.pop()
        if isinstance(item, dict | list):
            if id(item) in seen:  # a container inside itself (or shared): json.dumps would refuse or copy it
                return "an object or array that appears twice"
            seen.add(id(item))
        if isinstance(item, dict):
            bad_key = next((key for key in item if not isinstance(key, str)), None)
            if bad_key is not None:
                return f"the key {bad_key!r}"
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, float) and not math.isfinite(item):
            return repr(item)
        elif item is not None and type(item) not in (str, int, float, bool):
            return f"a {type(item).__name__}"
    return None


def _depth(value: object) -> int:
    """Nesting depth without recursion (the value may be deeper than Python's stack)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if level > MAX_METADATA_DEPTH:
            return level
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack.extend((child, level + 1) for child in children if isinstance(child, dict | list))
    return deepest


def parse_datetime(raw: object, field: str) -> datetime | None:
    """None, or an ISO 8601 date and time with an offset (DATETIME_PATTERN; from Python, an aware datetime) -> UTC."""
    if raw is None:
        return None
    if isinstance(raw, datetime):
        value = raw
    elif isinstance(raw, str) and len(raw) <= MAX_DATETIME_CHARS and _DATETIME.match(raw):
        try:
            value = datetime.fromisoformat(raw)
        except ValueError:
            raise ValidationError(f"{field} {raw!r} is not a date and time that exists", field) from None
    else:
        raise ValidationError(f"{field} must be an ISO 8601 date and time with seconds and its UTC offset, such as "
                              "'2026-12-24T09:30:00+01:00' or '2026-12-24T08:30:00Z'", field)
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError(f"{field} needs a UTC offset (a time without one is no time)", field)
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:00:00-05:00: past the last year Python (and the stores) can hold
        raise TimeConflict(f"{field} is beyond the year 9999 in UTC", field) from None


def validate_send_at(raw: object, now: datetime, max_days: int) -> datetime | None:
    """None (as soon as it may) or when it may be sent at the earliest, at most `max_days` ahead of `now`. A time
    already past means now."""
    send_at = parse_datetime(raw, "send_at")
    if send_at is not None and send_at > now + timedelta(days=max_days):
        raise TimeConflict(f"send_at is more than {max_days} days ahead (WAQ_MAX_SCHEDULE_DAYS)", "send_at")
    return send_at


def validate_expiry(expires_at: object, ttl_s: object, now: datetime, send_at: datetime | None,
                    default_ttl_s: float = 0) -> datetime | None:
    """When the message stops being worth sending: `expires_at` (a date and time) or `ttl_s` (whole seconds from
    now), the earlier of the two when both are given; neither means `default_ttl_s` (WAQ_DEFAULT_TTL_S; 0: never).
    It must be in the future (TimeConflict otherwise) and after send_at."""
    if ttl_s is not None and (isinstance(ttl_s, bool) or not isinstance(ttl_s, int) or not 1 <= ttl_s <= MAX_TTL_S):
        raise ValidationError(f"ttl_s must be a whole number of seconds from 1 to {MAX_TTL_S}", "ttl_s")
    given = parse_datetime(expires_at, "expires_at")
    if given is not None and given <= now:
        raise TimeConflict("expires_at is already past", "expires_at")
    choices = [(at, field) for at, field in ((given, "expires_at"),
                                              (now + timedelta(seconds=ttl_s) if ttl_s is not None else None, "ttl_s"))
               if at is not None]
    if not choices:
        if not default_ttl_s:
            return None
        choices = [(now + timedelta(seconds=default_ttl_s), "WAQ_DEFAULT_TTL_S")]
    expiry, field = min(choices)
    if send_at is not None and expiry <= send_at:
        named = "send_at" if field == "WAQ_DEFAULT_TTL_S" else field
        raise TimeConflict(f"{field}: the message would expire before its send_at", named)
    return expiry


def validate_priority(raw: object) -> Priority:
    """None (normal) or one of PRIORITIES."""
    if raw is None:
        return Priority.NORMAL
    if isinstance(raw, Priority):
        return raw
    if not isinstance(raw, str) or raw not in PRIORITIES:
        raise ValidationError(f"priority must be one of: {', '.join(PRIORITIES)}", "priority")
    return Priority(raw)


def validate_category(raw: object) -> Category:
    """None (transactional) or one of CATEGORIES."""
    if raw is None:
        return Category.TRANSACTIONAL
    if isinstance(raw, Category) and raw.value in CATEGORIES:
        return raw
    if not isinstance(raw, str) or raw not in CATEGORIES:
        raise ValidationError(f"category must be one of: {', '.join(CATEGORIES)}", "category")
    return Category(raw)


def validate_batch(raw: object) -> str | None:
    """None or a batch name: 1-MAX_BATCH_CHARS letters, digits, '.', '_' and '-', starting with a letter or digit."""
    if raw is None:
        return None
    if not isinstance(raw, str) or len(raw) > MAX_BATCH_CHARS or not _BATCH.match(raw):
        raise ValidationError(f"batch must be 1-{MAX_BATCH_CHARS} letters, digits, '.', '_' and '-', starting with a "
                              "letter or digit", "batch")
    return raw
