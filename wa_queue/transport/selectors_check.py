"""`waq selectors check`: which selectors match on the live page, to spot a WhatsApp Web redesign early.

Counts come from the page as it stands (the caller opens the state worth checking: the QR page, the chat list, a
chat); a CSS entry the browser cannot parse reports False, a text entry reports whether some dialog shows it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wa_queue.transport.selenium import SeleniumSender

_JS_COUNT = r"""
const S = arguments[0];
const out = {};
for (const [name, css] of Object.entries(S.css)) {
  try { out[name] = document.querySelectorAll(css).length; } catch (e) { out[name] = false; }
}
let dialogs = [];
try { dialogs = Array.from(document.querySelectorAll(S.css.dialog)).map(d => d.innerText); } catch (e) { /* bad */ }
for (const [name, text] of Object.entries(S.text)) out['text.' + name] = dialogs.some(t => t.includes(text));
return out;
"""


def check_selectors(sender: SeleniumSender, *, open_phone: str | None = None) -> dict[str, bool | int]:
    """name -> number of matches (False for CSS the browser rejects; bool for text entries). With open_phone, the
    chat with that number is opened first so the compose box and the message rows can be counted too."""
    with sender._lock:
        if sender.chrome.driver is None:
            sender.connect()
        if open_phone:
            sender.page.open_chat(open_phone)
        return sender.page.call(_JS_COUNT)


def format_report(counts: dict[str, bool | int]) -> str:
    """A table for the CLI: one selector a line, the missing ones flagged."""
    width = max(map(len, counts), default=0)
    lines = []
    for name, value in counts.items():
        if value is False and not name.startswith("text."):
            mark = "INVALID CSS"
        elif value in (0, False):
            mark = "missing"
        else:
            mark = "ok"
        lines.append(f"{name:<{width}}  {value!s:>5}  {mark}")
    return "\n".join(lines)
