"""Every WhatsApp Web selector in one place, overridable without a release.

The real page changes often (June 2026 removed `.message-out` and the `msg-*` icons), so the defaults mirror the
newest markup (shared/whatsapp-web-dom.md) and an operator can patch one name with a JSON file named by
WAQ_SELECTORS_FILE: {"compose_box": "footer div[contenteditable='true']", "text.invalid_number": "..."}.
CSS entries go in SELECTORS; the few things CSS cannot match (a dialog told apart by its wording) are text
fragments in TEXTS, overridden under the same file with a "text." prefix. Unknown names are rejected.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from wa_queue.errors import ConfigError

SELECTORS: dict[str, str] = {
    # Login.
    "qr_canvas": 'canvas[aria-label="Scan this QR code to link a device!"]',
    "qr_container": "div[data-ref]",  # the canvas's parent; data-ref holds the pairing payload
    "qr_reload": "div[data-ref] button",  # shown when the code expired
    "logged_in": "#pane-side",
    "search_box": '[aria-label="Search or start a new chat"]',
    # Dialogs: "Starting chat", the invalid-number popup and "Use here" share one container.
    "dialog": 'div[role="dialog"]',
    "starting_chat": 'div[role="dialog"]',  # told apart by TEXTS["starting_chat"]
    "invalid_dialog": 'div[role="dialog"]',  # told apart by TEXTS["invalid_number"]
    "invalid_ok": 'div[role="dialog"] div[role="button"]',
    "use_here": 'div[role="dialog"] div[role="button"], div[role="dialog"] button',  # the one reading "Use here"
    # Chat.
    "compose_box": 'footer div[contenteditable="true"][role="textbox"][data-tab="10"]',
    "send_button": 'footer button[aria-label="Send"]',
    "outgoing_row": 'div[role="row"]:has([data-id^="true_"])',
    "message_id": '[data-id^="true_"]',
    "message_text": "span.selectable-text",  # inside a row; emoji are <img alt="…">, line breaks <br>
    # Exact labels (" Read " had spaces before 2026-06): a looser match would catch a long message's "Read more".
    "status_icon": (
        '[aria-label="Pending"], [aria-label="Sent"], [aria-label="Delivered"], [aria-label="Read"], '
        '[aria-label=" Pending "], [aria-label=" Sent "], [aria-label=" Delivered "], [aria-label=" Read "]'
    ),
    # Not in the DOM notes: the red mark of a message the server refused (ACK_ERROR); it keeps the clock icon.
    "failed_icon": '[data-icon="msg-error"], [aria-label="Failed"]',
    # Connection banners.
    "phone_alert": '[data-testid="alert-phone"]',
    "computer_alert": '[data-testid="alert-computer"]',
}

TEXTS: dict[str, str] = {
    "invalid_number": "Phone number shared via url is invalid",
    "starting_chat": "Starting chat",
    "use_here": "Use here",
    "open_elsewhere": "open in another window",
}


class Selectors:
    """The effective selectors: defaults with the operator's overrides applied."""

    def __init__(self, css: Mapping[str, str] | None = None, texts: Mapping[str, str] | None = None) -> None:
        self.css_map = {**SELECTORS, **(css or {})}
        self.text_map = {**TEXTS, **(texts or {})}

    def __getitem__(self, name: str) -> str:
        return self.css_map[name]

    def text(self, name: str) -> str:
        return self.text_map[name]

    def as_js(self) -> dict[str, object]:
        """What the in-page helpers receive: {"css": {...}, "text": {...}}."""
        return {"css": dict(self.css_map), "text": dict(self.text_map)}


def parse_overrides(data: object, source: str = "selectors file") -> Selectors:
    """Validate an override mapping; a typo must stop the worker at start, not miss an element at 3 a.m."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a JSON object of name -> CSS selector")
    css: dict[str, str] = {}
    texts: dict[str, str] = {}
    unknown = []
    for name, value in data.items():
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{source}: {name!r} must be a non-empty string")
        if name.startswith("text.") and name[5:] in TEXTS:
            texts[name[5:]] = value
        elif name in SELECTORS:
            css[name] = value
        else:
            unknown.append(name)
    if unknown:
        known = ", ".join([*SELECTORS, *(f"text.{n}" for n in TEXTS)])
        raise ConfigError(f"{source}: unknown selector name(s) {', '.join(map(repr, unknown))}; known: {known}")
    return Selectors(css, texts)


def load_selectors(path: str | Path | None = None) -> Selectors:
    """Defaults, plus the overrides in path (WAQ_SELECTORS_FILE) when given."""
    if not path or not str(path).strip():
        return Selectors()
    source = f"WAQ_SELECTORS_FILE={path}"
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{source}: no such file") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{source}: not readable JSON ({exc})") from None
    return parse_overrides(data, source)
