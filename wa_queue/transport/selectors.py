"""Every WhatsApp Web selector in one place, overridable without a release.

The real page changes often (June 2026 removed `.message-out` and the `msg-*` icons), so the defaults mirror the
newest markup (shared/whatsapp-web-dom.md) and an operator can patch one name with a JSON file named by
WAQ_SELECTORS_FILE: {"compose_box": "footer div[contenteditable='true']", "text.invalid_number": "..."}.
CSS entries go in SELECTORS; the few things CSS cannot match (a dialog told apart by its wording) are text
fragments in TEXTS, overridden under the same file with a "text." prefix. Unknown names are rejected.
The in-page JavaScript that applies them (probe, paste, row reading) lives here too, next to the names it uses.
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


# ---- in-page helpers: how the sender applies the selectors (arguments[0] is Selectors.as_js()) ---------------------
JS_LIB = r"""
const S = arguments[0];
const all = (n, r) => {
  try { return Array.from((r || document).querySelectorAll(S.css[n])); } catch (e) { return []; }
};
const one = (n, r) => all(n, r)[0] || null;
const shown = (el) => !!el && el.getClientRects().length > 0;
const dialogWith = (t) => all('dialog').some(d => shown(d) && d.innerText.includes(S.text[t]));
// A message's or the compose box's text as the user typed it: emoji <img alt>, <br> and paragraphs as "\n".
// Lexical's own trailing <br> (kept on the parent as __lexicalLineBreak) is not text.
const plain = (root) => {
  const blocks = [];
  let cur = '';
  const walk = (n) => {
    if (n.nodeType === 3) { cur += n.nodeValue; return; }
    if (n.nodeType !== 1) return;
    if (n.tagName === 'BR') { if (n.parentNode.__lexicalLineBreak !== n) cur += '\n'; return; }
    if (n.tagName === 'IMG') { cur += n.getAttribute('alt') || ''; return; }
    const isBlock = n !== root && /^(P|DIV)$/.test(n.tagName);
    if (isBlock && cur) { blocks.push(cur); cur = ''; }
    for (const c of n.childNodes) walk(c);
    if (isBlock) { blocks.push(cur); cur = ''; }
  };
  walk(root);
  if (cur || !blocks.length) blocks.push(cur);
  return blocks.join('\n');
};
const statusOf = (row) => {
  if (one('failed_icon', row)) return 'failed';
  const icon = one('status_icon', row);
  if (!icon) return null;
  return (icon.getAttribute('aria-label') || icon.getAttribute('data-icon') || '').trim().toLowerCase();
};
const rows = (withText) => all('outgoing_row').map(r => {
  const idEl = one('message_id', r);
  const textEl = withText ? one('message_text', r) : null;
  return [idEl ? idEl.getAttribute('data-id') : null, statusOf(r), textEl ? plain(textEl) : null];
});
"""

JS_PROBE = JS_LIB + r"""
const qr = one('qr_canvas');
const holder = (qr && qr.closest(S.css.qr_container)) || one('qr_container');
return {
  qr: shown(qr), ref: holder ? holder.getAttribute('data-ref') : null,
  logged_in: !!one('logged_in'), phone_alert: shown(one('phone_alert')), computer_alert: shown(one('computer_alert')),
  invalid: dialogWith('invalid_number'), starting: dialogWith('starting_chat'), use_here: dialogWith('open_elsewhere'),
  compose: shown(one('compose_box')), send_button: shown(one('send_button')),
};
"""

# Pastes the text the way a user's Ctrl+V reaches the Lexical editor (its paste handler turns "\n" into line
# breaks) and returns what the box holds then. A draft left by an earlier attempt is reported, not pasted into.
JS_PASTE = JS_LIB + r"""
const text = arguments[1];
const box = one('compose_box');
if (!box) return {error: 'compose_box'};
box.focus();
if (plain(box).length) return {dirty: true};
const data = new DataTransfer();
data.setData('text/plain', text);
box.dispatchEvent(new ClipboardEvent('paste', {clipboardData: data, bubbles: true, cancelable: true}));
return {text: plain(box), ids: rows(false).map(r => r[0])};
"""

JS_BOX = JS_LIB + "const box = one('compose_box'); if (box) box.focus(); return box ? plain(box) : null;"
JS_ROWS = JS_LIB + "return rows(arguments[1]);"
JS_AFTER_CLICK = JS_LIB + "const box = one('compose_box'); return {rows: rows(true), box: box ? plain(box) : null};"
JS_CLICK_TEXT = JS_LIB + r"""
const el = all(arguments[1]).find(b => shown(b) && b.innerText.trim().toLowerCase() === arguments[2].toLowerCase());
if (el) el.click();
return !!el;
"""
JS_CHECK_CSS = "const bad = []; for (const [n, c] of Object.entries(arguments[0].css)) " \
                "{ try { document.querySelector(c); } catch (e) { bad.push(n); } } return bad;"


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
