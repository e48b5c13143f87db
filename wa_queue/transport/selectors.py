"""Every WhatsApp Web selector in one place, overridable without a release.

The real page changes often (four forms of message rows in 2026 alone), so the defaults recognise every known form
(see the WhatsApp Web DOM notes) and an operator can patch one name with a JSON file named by
WAQ_SELECTORS_FILE: {"compose_box": "footer div[contenteditable='true']", "text.invalid_number": "..."}.
CSS entries go in SELECTORS; the few things CSS cannot match (a dialog told apart by its wording) are text
fragments in TEXTS, overridden under the same file with a "text." prefix. NOTICES are the account notices (ban,
restriction) as lists of variants, matched case-insensitively; "text.banned" / "text.restricted" replace a list with
a string or a list of strings; "tick.<svg title>" maps a tick's SVG title to a status (TICK_TITLES). Unknown names
are rejected.
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
    # Replies: a chat list item's unread count ("3 unread messages"; the number is read from the label) and its
    # name (a number as the page prints it, or a contact's name); the open chat's name in its header.
    "unread_badge": '[aria-label$=" unread message"], [aria-label$=" unread messages"]',
    "chat_title": 'span[dir="auto"][title]',
    "open_chat_title": '#main header span[title]',
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
    # The send control: a <button> (2025) or a div[role="button"] (the media preview's; the compose box's since
    # late July 2026, form not public), known by aria-label="Send" or by the send icon; it appears once there is text.
    "send_button": ", ".join(f"footer {tag}{mark}" for tag in ("button", 'div[role="button"]') for mark in (
        '[aria-label="Send"]', ':has(span[data-icon="wds-ic-send-filled"])', ':has(span[data-icon="send"])')),
    # The media preview is a full-pane editor outside the chat's footer; a page-wide "Send" could be the footer's.
    "media_send_button": ", ".join(f"{tag}{mark}:not(footer *)" for tag in ("button", 'div[role="button"]')
                                   for mark in ('[aria-label="Send"]', ':has(span[data-icon="wds-ic-send-filled"])',
                                                ':has(span[data-icon="send"])')),
    # Message rows: four forms in 2026 (shared DOM notes). A row is a message only when it holds a bubble with
    # data-pre-plain-text; its direction comes from a packed id, a message-out/-in class, a tail, a status icon or
    # its run (JS_LIB's readRows says when). Since 2026-06 a row's first child carries data-testid="conv-msg-<id>";
    # where both forms match, the outermost element is the row.
    "chat_row": '#main div[role="row"], #main [data-testid^="conv-msg"]',
    "message_bubble": "[data-pre-plain-text]",
    "message_id": "[data-id]",  # the raw data-id is the WhatsApp id, whatever its format
    "message_testid": '[data-testid^="conv-msg-"]',  # the id after "conv-msg-", for rows with no data-id
    "out_id": '[data-id^="true_"]',
    "in_id": '[data-id^="false_"]',
    "out_class": ".message-out",
    "in_class": ".message-in",
    # Drawn on the first bubble of a run of one direction only (2026-11 notes), on every bubble before.
    "out_tail": '[data-icon="tail-out"]',
    "in_tail": '[data-icon="tail-in"]',
    "message_text": '[data-testid="selectable-text"], .selectable-text',  # emoji <img alt>, <br>, links <a>
    "read_more": 'div[role="button"], button',  # inside a row, the one reading TEXTS["read_more"]
    # Exact labels (" Read " had spaces before 2026-06): a looser match would catch a long message's "Read more".
    "status_icon": (
        '[aria-label="Pending"], [aria-label="Sent"], [aria-label="Delivered"], [aria-label="Read"], '
        '[aria-label=" Pending "], [aria-label=" Sent "], [aria-label=" Delivered "], [aria-label=" Read "], '
        '[data-icon="msg-time"], [data-icon="msg-check"], [data-icon="msg-dblcheck"]'
    ),
    # Where no status_icon matches: an SVG <title> naming the tick (TICK_TITLES), the only status left in some 2026-06+
    # builds.
    "status_title": "svg title",
    # Not in the DOM notes: the red mark of a message the server refused (ACK_ERROR); it keeps the clock icon.
    "failed_icon": '[data-icon="msg-error"], [aria-label="Failed"], [aria-label=" Failed "]',
    # Media (the DOM notes' media section). The attach button opens the menu whose file inputs the sender writes
    # into, chosen by their `accept` (JS_FILE_INPUTS); the preview's caption box is a Lexical editor of its own.
    "attach_button": ", ".join(f"footer {tag}{mark}" for tag in ("button", 'div[role="button"]') for mark in (
        '[aria-label="Attach"]', '[title="Attach"]', ':has(span[data-icon="plus-rounded"])',
        ':has(span[data-icon="attach-menu-plus"])')),
    "file_input": 'input[type="file"]',
    "media_close": 'div[role="button"][aria-label="Close"]:not(footer *), button[aria-label="Close"]:not(footer *)',
    "media_caption": 'div[contenteditable="true"][aria-label="Add a caption"]',
    # A row's file: checked in this order (a document's thumbnail may be a picture, a video's too).
    "media_document": '[data-testid="document-thumb"], [title^="Download"], [data-icon^="document-"]',
    "media_video": '[data-icon="media-play"], [data-icon="msg-video"]',
    "media_audio": '[aria-label="Play voice message"], [aria-label="Play audio"], [data-icon="audio-play"]',
    "media_image": '[aria-label="Open picture"]',
    "document_title": '[title^="Download"]',  # title='Download "<file name>"' (the word in the page's language)
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

# A tick's SVG <title> -> its status, where no status_icon matches (2026-06+ builds name their icons wds-ic-…; the notes
# give wds-ic-read, the rest are the names the 2026-08 builds use beside their aria-label). Exact names only: a
# title read as "failed" would send a message again, so none maps to it (a refused row keeps its clock: unknown).
# Overridden as "tick.<title>": "pending" | "sent" | "delivered" | "read".
TICK_TITLES: dict[str, str] = {
    "wds-ic-clock": "pending",
    "wds-ic-check": "sent",
    "wds-ic-double-check": "delivered",
    "wds-ic-read": "read",
}
TICK_STATUSES = ("pending", "sent", "delivered", "read")

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
const has = (row, n) => { try { return row.matches(S.css[n]) || !!one(n, row); } catch (e) { return false; } };
// The element itself or its first descendant matching n.
const mine = (n, r) => { try { return r.matches(S.css[n]) ? r : one(n, r); } catch (e) { return null; } };
const statusOf = (row) => {
  if (one('failed_icon', row)) return 'failed';
  const icon = one('status_icon', row);
  if (icon) return (icon.getAttribute('aria-label') || icon.getAttribute('data-icon') || '').trim().toLowerCase();
  for (const t of all('status_title', row)) {
    const v = S.ticks[(t.textContent || '').trim()];
    if (v) return v;
  }
  return null;
};
// The open chat's rows, outermost matches only: chat_row may match a row and, inside it, its first child.
const rowsOf = () => {
  const rs = all('chat_row');
  const set = new Set(rs);
  return rs.filter(r => { for (let p = r.parentElement; p; p = p.parentElement) if (set.has(p)) return false;
                          return true; });
};
// A row's WhatsApp id: its data-id (raw, whatever its format), else what follows "conv-msg-" in its data-testid.
const idOf = (r) => {
  const e = mine('message_id', r);
  if (e) return e.getAttribute('data-id');
  const t = mine('message_testid', r);
  const v = t ? (t.getAttribute('data-testid') || '') : '';
  return v ? v.replace(/^conv-msg-/, '') : null;
};
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
// One row by its own marks: null for rows that are not messages (system rows, contact cards), else
// {id, dir: 'out' | 'in' | null, dir_by: 'id' | 'class' | 'tail' | 'status' | null, tail: 'out' | 'in' | null,
//  status, text (null when no text element), more, pre (the raw data-pre-plain-text), times}.
// Direction, first mark that says: a packed id or a direction class (out before in), a tail, a status (only
// outgoing messages carry ticks).
// A row's file: {kind: 'document' | 'video' | 'audio' | 'image', name (a document's, from its Download title; null
// when unreadable)}, or null when it shows none a selector knows.
const mediaOf = (r) => {
  for (const [kind, n] of [['document', 'media_document'], ['video', 'media_video'], ['audio', 'media_audio'],
                           ['image', 'media_image']]) {
    if (!has(r, n)) continue;
    if (kind !== 'document') return {kind, name: null};
    const t = mine('document_title', r);
    const m = t && /^[^"“]*["“](.*)["”]\s*$/.exec(t.getAttribute('title') || '');
    return {kind, name: m ? m[1] : null};
  }
  return null;
};
const readRow = (r) => {
  const bubble = one('message_bubble', r);
  // A message holds a bubble with data-pre-plain-text, or shows a file (a photo without a caption has no such
  // bubble: taking it for a system row would hide it from every reading).
  const media = mediaOf(r);
  if (!bubble && !media) return null;
  const status = statusOf(r);
  const tailOut = has(r, 'out_tail'), tailIn = has(r, 'in_tail');
  const tail = tailOut && !tailIn ? 'out' : tailIn && !tailOut ? 'in' : null;
  let dir = null, by = null;
  if (has(r, 'out_id')) [dir, by] = ['out', 'id'];
  else if (has(r, 'out_class')) [dir, by] = ['out', 'class'];
  else if (has(r, 'in_id')) [dir, by] = ['in', 'id'];
  else if (has(r, 'in_class')) [dir, by] = ['in', 'class'];
  else if (tail) [dir, by] = [tail, 'tail'];
  else if (status) [dir, by] = ['out', 'status'];
  const textEl = one('message_text', r);
  const more = all('read_more', r).find(b => shown(b) && said(b, S.text.read_more)) || null;
  const pre = bubble ? bubble.getAttribute('data-pre-plain-text') : null;
  return {id: idOf(r), dir, dir_by: by, tail, status, text: textEl ? plain(textEl) : null, more: !!more, pre,
          times: timesOf(pre), media};
};
// Rows in page order, with the direction of a run's later bubbles, which carry no tail (2026-11 notes: tails only
// on a run's first bubble). A row with no mark of its own (no packed id, class, tail or status) takes its run's
// direction, dir_by 'run', only when:
//  - the nearest earlier row with a mark carries a tail (the run's head), agrees with it, and shows no status,
//    and every row between them is a message row with no mark of its own (a system or date row ends a run);
//  - the chat shows the other tail somewhere: the page draws it, so a change of direction would have shown one.
// An outgoing head with a status and a row without one disagree on ticks: the row stays null. Otherwise dir stays
// null (unknown: the chat is unverified), never guessed.
const readRows = (rows) => {
  const got = rows.map(readRow);
  const drawn = new Set(got.filter(m => m && m.tail).map(m => m.tail));
  let head = null;
  for (const m of got) {
    if (!m) { head = null; continue; }
    if (m.dir) { head = m.tail && m.dir === m.tail && !m.status ? m : null; continue; }
    if (head && drawn.has(head.tail === 'out' ? 'in' : 'out')) [m.dir, m.dir_by] = [head.tail, 'run'];
  }
  return got;
};
// The open chat: {rows, ids (per row, '' when none), msg_ids (the message rows' ids), out (outgoing message rows),
// unknown (message rows of no known direction), messages, zone (the browser's IANA time zone), now_ms (its clock)}.
const chat = () => {
  const rows = rowsOf();
  const msgs = readRows(rows).filter(x => x);
  let zone = null;
  try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone || null; } catch (e) { /* no Intl */ }
  return {rows: rows.length, ids: rows.map(r => idOf(r) || ''), msg_ids: msgs.map(m => m.id).filter(x => x),
          out: msgs.filter(m => m.dir === 'out'), unknown: msgs.filter(m => !m.dir).length, messages: msgs.length,
          zone, now_ms: Date.now()};
};
"""

# The chat list's items with an unread count: [{title, unread}], in the list's order (newest first).
JS_UNREAD = JS_LIB + r"""
const out = [];
for (const item of all('chat_list_item')) {
  const badge = one('unread_badge', item), title = one('chat_title', item);
  if (!badge || !title) continue;
  const n = /^\s*(\d+)/.exec(badge.getAttribute('aria-label') || '');
  out.push({title: title.getAttribute('title'), unread: n ? Number(n[1]) : null});
}
return out;
"""
# Clicks the chat list item named arguments[1]; false when there is none.
JS_OPEN_FROM_LIST = JS_LIB + r"""
const item = all('chat_list_item').find(i => { const t = one('chat_title', i); return t && t.getAttribute('title') ===
  arguments[1]; });
if (item) item.click();
return !!item;
"""
# The open chat: its name, and its message rows as chat() reads them, both directions, in order.
JS_REPLIES = JS_LIB + r"""
const title = one('open_chat_title');
const rows = rowsOf();
const msgs = readRows(rows).filter(x => x);
return {title: title ? title.getAttribute('title') : null, rows: rows.length, msgs,
        unknown: msgs.filter(m => !m.dir).length};
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
# The same for another box by its selector's name (arguments[1]): the media preview's caption.
JS_BOX_OF = JS_LIB + "const box = visible(arguments[1]); if (box) box.focus(); return box ? plain(box) : null;"
JS_PASTE_INTO = JS_LIB + r"""
const box = visible(arguments[2]);
if (!box) return false;
box.focus();
const data = new DataTransfer();
data.setData('text/plain', arguments[1]);
box.dispatchEvent(new ClipboardEvent('paste', {clipboardData: data, bubbles: true, cancelable: true}));
return true;
"""
# The file inputs in the page, each with its accept list, and whether the attach menu, the preview and a dialog show.
JS_MEDIA_STATE = JS_LIB + r"""
const dialog = all('dialog').find(shown);
return {inputs: all('file_input').map(i => i.getAttribute('accept')), attach: !!visible('attach_button'),
        caption: !!visible('media_caption'), send: !!visible('media_send_button'),
        dialog: dialog ? dialog.innerText.replace(/\s+/g, ' ').trim().slice(0, 300) : null};
"""
JS_FILE_INPUT = JS_LIB + "return all('file_input')[arguments[1]] || null;"
JS_CHAT = JS_LIB + "return chat();"
JS_MARK_CHAT = "window.__waqChat = arguments[1];"  # gone with the document: a reload forgets which chat is open
JS_AFTER_CLICK = JS_LIB + ("const box = visible('compose_box'); const cap = visible('media_caption'); "
                           "return {chat: chat(), box: box ? plain(box) : null, preview: !!(cap || "
                           "visible('media_send_button')), caption: cap ? plain(cap) : null};")
# Expands rows cut behind "Read more" (their full text is not in the DOM until then); returns how many it clicked.
JS_EXPAND = JS_LIB + r"""
let n = 0;
for (const r of rowsOf()) {
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
JS_CLICK_FIRST = JS_LIB + "const el = all(arguments[1]).find(shown); if (el) el.click(); return !!el;"
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
                 notices: Mapping[str, tuple[str, ...]] | None = None, ticks: Mapping[str, str] | None = None) -> None:
        self.css_map = {**SELECTORS, **(css or {})}
        self.text_map = {**TEXTS, **(texts or {})}
        self.notice_map = {**NOTICES, **(notices or {})}
        self.tick_map = {**TICK_TITLES, **(ticks or {})}

    def __getitem__(self, name: str) -> str:
        return self.css_map[name]

    def text(self, name: str) -> str:
        return self.text_map[name]

    def as_js(self) -> dict[str, object]:
        """What the in-page helpers receive: {"css": {...}, "text": {...}, "notices": {kind: [variant, ...]},
        "ticks": {svg title: status}}."""
        return {"css": dict(self.css_map), "text": dict(self.text_map),
                "notices": {k: list(v) for k, v in self.notice_map.items()}, "ticks": dict(self.tick_map)}


def parse_overrides(data: object, source: str = "selectors file") -> Selectors:
    """Validate an override mapping; a typo must stop the worker at start, not miss an element at 3 a.m."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a JSON object of name -> CSS selector")
    css: dict[str, str] = {}
    texts: dict[str, str] = {}
    notices: dict[str, tuple[str, ...]] = {}
    ticks: dict[str, str] = {}
    unknown = []
    for name, value in data.items():
        if name.startswith("text.") and name[5:] in NOTICES:
            notices[name[5:]] = _variants(name, value, source)
            continue
        if name.startswith("tick.") and name[5:].strip():
            if value not in TICK_STATUSES:
                raise ConfigError(f"{source}: {name!r} must be one of {', '.join(TICK_STATUSES)}")
            ticks[name[5:]] = str(value)
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
        known = ", ".join([*SELECTORS, *(f"text.{n}" for n in (*TEXTS, *NOTICES)), "tick.<svg title>"])
        raise ConfigError(f"{source}: unknown selector name(s) {', '.join(map(repr, unknown))}; known: {known}")
    return Selectors(css, texts, notices, ticks)


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
