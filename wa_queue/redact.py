"""What logs may show of a producer's data: phone numbers masked (unless WAQ_LOG_PHONES=1), URLs without their query,
fragment or password (a callback URL's query often carries the receiver's token; a store or broker URL its password).

Log lines only: the store, the history, the API's answers and the admin webhook keep the full values.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

MASK = "\u2022"  # •
KEEP_HEAD = 5  # "+9198" of "+919876543210": the country and the operator, enough to tell numbers apart in a log
KEEP_TAIL = 3
# An E.164 number inside a sentence (an error's text): + then 7 to 15 digits, not glued to other digits.
_E164 = re.compile(r"(?<![\w+])\+\d{7,15}(?!\d)")


def phone(value: str | None, show: bool = False) -> str:
    """'+919876543210' -> '+9198•••••210': the first 5 and the last 3 characters; `show` (WAQ_LOG_PHONES) keeps it."""
    if value is None:
        return "None"
    if show:
        return value
    hidden = len(value) - KEEP_HEAD - KEEP_TAIL
    if hidden <= 0:
        return MASK * len(value)  # too short to keep both ends: hide it all
    return value[:KEEP_HEAD] + MASK * hidden + value[-KEEP_TAIL:]


def phones_in(text: object, show: bool = False) -> str:
    """`text` (an error's message, a summary) with every E.164 number in it masked."""
    text = str(text)
    return text if show else _E164.sub(lambda match: phone(match.group(0)), text)


def url(value: str | None) -> str:
    """scheme://host[:port]/path: no user, password, query or fragment ('?…' marks a dropped query)."""
    if not value:
        return str(value)
    try:
        parts = urlsplit(value)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port is not None else ""
    except ValueError:
        return "<unparsable URL>"
    if ":" in host:
        host = f"[{host}]"
    shown = urlunsplit((parts.scheme, host + port, parts.path, "", ""))
    return shown + ("?…" if parts.query else "")


def in_text(text: object, value: str | None) -> str:
    """`text` with the URL `value` in it shown as url() shows it (an exception's message that quotes the URL)."""
    text = str(text)
    return text.replace(value, url(value)) if value else text


def without_password(value: str) -> str:
    """A store or broker URL with its password replaced by '***' (the user name, host and path stay)."""
    try:
        parts = urlsplit(value)
        password = parts.password
    except ValueError:
        return "<unparsable URL>"
    if not password:
        return value
    user = parts.username or ""
    netloc = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit((parts.scheme, f"{user}:***@{netloc}", parts.path, parts.query, parts.fragment))
