"""`waq selftest`: check a real, logged-in session against the page it actually gets, step by step.

The defaults in selectors.py follow what public sources say about WhatsApp Web; an account may get another build (a
redesign rolls out gradually). This runs what the sender relies on, in the account's chat with itself: the browser
identity, the account's number, the compose box (one visible), the form of the message rows, typing (paste, read
back, a send control appearing, which is never clicked, clear) and, with send=True, two real sends that must each
show up as exactly one new recognised outgoing row and be found again by find_sent. A failed step names the
selectors to override in WAQ_SELECTORS_FILE.
"""

from __future__ import annotations

import dataclasses
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from wa_queue import errors
from wa_queue.models import utcnow
from wa_queue.transport.base import SessionState
from wa_queue.transport.chat import STATUS
from wa_queue.transport.selectors import JS_CHAT, JS_LIB, JS_PASTE

if TYPE_CHECKING:
    from wa_queue.transport.selenium import SeleniumSender

OK, FAIL, SKIP = "ok", "fail", "skip"
REF = "selftest"
LONG_CHARS = 1500  # past the 700 shown before "Read more": the send must expand the row to find it
ROW_FORMS = ("out_id", "out_class", "in_id", "in_class", "out_tail", "in_tail", "status_icon", "status_title")
SEND_CONTROL_S = 5.0  # the page shows its send control once the box has text: this long at most

_JS_BROWSER = r"""
return {ua: navigator.userAgent, lang: document.documentElement.lang || '', language: navigator.language || ''};
"""
_JS_SEND_CONTROL = JS_LIB + "return !!visible('send_button');"
_JS_COMPOSE = JS_LIB + r"""
const boxes = all('compose_box');
return {total: boxes.length, visible: boxes.filter(shown).length,
        no_rects: boxes.filter(b => b.getClientRects().length === 0).length,
        aria_hidden: boxes.filter(b => !!b.closest('[aria-hidden="true"]')).length};
"""
# Per message row, which of the known forms it shows (JS_CHAT only says the direction readRow concluded). A row of no
# known form comes with a sketch of its markup (tags, classes, short attributes; no text, no data-pre-plain-text):
# what an operator writes the override from.
_JS_ROWS = JS_LIB + r"""
const sketch = (row) => [row, ...row.querySelectorAll('*')].map(el => {
  let s = el.tagName.toLowerCase() + Array.from(el.classList).map(c => '.' + c).join('');
  for (const a of el.attributes) {
    if (['class', 'style', 'data-pre-plain-text'].includes(a.name)) continue;
    s += a.value && a.value.length <= 40 ? `[${a.name}="${a.value}"]` : `[${a.name}]`;
  }
  return s;
}).join(' ').slice(0, arguments[2]);
const rows = rowsOf();
const forms = arguments[1];
const msgs = [];
readRows(rows).forEach((m, i) => {
  if (!m) return;
  const by = forms.filter(n => has(rows[i], n));
  msgs.push({id: m.id, dir: m.dir, status: m.status, has_text: m.text !== null,
             by: m.dir_by === 'run' ? [...by, 'run'] : by, sketch: m.dir ? null : sketch(rows[i])});
});
return {rows: rows.length, messages: msgs};
"""
SKETCH_CHARS = 400


@dataclasses.dataclass
class Step:
    name: str
    status: str  # ok | fail | skip
    detail: str
    selectors: list[str] = dataclasses.field(default_factory=list)  # what to override in WAQ_SELECTORS_FILE
    fix: str = ""  # for failures no selector can fix
    data: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Report:
    session: str
    steps: list[Step] = dataclasses.field(default_factory=list)
    sent: list[str] = dataclasses.field(default_factory=list)  # the canaries handed to sender.send, in order

    @property
    def ok(self) -> bool:
        return all(s.status != FAIL for s in self.steps)

    @property
    def override(self) -> list[str]:
        return list(dict.fromkeys(n for s in self.steps if s.status == FAIL for n in s.selectors))

    def as_dict(self) -> dict[str, Any]:
        return {"session": self.session, "ok": self.ok, "override": self.override,
                "steps": [dataclasses.asdict(s) for s in self.steps], "sent_chars": [len(t) for t in self.sent]}


class _Stop(Exception):
    """Internal: a step failed that the later ones need."""


def canaries(token: str) -> tuple[str, str, str]:
    """(typed, short, long). The typed one has what breaks naive typing: a newline, an emoji outside the BMP
    (ChromeDriver's send_keys cannot type it) and WhatsApp formatting, whose markers the editor must keep."""
    typed = f"waq selftest {token}\nsecond line 🙂 *bold*"
    short = f"waq selftest {token} 🙂 *short*"
    head = f"waq selftest {token} long\n"
    filler = "".join(f"{i:04d} lorem ipsum dolor sit amet. " for i in range(LONG_CHARS // 20))
    return typed, short, (head + filler)[:LONG_CHARS - 1] + "🙂"


def run_selftest(sender: SeleniumSender, *, send: bool = False, echo: Callable[[Step], None] | None = None) -> Report:
    """Run every step on the session's browser (started and loaded here when it is not yet); stops at the first
    failure a later step depends on. With send, two canaries go to the account's own number, only once every check
    before passed: a send whose row cannot be recognised could not be verified."""
    report = Report(sender.session)

    def add(step: Step) -> Step:
        report.steps.append(step)
        if echo:
            echo(step)
        return step

    with sender._lock:  # one command stream per browser, as the sender's own methods
        try:
            _run(sender, add, report, send)
        except _Stop:
            pass
        except errors.ConfigError:
            raise  # an invalid WAQ_SELECTORS_FILE entry: a usage error, not a finding about the page
        except Exception as exc:  # noqa: BLE001 - a browser or page failure mid-check is a finding, not a traceback
            first = (str(exc).strip().splitlines() or [""])[0]
            add(Step("error", FAIL, f"{type(exc).__name__}: {first}",
                     fix="the browser or the page failed under the check: run it again; see the log if it persists"))
    return report


def _run(sender: SeleniumSender, add: Callable[[Step], Step], report: Report, send: bool) -> None:
    state = sender.connect() if sender.chrome.driver is None else sender.state()
    _need(add(_browser(sender)))
    _need(add(_session(sender, state)))
    own = sender.account_number()
    _need(add(Step("account", OK, f"+{own} (localStorage last-wid-md / last-wid)", data={"number": own}) if own else
               Step("account", FAIL, "no number in localStorage last-wid-md or last-wid",
                    fix="the page keeps the account's number elsewhere now: the sender cannot open its own chat")))
    phone = "+" + own
    _need(add(_compose(sender, phone)))
    rows, seen = _rows(sender, send)
    add(rows)
    typed_text, short, long = canaries(secrets.token_hex(3))  # one token a run: the operator finds its canaries
    typed, control = _typing(sender, typed_text)
    add(typed)
    add(control)
    if not send:
        return
    if FAIL in (rows.status, typed.status, control.status):
        add(Step("send", SKIP, "not sent: fix the failures above first (a send that cannot be verified in the chat "
                               "could be sent twice)"))
        return
    for name, text in (("send short", short), ("send long", long)):
        step, seen = _send(sender, phone, text, name, report, seen)
        _need(add(step))


def _need(step: Step) -> None:
    if step.status == FAIL:
        raise _Stop


def _browser(sender: SeleniumSender) -> Step:
    if sender.chrome.driver is None:
        return Step("browser", FAIL, "Chrome did not start (or died on the first page)",
                    fix="run `waq doctor --check chromium --check chromedriver`")
    info = sender.page.call(_JS_BROWSER)
    detail = f"{info['ua']}; page lang {info['lang'] or '(none)'}, navigator.language {info['language']}"
    data = dict(info)
    if "headless" in info["ua"].lower():
        return Step("browser", FAIL, detail, data=data,
                    fix="WhatsApp refuses HeadlessChrome: set WAQ_CHROME_USER_AGENT to a desktop Chrome's")
    if not (info["lang"] or info["language"]).lower().startswith("en"):
        # The text.* entries (dialogs, "Read more", "Use here") are English wording.
        detail += "; not English: override the text.* entries in WAQ_SELECTORS_FILE"
    return Step("browser", OK, detail, data=data)


def _session(sender: SeleniumSender, state: SessionState) -> Step:
    value = getattr(state, "value", str(state))
    if state is SessionState.CONNECTED:
        return Step("session", OK, "logged in (logged_in matches)")
    fixes = {
        SessionState.QR: f"not logged in: `waq sessions qr {sender.session} --out qr.png` and scan it",
        SessionState.LOGGED_OUT: f"logged out: `waq sessions qr {sender.session} --out qr.png` and scan it",
        SessionState.PHONE_DISCONNECTED: "the phone is offline: connect it and keep WhatsApp open",
    }
    if state is SessionState.BANNED:
        return Step("session", FAIL, f"{value}: WhatsApp says: {sender.last_problem()}",
                    fix="appeal from the phone (Settings > Help > Contact us); nothing can be sent until it is lifted")
    if state in fixes:
        return Step("session", FAIL, value, fix=fixes[state])
    if sender.chrome.driver is not None and sender.page.probe()["update_browser"]:
        return Step("session", FAIL, f"{value}: WhatsApp shows its 'update your browser' page",
                    fix="it refuses the user agent: set WAQ_CHROME_USER_AGENT to a current desktop Chrome's")
    # Neither the QR nor the chat list was recognised in time: either selector may be out of date.
    return Step("session", FAIL, f"{value}: neither the chat list nor the QR code was recognised",
                selectors=["logged_in", "qr_canvas"], fix="or WhatsApp shows a page wa-queue does not know")


def _compose(sender: SeleniumSender, phone: str) -> Step:
    try:
        page = sender.page.open_chat(phone)
        opened = ""
    except errors.WaQueueError as exc:
        page, opened = {"invalid": False}, f"; opening the chat failed: {exc}"
    if page["invalid"]:
        return Step("compose_box", FAIL, f"WhatsApp calls the own number {phone} invalid",
                    fix=f"check that {phone} is this account's number (localStorage last-wid-md)")
    counts = sender.page.call(_JS_COMPOSE)
    hidden = counts["total"] - counts["visible"]
    detail = (f"chat with {phone}: {counts['total']} compose_box match, {counts['visible']} visible, {hidden} hidden "
              f"({counts['aria_hidden']} under aria-hidden, {counts['no_rects']} without client rects){opened}")
    if not counts["visible"]:
        return Step("compose_box", FAIL, f"{detail}; no visible one", selectors=["compose_box"], data=counts)
    if opened:  # a box is there, so something else kept the chat from opening (the error says what)
        return Step("compose_box", FAIL, detail, data=counts)
    if counts["visible"] > 1:
        detail += "; the sender types into the first visible one"
    return Step("compose_box", OK, detail, data=counts)


def _rows(sender: SeleniumSender, send: bool) -> tuple[Step, set[str] | None]:
    """The row-form step, and the ids of the settled chat's rows (what a send's new row is told apart from)."""
    try:
        settled = sender.page.settled_chat(REF)  # JS_CHAT, as the sender reads a chat
    except errors.WaQueueError as exc:
        return Step("rows", FAIL, str(exc), selectors=["chat_row"]), None
    found = sender.page.call(_JS_ROWS, list(ROW_FORMS), SKETCH_CHARS) | {"unknown": settled["unknown"]}
    ids = {i for i in settled["ids"] if i}
    if not found["messages"]:
        later = "the sends below check it" if send else "send yourself a message (or use --send), then run it again"
        return Step("rows", SKIP, f"{found['rows']} rows, no message rows in the chat with yourself: {later}",
                    data=found), ids
    return _judge_rows(found), ids


def _judge_rows(found: dict[str, Any]) -> Step:
    """One line: how many message rows each combination of forms recognised, the statuses seen, what is missing."""
    msgs = found["messages"]
    forms: dict[str, int] = {}
    for m in msgs:
        if m["dir"]:
            key = f"{m['dir']} by {'+'.join(m['by'])}"
            forms[key] = forms.get(key, 0) + 1
    labels = sorted({m["status"] for m in msgs if m["status"]})
    seen = [f"{x} ({STATUS[x]})" if STATUS.get(x, x) != x else x for x in labels]
    detail = (f"{len(msgs)} message rows of {found['rows']} rows: "
              + (", ".join(f"{n} {k}" for k, n in forms.items()) or "none recognised")
              + f"; status labels seen: {', '.join(seen) or 'none'}")
    unknown = [m for m in msgs if not m["dir"]]
    out = [m for m in msgs if m["dir"] == "out"]
    problems, names = [], []
    if unknown or found.get("unknown"):
        count = max(len(unknown), found.get("unknown", 0))
        sketch = f"; the first one's markup: {unknown[0]['sketch']}" if unknown else ""
        problems.append(f"{count} message rows of no known form (their direction is unknown){sketch}")
        names += list(ROW_FORMS)
    if out and not any(m["status"] for m in out):
        problems.append("no outgoing row shows a status: a send could never be confirmed")
        names.append("status_icon")
    if not any(m["has_text"] for m in msgs):
        problems.append("no message row has a text element: no text can be compared")
        names.append("message_text")
    if problems:
        return Step("rows", FAIL, "; ".join([detail, *problems]), selectors=list(dict.fromkeys(names)), data=found)
    return Step("rows", OK, detail, data=found)


def _typing(sender: SeleniumSender, text: str) -> tuple[Step, Step]:
    """Paste a canary the way the sender does, read it back once the editor settled, look for the send control the
    text brings (never clicked), clear it; never send it. The typing step and the send_button step."""
    draft = sender.page.settled_box("")
    note = ""
    if draft:  # as the sender does before typing: a draft in the own chat would be replaced by the next send too
        sender.page.clear_box()
        note = f"; cleared a draft of {len(draft)} characters first"
    if not sender.page.call(JS_PASTE, text):
        return (Step("typing", FAIL, "no visible compose_box to paste into", selectors=["compose_box"]),
                Step("send_button", SKIP, "not checked: nothing was typed"))
    typed = sender.page.settled_box(text)
    how = "pasted"
    if typed != text:
        # The sender's fallback when a build does not take the paste as is: CDP typing, line by line.
        note += f"; the paste read back {typed!r}, so typed line by line (the sender's slower fallback)"
        sender.page.clear_box()
        if sender.page.settled_box("") == "":
            sender.page.type_lines(text)
            typed, how = sender.page.settled_box(text), "typed"
    control = _send_control(sender) if typed == text else Step("send_button", SKIP,
                                                                "not checked: the box did not hold the canary")
    sender.page.clear_box()
    left = sender.page.settled_box("")
    clear_fix = "" if left == "" else "clear the compose box of your own chat by hand (do not press Enter)"
    if typed != text:
        return Step("typing", FAIL, f"the box read back {typed!r} for {text!r}{note}", selectors=["compose_box"],
                    fix=clear_fix), control
    if left != "":
        return Step("typing", FAIL, f"{how} exactly, but clearing left {left!r}", selectors=["compose_box"],
                    fix=clear_fix), control
    return Step("typing", OK, f"{len(text)} characters (newline, emoji, *bold*) {how}, read back exactly and "
                              f"cleared without sending{note}"), control


def _send_control(sender: SeleniumSender) -> Step:
    """With the canary in the box, a visible send_button must appear within SEND_CONTROL_S; it is not clicked."""
    deadline = time.monotonic() + SEND_CONTROL_S
    while not sender.page.call(_JS_SEND_CONTROL):
        if time.monotonic() > deadline:
            return Step("send_button", FAIL, f"no visible send control within {SEND_CONTROL_S:g}s of typing "
                        f"(send_button: {sender.page.selectors['send_button']})", selectors=["send_button"])
        time.sleep(0.1)
    return Step("send_button", OK, "a send control appeared once the box held text (not clicked)")


def _send(sender: SeleniumSender, phone: str, text: str, name: str, report: Report,
          before: set[str] | None) -> tuple[Step, set[str] | None]:
    """One canary: exactly one new recognised outgoing row, and find_sent finds it. Also returns the chat's row ids
    afterwards, the next send's `before`."""
    try:
        if before is None:
            before = {i for i in sender.page.settled_chat(REF)["ids"] if i}
        since = utcnow()
        report.sent.append(text)
        receipt = sender.send(phone, text, ref=REF)
    except errors.WaQueueError as exc:
        return _send_failed(sender, name, f"{len(text)} characters: {type(exc).__name__}: {exc}"), None
    # find_sent compares the rendered text (message_text), expanding a long one first (read_more).
    suspects = ["message_text", "read_more"] if len(text) > 700 else ["message_text"]
    try:
        hit, why = sender.find_sent(phone, text, ref=REF, since=since), "nothing (no row with this text)"
    except errors.SendOutcomeUnknown as exc:  # the new row still reads as Pending
        hit, why, suspects = None, f"{type(exc).__name__}: {exc}", ["status_icon"]
    except errors.WaQueueError as exc:
        hit, why = None, f"{type(exc).__name__}: {exc}"
    after = sender.page.call(JS_CHAT)  # find_sent just read the chat settled, "Read more" expanded
    new = [r for r in after["out"] if r["id"] not in before]
    if len(new) != 1 or after["unknown"]:
        return _send_failed(sender, name, f"{len(text)} characters sent ({receipt.wa_id}), then {len(new)} new "
                                          f"recognised outgoing rows and {after['unknown']} of no known form"), None
    if hit is None or hit.wa_id != new[0]["id"]:
        found = why if hit is None else f"another row, {hit.wa_id}"
        return Step(name, FAIL, f"{len(text)} characters sent as {new[0]['id']}; find_sent found {found}",
                    selectors=suspects, data={"wa_id": new[0]["id"]}), None
    return Step(name, OK, f"{len(text)} characters: one new outgoing row {hit.wa_id} ({hit.status}), "
                          "find_sent finds it", data={"wa_id": hit.wa_id, "status": hit.status, "chars": len(text)}), \
        {i for i in after["ids"] if i}


def _send_failed(sender: SeleniumSender, name: str, detail: str) -> Step:
    """A send step failed: name the row selectors when the chat's rows say which."""
    try:
        found = sender.page.call(_JS_ROWS, list(ROW_FORMS), SKETCH_CHARS)
        judged = _judge_rows(found) if found["messages"] else None
    except Exception:  # noqa: BLE001 - the browser may be gone; the failure is reported either way
        judged = None
    names = judged.selectors if judged and judged.status == FAIL else ["chat_row", "status_icon", "message_text"]
    return Step(name, FAIL, detail + (f"; rows: {judged.detail}" if judged else ""), selectors=names)


def format_step(step: Step) -> str:
    line = f"{step.status.upper() if step.status == FAIL else step.status:5} {step.name:12} {step.detail}"
    if step.status == FAIL and step.selectors:
        line += f"\n{'':5} {'':12} override: {', '.join(step.selectors)}"
    if step.fix:
        line += f"\n{'':5} {'':12} fix: {step.fix}"
    return line


def format_summary(report: Report) -> str:
    if report.ok:
        return f"selftest of session {report.session} passed"
    if report.override:
        return (f"selftest of session {report.session} FAILED: override {', '.join(report.override)} in "
                "WAQ_SELECTORS_FILE (a JSON object name -> CSS; `waq selectors check` counts the matches)")
    return f"selftest of session {report.session} FAILED: see the fix above"
