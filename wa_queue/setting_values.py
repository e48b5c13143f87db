"""How a WAQ_* variable's text becomes a value: a parser per kind of setting, and the structured values some settings
hold (API keys, per-key limits). wa_queue/settings.py picks the parser of each field and validates the result."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import TYPE_CHECKING

from wa_queue.outbound import parse_allow

if TYPE_CHECKING:
    from wa_queue.send_window import SendWindow

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*$")
_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0}
_ROLES = ("producer", "admin")
# A key's name is stored with each message it enqueues and scopes its idempotency keys ("<name> <key>"): printable
# ASCII without spaces, so the space that separates the scope can never be part of a name (wa_queue/owners.py).
_KEY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
MIN_API_KEY_CHARS = 16

def parse_duration(text: str) -> float:
    """'90' / '90s' / '5m' / '2h' / '0.5s' -> seconds."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration (a number with an optional unit s, m or h)")
    return float(match.group(1)) * _UNITS[match.group(2)]


@dataclasses.dataclass(frozen=True)
class ApiKey:
    name: str
    role: str
    key: str
    # Signs the status callbacks of the messages this key enqueued; empty: WAQ_CALLBACK_SECRET. Never shown: repr
    # would print it in a traceback or a log line.
    callback_secret: str = dataclasses.field(default="", repr=False)

    def __repr__(self) -> str:
        return f"ApiKey(name={self.name!r}, role={self.role!r})"


@dataclasses.dataclass(frozen=True)
class KeyLimits:
    """WAQ_KEY_LIMITS's entry for one key: the enqueue rates and daily quota that replace the defaults for it (None:
    the default)."""

    name: str
    requests_per_s: float | None = None
    messages_per_s: float | None = None
    daily: int | None = None


def _parse_bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("accepts true/false, yes/no, 1/0, on/off")


def _parse_int(raw: str) -> int:
    try:
        return int(raw.strip())
    except ValueError:
        raise ValueError("accepts a whole number") from None


def _parse_float(raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise ValueError("accepts a number of seconds, fractions allowed") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError("accepts a finite number")
    return value


def _parse_list(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _parse_delays(raw: str) -> tuple[float, ...]:
    return tuple(parse_duration(part) for part in _parse_list(raw))


def _parse_caps(raw: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in _parse_list(raw))
    except ValueError:
        raise ValueError("accepts whole numbers separated by commas, e.g. 20,40,80,150,300") from None


def _parse_send_window(raw: str) -> SendWindow | None:
    from wa_queue.send_window import parse_window_setting  # phonenumbers' time zone data only for those who use it

    return parse_window_setting(raw)


def _parse_api_keys(raw: str) -> tuple[ApiKey, ...]:
    """name:role:key[:callback-secret],... Neither a key nor a secret can hold ':' or ','. The error never quotes
    the value (ConfigError prints the variable's raw text otherwise; see _SECRET_FIELDS)."""
    keys = []
    for item in _parse_list(raw):
        parts = item.split(":")
        if len(parts) not in (3, 4) or not all(parts):
            raise ValueError("accepts name:role:key or name:role:key:callback-secret entries separated by commas "
                             "(no ':' inside a key or a secret)")
        name, role, key = parts[:3]
        if not _KEY_NAME.match(name):
            raise ValueError(f"key name {name[:64]!r} must be 1-64 letters, digits and _ . @ - (starting with a "
                             "letter or digit)")
        if role not in _ROLES:
            raise ValueError(f"role {role!r} of {name!r} is not one of {', '.join(_ROLES)}")
        if len(key) < MIN_API_KEY_CHARS:
            raise ValueError(f"the key of {name!r} is shorter than {MIN_API_KEY_CHARS} characters")
        keys.append(ApiKey(name, role, key, parts[3] if len(parts) == 4 else ""))  # its length: _validate_keys
    return tuple(keys)


_LIMIT_NAMES = {"requests": "requests_per_s", "messages": "messages_per_s", "daily": "daily"}


def _parse_key_limits(raw: str) -> tuple[KeyLimits, ...]:
    """name:requests=R:messages=M:daily=N,... (any of them, each at most once): rates a second, messages a UTC
    day."""
    entries = []
    for item in _parse_list(raw):
        name, *parts = item.split(":")
        if not parts:
            raise ValueError(f"{item!r}: accepts name:requests=R:messages=M:daily=N (any of them)")
        values: dict[str, float | int] = {}
        for part in parts:
            label, _, number = part.partition("=")
            field = _LIMIT_NAMES.get(label.strip())
            if field is None or field in values:
                raise ValueError(f"{item!r}: {label!r} is not one of requests, messages, daily, or is given twice")
            values[field] = _parse_int(number) if field == "daily" else _parse_float(number)
        entries.append(KeyLimits(name.strip(), **values))  # type: ignore[arg-type]
    return tuple(entries)


def parser_for(annotation: object):  # noqa: ANN202 - internal table lookup
    return {"bool": _parse_bool, "int": _parse_int, "float": _parse_float, "Path": Path, "str": str}[
        str(annotation)
    ]


PARSERS = {
    "sessions": _parse_list,
    "retry_delays": _parse_delays,
    "api_keys": _parse_api_keys,
    "warmup_caps": _parse_caps,
    "chrome_memory_options": _parse_list,
    "opt_out_words": _parse_list,
    "opt_in_words": _parse_list,
    "send_window": _parse_send_window,
    "lease_s": lambda raw: parse_duration(raw),
    "outbound_allow": lambda raw: parse_allow(_parse_list(raw)),
    "key_limits": lambda raw: _parse_key_limits(raw),
}
