"""Every WhatsApp Web selector in one place, overridable without a release.

The real page changes often (three forms of message rows in 2026 alone), so the defaults recognise every known form
(see the WhatsApp Web DOM notes) and an operator can patch one name with a JSON file named by
WAQ_SELECTORS_FILE: {"compose_box": "footer div[contenteditable='true']", "text.invalid_number": "..."}.
CSS entries go in SELECTORS; the few things CSS cannot match (a dialog told apart by its wording) are text
fragments in TEXTS, overridden under the same file with a "text." prefix. NOTICES are the account notices (ban,
restriction) as lists of variants, matched case-insensitively; "text.banned" / "text.restricted" replace a list with
a string or a list of strings. Unknown names are rejected.
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
    # One chat in the chat list (its preview is a person's text, never an account notice).
    "chat_list_item": '#pane-side [role="listitem"], #pane-side [role="row"]',
    # Dialogs: "Starting chat", the invalid-number popup and "what's new" share one container.
    "dialog": 'div[role="dialog"]',
    "starting_chat": 'div[role="dialog"]',  # told apart by TEXTS["starting_chat"]
    "invalid_dialog": 'div[role="dialog"]',  # told apart by TEXTS["invalid_number"]
    "invalid_ok": 'div[role="dialog"] div[role="button"]',
    "popup_button": 'div[role="dialog"] div[role="button"], div[role="dialog"] button',  # "OK" of "what's new"
    # The "open in another window" conflict is a full page with no stable marker but its text and this button.
    "use_here": 'div[role="button"], button',  # the one reading TEXTS["use_here"]
    # Chat. The compose box is the visible match not under an aria-hidden ancestor (the page may hold two).
    "compose_box": 'footer div[contenteditable="true"][role="textbox"]',
    "send_button": 'footer button[aria-label="Send"]',
    # Message rows: three forms in 2026 (shared DOM notes). A row is a message only when it holds a bubble with
    # data-pre-plain-text; its direction comes from a packed id, a message-out/-in class or a status icon.
    "chat_row": '#main div[role="row"]',
    "message_bubble": "[data-pre-plain-text]",
    "message_id": "[data-id]",  # the raw data-id is the WhatsApp id, whatever its format
    "out_id": '[data-id^="true_"]',
    "in_id": '[data-id^="false_"]',
    "out_class": ".message-out",
    "in_class": ".message-in",
    "message_text": '[data-testid="selectable-text"], .selectable-text',  # emoji <img alt>, <br>, links <a>
    "read_more": 'div[role="button"], button',  # inside a row, the one reading TEXTS["read_more"]
    # Exact labels (" Read " had spaces before 2026-06): a looser match would catch a long message's "Read more".
    "status_icon": (
        '[aria-label="Pending"], [aria-label="Sent"], [aria-label="Delivered"], [aria-label="Read"], '
        '[aria-label=" Pending "], [aria-label=" Sent "], [aria-label=" Delivered "], [aria-label=" Read "], '
        '[data-icon="msg-time"], [data-icon="msg-check"], [data-icon="msg-dblcheck"]'
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
    "read_more": "Read more",
    "popup_ok": "OK",
    "update_browser": "WhatsApp works with Google Chrome",
    "loading": "Loading your chats",
}

# Account notices, each a list of variants (the page words them differently by build, platform and kind of ban). Any
# variant shown outside the chat's rows, the chat list's items and the compose box makes the session `banned`.
NOTICES: dict[str, tuple[str, ...]] = {
    "banned": (
        "Your phone number is banned from using WhatsApp",
        "This account is not allowed to use WhatsApp",
        "This account can no longer use WhatsApp",
        "Your account has been banned",
        "account is temporarily banned",
    ),
    "restricted": (
        "Your account is restricted",
        "Your account has been restricted",
        "Account restricted",
        "You can't send messages for now",
        "Restriction ends",
    ),
}


# ---- in-page helpers: how the sender applies the selectors (arguments[0] is Selectors.as_js()) ---------------------
JS_LIB = r"""
const S = arguments[0];
const all = (n, r) => {
  try { return Array.from((r || document).querySelectorAll(S.css[n])); } catch (e) { return []; }
};
const shown = (el) => !!el && el.getClientRects().length > 0 && !el.closest('[aria-hidden="true"]');
const one = (n, r) => all(n, r)[0] || null;
const visible = (n, r) => all(n, r).find(shown) || null;
const said = (el, t) => el.innerText.trim().toLowerCase() === t.toLowerCase();
const dialogWith = (t) => all('dialog').some(d => shown(d) && d.innerText.includes(S.text[t]));
const pageSays = (t) => !!document.body && document.body.innerText.includes(S.text[t]);
// The words of the first account notice of kind `k` (NOTICES) on show, or null. Text a person wrote (message rows,
// chat-list previews, the compose box) is not a notice; a banner above the chat list may be. The cheap whole-page
// check runs first: notices are rare.
let bodyLower = null;  // the page's text, read (a layout) at most once per script
const noticeOf = (k) => {
  const vs = (S.notices[k] || []).map(v => v.toLowerCase());
  if (bodyLower === null) bodyLower = document.body ? document.body.innerText.toLowerCase() : '';
  if (!vs.some(v => bodyLower.includes(v))) return null;
  const people = [S.css.chat_row, S.css.chat_list_item, S.css.compose_box].join(', ');
  const holds = (e) => { try { return !!e.querySelector(people); } catch (x) { return false; } };
  const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walk.nextNode(); n; n = walk.nextNode()) {
    const t = n.nodeValue.toLowerCase();
    let el = n.parentElement;
    if (!el || !vs.some(v => t.includes(v)) || !shown(el)) continue;
    try { if (el.closest(people)) continue; } catch (e) { /* a bad override: judge the text alone */ }
    // The notice's whole wording (its end time may sit in a sibling element): up to a few short ancestors, never
    // one that also holds people's text, and no further than the notice's own alert or dialog.
    for (let i = 0; i < 4 && !el.matches('[role="alert"], [role="dialog"]') && el.parentElement
         && el.parentElement !== document.body && el.parentElement.innerText.length <= 400
         && !holds(el.parentElement); i += 1) el = el.parentElement;
    return el.innerText.replace(/\s+/g, ' ').trim().slice(0, 500);
  }
  return null;
};
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
// Rendering drops WhatsApp's formatting markers and folds whitespace: compare what survives it.
const norm = (t) => t.replace(/[*_~`\u200e\u200f]/g, '').replace(/\s+/g, ' ').trim();
const statusOf = (row) => {
  if (one('failed_icon', row)) return 'failed';
  const icon = one('status_icon', row);
  if (!icon) return null;
  return (icon.getAttribute('aria-label') || icon.getAttribute('data-icon') || '').trim().toLowerCase();
};
const has = (row, n) => { try { return row.matches(S.css[n]) || !!one(n, row); } catch (e) { return false; } };
// The time a bubble's data-pre-plain-text gives ("[12:19, 10/05/2026] Name: "), as epoch ms in the browser's zone;
// day and month are read both ways (the order follows the locale), so a list of candidates.
const timesOf = (pre) => {
  const m = /\[(\d{1,2}):(\d{2})(?:\s*([AP]M))?,\s*(\d{1,4})[\/.\-](\d{1,2})[\/.\-](\d{2,4})\]/i.exec(pre || '');
  if (!m) return [];
  let h = +m[1];
  if (m[3]) h = (h % 12) + (m[3].toUpperCase() === 'PM' ? 12 : 0);
  let [a, b, c] = [+m[4], +m[5], +m[6]];
  if (a > 999) [a, b, c] = [b, c, a];  // ISO-like year first: day and month follow
  if (c < 100) c += 2000;
  return [[a, b], [b, a]].filter(([mo, d]) => mo >= 1 && mo <= 12 && d >= 1 && d <= 31)
    .map(([mo, d]) => new Date(c, mo - 1, d, h, +m[2]).getTime());
};
// Every row of the open chat: null for rows that are not messages (system rows, contact cards), else
// {id, dir: 'out' | 'in' | null (no known form), status, text (null when no text element), more, times}.
const readRow = (r) => {
  const bubble = one('message_bubble', r);
  if (!bubble) return null;
  const idEl = one('message_id', r);
  const id = idEl ? idEl.getAttribute('data-id') : null;
  const status = statusOf(r);
  let dir = null;
  if (has(r, 'out_id') || has(r, 'out_class')) dir = 'out';
  else if (has(r, 'in_id') || has(r, 'in_class')) dir = 'in';
  else if (status) dir = 'out';  // only outgoing messages carry ticks
  const textEl = one('message_text', r);
  const more = all('read_more', r).find(b => shown(b) && said(b, S.text.read_more)) || null;
  const pre = bubble.getAttribute('data-pre-plain-text');
  return {id, dir, status, text: textEl ? plain(textEl) : null, more: !!more, pre, times: timesOf(pre)};
};
const chat = () => {
  const rows = all('chat_row');
  const msgs = rows.map(readRow).filter(x => x);
  const idOf = (r) => { const e = one('message_id', r); return e ? e.getAttribute('data-id') : ''; };
  return {rows: rows.length, ids: rows.map(idOf), msg_ids: msgs.map(m => m.id).filter(x => x),
          out: msgs.filter(m => m.dir === 'out'), unknown: msgs.filter(m => !m.dir).length, messages: msgs.length,
          zone: Intl.DateTimeFormat().resolvedOptions().timeZone || null, now_ms: Date.now()};
};
"""

JS_PROBE = JS_LIB + r"""
const qr = one('qr_canvas');
const holder = (qr && qr.closest(S.css.qr_container)) || one('qr_container');
const popup = all('dialog').some(d => shown(d) && all('popup_button', d).some(b => shown(b) && said(b, S.text.popup_ok))
  && !d.innerText.includes(S.text.invalid_number));
return {
  qr: shown(qr), ref: holder ? holder.getAttribute('data-ref') : null,
  logged_in: !!one('logged_in'), phone_alert: shown(one('phone_alert')), computer_alert: shown(one('computer_alert')),
  invalid: dialogWith('invalid_number'), starting: dialogWith('starting_chat'),
  use_here: pageSays('open_elsewhere') && all('use_here').some(b => shown(b) && said(b, S.text.use_here)),
  compose: !!visible('compose_box'), send_button: !!visible('send_button'), popup,
  update_browser: pageSays('update_browser'), loading: pageSays('loading'),
  banned: noticeOf('banned'), restricted: noticeOf('restricted'),
  post_logout: location.search.includes('post_logout=1'),
  chat: window.__waqChat || null,
};
"""

# Pastes the text the way a user's Ctrl+V reaches the Lexical editor: its paste handler reads clipboardData (and
# turns "\n" into line breaks) after this script turn, so the caller reads the box again later, until it settles.
JS_PASTE = JS_LIB + r"""
const box = visible('compose_box');
if (!box) return false;
box.focus();
const data = new DataTransfer();
data.setData('text/plain', arguments[1]);
box.dispatchEvent(new ClipboardEvent('paste', {clipboardData: data, bubbles: true, cancelable: true}));
return true;
"""

JS_BOX = JS_LIB + "const box = visible('compose_box'); if (box) box.focus(); return box ? plain(box) : null;"
JS_CHAT = JS_LIB + "return chat();"
JS_MARK_CHAT = "window.__waqChat = arguments[1];"  # gone with the document: a reload forgets which chat is open
JS_AFTER_CLICK = JS_LIB + "const box = visible('compose_box'); return {chat: chat(), box: box ? plain(box) : null};"
# Expands rows cut behind "Read more" (their full text is not in the DOM until then); returns how many it clicked.
JS_EXPAND = JS_LIB + r"""
let n = 0;
for (const r of all('chat_row')) {
  const b = all('read_more', r).find(x => shown(x) && said(x, S.text.read_more));
  if (b) { b.click(); n += 1; }
}
return n;
"""
JS_CLICK_TEXT = JS_LIB + r"""
const el = all(arguments[1]).find(b => shown(b) && said(b, arguments[2]));
if (el) el.click();
return !!el;
"""
JS_NORM = JS_LIB + "return norm(arguments[1]);"
# The logged-in account's own number, as the page keeps it: "<digits>:<device>@c.us" (older builds "<digits>@c.us").
JS_ACCOUNT = r"""
for (const key of ['last-wid-md', 'last-wid']) {
  let v = null;
  try { v = localStorage.getItem(key); } catch (e) { return null; }
  if (!v) continue;
  try { v = JSON.parse(v); } catch (e) { /* stored unquoted */ }
  const m = /^(\d{6,15})[:@]/.exec(String(v));
  if (m) return m[1];
}
return null;
"""
JS_CHECK_CSS = "const bad = []; for (const [n, c] of Object.entries(arguments[0].css)) " \
                "{ try { document.querySelector(c); } catch (e) { bad.push(n); } } return bad;"


class Selectors:
    """The effective selectors: defaults with the operator's overrides applied."""

    def __init__(self, css: Mapping[str, str] | None = None, texts: Mapping[str, str] | None = None,
                 notices: Mapping[str, tuple[str, ...]] | None = None) -> None:
        self.css_map = {**SELECTORS, **(css or {})}
        self.text_map = {**TEXTS, **(texts or {})}
        self.notice_map = {**NOTICES, **(notices or {})}

    def __getitem__(self, name: str) -> str:
        return self.css_map[name]

    def text(self, name: str) -> str:
        return self.text_map[name]

    def as_js(self) -> dict[str, object]:
        """What the in-page helpers receive: {"css": {...}, "text": {...}, "notices": {kind: [variant, ...]}}."""
        return {"css": dict(self.css_map), "text": dict(self.text_map),
                "notices": {k: list(v) for k, v in self.notice_map.items()}}


def parse_overrides(data: object, source: str = "selectors file") -> Selectors:
    """Validate an override mapping; a typo must stop the worker at start, not miss an element at 3 a.m."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a JSON object of name -> CSS selector")
    css: dict[str, str] = {}
    texts: dict[str, str] = {}
    notices: dict[str, tuple[str, ...]] = {}
    unknown = []
    for name, value in data.items():
        if name.startswith("text.") and name[5:] in NOTICES:
            notices[name[5:]] = _variants(name, value, source)
            continue
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{source}: {name!r} must be a non-empty string")
        if name.startswith("text.") and name[5:] in TEXTS:
            texts[name[5:]] = value
        elif name in SELECTORS:
            css[name] = value
        else:
            unknown.append(name)
    if unknown:
        known = ", ".join([*SELECTORS, *(f"text.{n}" for n in (*TEXTS, *NOTICES))])
        raise ConfigError(f"{source}: unknown selector name(s) {', '.join(map(repr, unknown))}; known: {known}")
    return Selectors(css, texts, notices)


def _variants(name: str, value: object, source: str) -> tuple[str, ...]:
    """A notice's variants: one string or a non-empty list of non-empty strings."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(v, str) and v.strip() for v in items):
        raise ConfigError(f"{source}: {name!r} must be a non-empty string or a list of them")
    return tuple(v.strip() for v in items)


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
