"""Input rules shared by the Python API, the REST API and the CLI."""

from __future__ import annotations

import phonenumbers

from wa_queue.errors import ValidationError

MAX_TEXT_CHARS = 4096  # the WhatsApp Cloud API's limit, adopted for every message
MAX_PHONE_CHARS = 32


def normalize_phone(raw: object, default_region: str = "US") -> str:
    """Any written form of a number -> E.164 ('+' and digits). Raises ValidationError with a readable reason."""
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
    if session is None:
        return None
    if not isinstance(session, str) or session not in known:
        raise ValidationError(f"session must be one of: {', '.join(known)}", "session")
    return session
