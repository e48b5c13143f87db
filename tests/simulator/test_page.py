"""The strict simulator page in a real Chromium: row markup per profile, the Lexical-like editor, rendering, timing."""

from __future__ import annotations

import re
import time
import urllib.parse
from typing import Any

import pytest
import requests
from selenium.webdriver.common.keys import Keys

from tests.helpers.constants import SIM_DEST as DEST
from tests.simulator.chrome import (
    COMPOSE,
    PASTE,
    READ_ROW_TEXT,
    ROWS,
    SEND,
    account_of,
    box,
    clear_box,
    css,
    editor_text,
    insert_text,
    sim_server,
    wait,
    wait_editor,
)

PRE_OUT = re.compile(r"^\[\d\d:\d\d, \d{1,2}/\d{1,2}/\d{4}\] Me: $")
PRE_IN = re.compile(rf"^\[\d\d:\d\d, \d{{1,2}}/\d{{1,2}}/\d{{4}}\] \+{DEST}: $")
SYSTEM_TEXT = ("Messages and calls are end-to-end encrypted. No one outside of this chat, not even WhatsApp, can read "
               "or listen to them.")

# What each profile must and must not show (README.md, "Markup profiles").
PROFILES: dict[str, dict[str, Any]] = {
    "2026-03": {"packed": True, "dir_class": True, "tails": True,
                "text": 'span.selectable-text.copyable-text[data-testid="selectable-text"]',
                "pending": 'span[data-icon="msg-time"]', "read": 'span[data-icon="msg-dblcheck"][aria-label=" Read "]',
                "wid": ("last-wid", "{account}@c.us")},
    "2026-05": {"packed": False, "dir_class": True, "tails": False,
                "text": 'span._ao3e._aupe.copyable-text[data-testid="selectable-text"]:not(.selectable-text)',
                "pending": 'span[data-icon="msg-time"]', "read": 'span[data-icon="msg-dblcheck"][aria-label=" Read "]',
                "wid": ("last-wid-md", "{account}:{n}@c.us")},
    "2026-08": {"packed": True, "dir_class": False, "tails": True,
                "text": 'span.selectable-text.copyable-text[data-testid="selectable-text"]',
                "pending": 'span[aria-label=" Pending "] svg title', "read": 'span[aria-label=" Read "] svg title',
                "wid": ("last-wid-md", "{account}:{n}@c.us")},
    "2026-11": {"packed": True, "dir_class": False, "tails": "run", "testid": True,
                "text": 'span.selectable-text.copyable-text[data-testid="selectable-text"]',
                "pending": 'span[aria-label=" Pending "][role="img"]:not([data-icon]) svg title',
                "read": 'span[aria-label=" Read "][role="img"]:not([data-icon]) svg title',
                "send": 'footer div[role="button"][aria-label="Send"] span[data-icon="wds-ic-send-filled"]',
                "wid": ("last-wid-md", "{account}:{n}@c.us")},
    "unknown": {"packed": False, "dir_class": False, "tails": False, "text": "span.x9f619",
                "pending": 'span[data-status="0"]', "read": 'span[data-status="3"]',
                "wid": ("last-wid-md", "{account}:{n}@c.us")},
}


def send_url(sim: Any, phone: str, text: str = "") -> str:
    return f"{sim.url}/send?phone={phone}&text={urllib.parse.quote(text, safe='')}"


def rows(driver: Any) -> list:
    return css(driver, ROWS)


@pytest.mark.parametrize("markup", list(PROFILES))
def test_rows_follow_the_markup_profile(browser: Any, markup: str) -> None:
    spec = PROFILES[markup]
    sim = sim_server(markup=markup, config={"ack_delay_s": 1.0})  # Pending long enough to be seen under load
    try:
        account = account_of(sim, browser)
        browser.get(send_url(sim, DEST, "first *one*"))
        compose = box(browser)
        wait_editor(browser, compose, "first *one*")
        wait(browser, lambda d: css(d, spec.get("send", SEND)), "the send button")[0].click()  # a trusted click
        wait(browser, lambda d: css(d, f"{ROWS} {spec['pending']}"), "the Pending tick")
        compose.click()  # the click left the focus on the send button
        insert_text(browser, "second")
        wait_editor(browser, compose, "second")
        compose.send_keys(Keys.ENTER)  # a trusted Enter
        requests.post(f"{sim.url}/__sim__/incoming", json={"account": account, "from": DEST, "text": "hi _there_"},
                      timeout=5).raise_for_status()
        wait(browser, lambda d: len(rows(d)) == 4, "system row, two outgoing rows and an incoming one")
        wait(browser, lambda d: len(css(d, f"{ROWS} {spec['read']}")) == 2, "both outgoing rows Read")

        sent = requests.get(f"{sim.url}/__sim__/sent", timeout=5).json()
        assert [m["text"] for m in sent] == ["first *one*", "second"]
        [incoming] = requests.get(f"{sim.url}/__sim__/incoming", timeout=5).json()
        bubbles = [r.find_element("css selector", "div[data-id]") for r in rows(browser)]
        ids = [b.get_attribute("data-id") for b in bubbles]
        assert re.fullmatch(r"[0-9A-F]{20}", ids[0]) and not bubbles[0].find_elements("css selector",
                                                                                     "[data-pre-plain-text]")
        if spec["packed"]:
            assert ids[1:] == [sent[0]["id"], sent[1]["id"], incoming["id"]]
            assert ids[1].startswith(f"true_{DEST}@c.us_") and ids[3].startswith(f"false_{DEST}@c.us_")
        else:
            assert ids[1:] == [sent[0]["bare_id"], sent[1]["bare_id"], incoming["bare_id"]]
            assert all(re.fullmatch(r"3EB0[0-9A-F]{20}", i) for i in ids[1:3]) and "_" not in ids[3]
        out_class = [b.get_attribute("class").split() for b in bubbles[1:]]
        if spec["dir_class"]:
            assert "message-out" in out_class[0] and "message-out" in out_class[1] and "message-in" in out_class[2]
        else:
            assert not css(browser, ".message-out, .message-in")
        tails = [[t.get_attribute("data-icon") for t in b.find_elements("css selector", '[data-icon^="tail-"]')]
                 for b in bubbles[1:]]
        if spec["tails"] == "run":  # on a run's first bubble only: out, (out), in
            assert tails == [["tail-out"], [], ["tail-in"]]
        else:
            assert tails == ([["tail-out"], ["tail-out"], ["tail-in"]] if spec["tails"] else [[], [], []])
        testids = [b.get_attribute("data-testid") for b in bubbles[1:]]
        assert testids == ([f"conv-msg-{i}" for i in ids[1:]] if spec.get("testid") else [None] * 3)
        if markup == "2026-11":  # no msg-* icons: the ticks are an aria-label and the SVG <title>
            assert not css(browser, f'{ROWS} [data-icon^="msg-"]')
            # send is a div[role=button]; the footer's only <button> is the attach menu's (plus-rounded)
            assert [len(b.find_elements("css selector", '[data-icon="plus-rounded"]'))
                    for b in css(browser, "footer button")] == [1]
            titles = [t.get_attribute("textContent") for t in css(browser, f"{ROWS} {spec['read']}")]
            assert titles == ["wds-ic-read", "wds-ic-read"]

        pres = [b.find_element("css selector", "div.copyable-text[data-pre-plain-text]") for b in bubbles[1:]]
        assert [bool(PRE_OUT.match(p.get_attribute("data-pre-plain-text"))) for p in pres] == [True, True, False]
        assert PRE_IN.match(pres[2].get_attribute("data-pre-plain-text"))
        texts = [p.find_element("css selector", spec["text"]) for p in pres]
        assert [browser.execute_script(READ_ROW_TEXT, t) for t in texts] == ["first one", "second", "hi there"]
        if markup == "unknown":  # nothing a driver knows: no labels, no named ticks, no known text span
            assert not css(browser, f'{ROWS} [aria-label], {ROWS} [data-icon^="msg-"], {ROWS} [data-testid]')
            assert not css(browser, f"{ROWS} .selectable-text")
        key, value = spec["wid"]
        n = browser.execute_script("return localStorage.getItem(arguments[0])", key)
        assert re.fullmatch(re.escape(value).replace(r"\{account\}", account).replace(r"\{n\}", r"\d+"),
                            n.strip('"')), n
        other = "last-wid" if key == "last-wid-md" else "last-wid-md"
        assert browser.execute_script("return localStorage.getItem(arguments[0])", other) is None
    finally:
        sim.stop()


def test_the_editor_takes_only_the_users_input(browser: Any) -> None:
    sim = sim_server(config={"input_delay_ms": 150})
    try:
        browser.get(send_url(sim, DEST))
        compose = box(browser)
        decoy = browser.execute_script(f"return document.querySelector('{COMPOSE}')")  # the first match in the DOM
        assert decoy != compose and browser.execute_script("return !!arguments[0].closest('[aria-hidden=\"true\"]')",
                                                           decoy)
        assert compose.get_attribute("data-lexical-editor") == "true"
        assert compose.get_attribute("aria-placeholder") == "Type a message"
        assert browser.execute_script("return arguments[0].innerHTML", compose).endswith("<br></p>")
        assert not css(browser, SEND) and css(browser, 'footer [aria-label="Voice message"]')

        # Untrusted input events and script edits of the DOM do not reach the model.
        browser.execute_script("""
            const b = arguments[0];
            b.dispatchEvent(new InputEvent('beforeinput', {inputType: 'insertText', data: 'X', bubbles: true,
                                                           cancelable: true}));
            b.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', bubbles: true, cancelable: true}));""",
                               compose)
        for edit in ("arguments[0].innerHTML = '<p>HACK</p>'", "arguments[0].textContent = 'HACK'",
                     "arguments[0].focus(); document.execCommand('insertText', false, 'HACK')",
                     "arguments[0].firstChild.appendChild(document.createTextNode('HACK'))"):
            browser.execute_script(edit, compose)
            time.sleep(0.05)
            assert "HACK" not in compose.text, edit
        time.sleep(0.4)
        assert editor_text(browser, compose) == "" and not css(browser, SEND)

        # A synthetic paste lands, but after the script turn that dispatched it.
        assert browser.execute_script(PASTE, compose, "pasted\r\nline") == ""
        wait_editor(browser, compose, "pasted\nline")
        assert css(browser, SEND)
        html = browser.execute_script("return arguments[0].innerHTML", compose)
        assert html == ('<p class="selectable-text copyable-text" dir="ltr"><span data-lexical-text="true">pasted'
                        '</span><br><span data-lexical-text="true">line</span></p>')

        clear_box(browser)  # CDP Ctrl+A (selectAll) then Backspace
        wait_editor(browser, compose, "")
        wait(browser, lambda d: not css(d, SEND), "the voice-note button back")

        insert_text(browser, "abc 😀")  # CDP Input.insertText: the user's typing
        wait_editor(browser, compose, "abc 😀")
        compose.send_keys(Keys.SHIFT, Keys.ENTER)
        wait_editor(browser, compose, "abc 😀\n")
        terminator = "const p = arguments[0].querySelector('p'); return p.__lexicalLineBreak === p.lastChild"
        assert browser.execute_script(terminator, compose)
        insert_text(browser, "def")
        wait_editor(browser, compose, "abc 😀\ndef")
        compose.send_keys(Keys.ENTER)
        wait(browser, lambda d: len(rows(d)) == 2, "the sent row")
        wait_editor(browser, compose, "")
        assert [m["text"] for m in requests.get(f"{sim.url}/__sim__/sent", timeout=5).json()] == ["abc 😀\ndef"]
    finally:
        sim.stop()


def test_rows_render_whatsapp_formatting_links_emoji_and_read_more(browser: Any) -> None:
    sim = sim_server()
    try:
        account = account_of(sim, browser)
        styled = ("*bold* _italic_ ~strike~ `mono` snake_case_name 2*3*4 😀 see https://example.com/a_b?x=1, "
                  "www.example.org.\nnext")
        long = "L" * 650 + "\n" + "tail " * 40 + "end"
        for text in (styled, long):
            requests.post(f"{sim.url}/__sim__/incoming", json={"account": account, "from": DEST, "text": text},
                          timeout=5).raise_for_status()
        browser.get(send_url(sim, DEST))
        wait(browser, lambda d: len(rows(d)) == 3, "the history")
        first, second = (r.find_element("css selector", "span.selectable-text") for r in rows(browser)[1:])
        html = first.get_attribute("innerHTML")
        for tag, word in (("strong", "bold"), ("em", "italic"), ("del", "strike"), ("code", "mono")):
            assert f"<{tag}>{word}</{tag}>" in html
        text = browser.execute_script(READ_ROW_TEXT, first)
        assert text == ("bold italic strike mono snake_case_name 2*3*4 😀 see https://example.com/a_b?x=1, "
                        "www.example.org.\nnext")
        assert first.find_element("css selector", "img.emoji").get_attribute("alt") == "😀"
        links = {a.get_attribute("href"): a.text for a in first.find_elements("css selector", "a[href]")}
        assert links == {"https://example.com/a_b?x=1": "https://example.com/a_b?x=1",
                         "http://www.example.org/": "www.example.org"}
        assert len(first.find_elements("css selector", "br")) == 1

        assert browser.execute_script(READ_ROW_TEXT, second) == long[:700]
        more = rows(browser)[2].find_element("css selector", 'div[role="button"]')
        assert more.text == "Read more" and not second.find_elements("css selector", 'div[role="button"]')
        more.click()
        wait(browser, lambda d: d.execute_script(READ_ROW_TEXT, second) == long, "the full text")
        assert not rows(browser)[2].find_elements("css selector", 'div[role="button"]')
    finally:
        sim.stop()


def test_history_renders_after_the_compose_box_system_row_first(browser: Any) -> None:
    sim = sim_server(config={"history_delay_ms": 1500})
    try:
        account = account_of(sim, browser)
        requests.post(f"{sim.url}/__sim__/incoming", json={"account": account, "from": DEST, "text": "earlier"},
                      timeout=5).raise_for_status()
        browser.get(send_url(sim, DEST))
        box(browser)
        shown = time.monotonic()
        assert not rows(browser)  # an empty list right after opening says nothing yet
        wait(browser, lambda d: len(rows(d)) == 2, "the history")
        assert time.monotonic() - shown > 0.3
        system = rows(browser)[0]
        assert system.text == SYSTEM_TEXT
        assert re.fullmatch(r"[0-9A-F]{20}", system.find_element("css selector", "div[data-id]").get_attribute(
            "data-id"))
        assert not system.find_elements("css selector", "[data-pre-plain-text]")
        assert "earlier" in rows(browser)[1].text
        state = requests.get(f"{sim.url}/__sim__/incoming", timeout=5).json()
        assert [m["direction"] for m in state] == ["in"]
    finally:
        sim.stop()


def test_conflict_is_a_full_page_until_use_here(browser: Any) -> None:
    from selenium.common.exceptions import NoSuchElementException

    sim = sim_server()
    try:
        account = account_of(sim, browser)
        requests.post(f"{sim.url}/__sim__/faults", json={"session": account, "fault": "conflict"}, timeout=5)
        browser.get(send_url(sim, DEST, "keep me"))
        text = 'WhatsApp is open in another window. Click "Use here" to use WhatsApp in this window.'
        wait(browser, lambda d: text in d.find_element("tag name", "body").text, "the conflict page")
        assert not css(browser, "#pane-side") and not css(browser, 'div[role="dialog"]')
        buttons = {b.text: b for b in css(browser, 'div[role="button"]')}
        assert set(buttons) == {"Close", "Use here"}
        buttons["Use here"].click()
        wait_editor(browser, box(browser), "keep me")  # the /send load went on to its chat
        assert requests.get(f"{sim.url}/__sim__/faults", timeout=5).json()["sessions"] == {}

        requests.post(f"{sim.url}/__sim__/faults", json={"session": account, "fault": "conflict"}, timeout=5)
        wait(browser, lambda d: text in d.find_element("tag name", "body").text, "the conflict page, live")
        assert not css(browser, "#pane-side") and not css(browser, COMPOSE)
        with pytest.raises(NoSuchElementException):
            browser.find_element("css selector", "#main")
    finally:
        sim.stop()


def test_whats_new_overlay_intercepts_clicks_until_ok(browser: Any) -> None:
    from selenium.common.exceptions import ElementClickInterceptedException

    sim = sim_server(config={"whats_new": True})
    try:
        browser.get(send_url(sim, DEST, "behind the overlay"))
        overlay = wait(browser, lambda d: css(d, 'div[role="dialog"][aria-label="What\'s new"]'), "What's new")[0]
        assert overlay.value_of_css_property("position") == "fixed"
        send = wait(browser, lambda d: css(d, SEND), "the send button")[0]
        with pytest.raises(ElementClickInterceptedException):
            send.click()
        assert not rows(browser)[1:] and requests.get(f"{sim.url}/__sim__/sent", timeout=5).json() == []
        ok = overlay.find_element("css selector", 'div[role="button"]')
        assert ok.text == "OK"
        ok.click()
        wait(browser, lambda d: not css(d, 'div[role="dialog"]'), "the overlay to close")
        css(browser, SEND)[0].click()
        wait(browser, lambda d: requests.get(f"{sim.url}/__sim__/sent", timeout=5).json(), "the send")
        browser.get(sim.url)  # closed for good for this device
        wait(browser, lambda d: css(d, "#pane-side"), "the app")
        time.sleep(0.6)
        assert not css(browser, 'div[role="dialog"]')
    finally:
        sim.stop()


def test_boot_shows_loading_your_chats_before_the_app(browser: Any) -> None:
    sim = sim_server(config={"boot_delay_s": 1.5, "starting_chat_s": 1.0})
    try:
        account_of(sim, browser)
        browser.get(send_url(sim, DEST, "after boot"))
        assert "Loading your chats" in browser.find_element("tag name", "body").text
        assert css(browser, "progress") and not css(browser, "#pane-side")
        assert not css(browser, 'div[role="dialog"]')  # "Starting chat" waits for the boot too
        started = time.monotonic()
        wait(browser, lambda d: [e for e in css(d, 'div[role="dialog"]') if "Starting chat" in e.text], "Starting chat")
        assert css(browser, "#pane-side") and not css(browser, "progress")
        wait_editor(browser, box(browser), "after boot")
        assert time.monotonic() - started > 0.2
    finally:
        sim.stop()


# The time and date a data-pre-plain-text shows, as epoch ms in the browser's own zone (where the page formatted it).
PRE_MS = """
const m = /^\\[(\\d\\d):(\\d\\d), (\\d{1,2})\\/(\\d{1,2})\\/(\\d{4})\\]/.exec(arguments[0]);
return new Date(+m[5], +m[3] - 1, +m[4], +m[1], +m[2]).getTime();
"""


@pytest.mark.parametrize("skew", [-240.0, 600.0])
def test_clock_skew_shifts_every_time_the_page_shows(browser: Any, skew: float) -> None:
    sim = sim_server(markup="2026-11", clock_skew_s=skew)
    try:
        account = account_of(sim, browser)
        requests.post(f"{sim.url}/__sim__/incoming", json={"account": account, "from": DEST, "text": "earlier"},
                      timeout=5).raise_for_status()
        browser.get(send_url(sim, DEST, "skewed"))
        compose = box(browser)
        wait_editor(browser, compose, "skewed")
        wait(browser, lambda d: len(rows(d)) == 2, "the history")
        css(browser, PROFILES["2026-11"]["send"])[0].click()
        wait(browser, lambda d: len(rows(d)) == 3, "the sent row")
        recorded = [m["time"] for m in requests.get(f"{sim.url}/__sim__/incoming", timeout=5).json()]
        recorded += [m["time"] for m in requests.get(f"{sim.url}/__sim__/sent", timeout=5).json()]
        for row, at in zip(rows(browser)[1:], recorded, strict=True):
            pre = row.find_element("css selector", "[data-pre-plain-text]").get_attribute("data-pre-plain-text")
            shown_ms = browser.execute_script(PRE_MS, pre)
            assert abs(shown_ms - (at + skew) * 1000) < 60_000, (pre, at, skew)  # minute resolution
            meta = row.find_element("css selector", ".meta .time").text
            assert pre.startswith(f"[{meta}, ")  # the time under the bubble is shifted the same way
        assert requests.get(f"{sim.url}/__sim__/config", timeout=5).json()["clock_skew_s"] == skew
    finally:
        sim.stop()


@pytest.mark.parametrize(("config", "control"), [
    ({}, 'footer div[role="button"][aria-label="Send"] > span[data-icon="wds-ic-send-filled"]'),
    ({"send_control": "button"}, 'footer button[aria-label="Send"] > span[data-icon="wds-ic-send-filled"]'),
    ({"send_control": "unknown"},
     'footer div[tabindex="0"]:not([role]):not([aria-label]) > span[data-icon="wds-ic-send-v2"]'),
])
def test_2026_11_send_control_forms(browser: Any, config: dict, control: str) -> None:
    from wa_queue.transport.selectors import JS_PROBE, Selectors

    sim = sim_server(markup="2026-11", config=config)
    try:
        browser.get(send_url(sim, DEST, "via the control"))
        compose = box(browser)
        wait_editor(browser, compose, "via the control")
        button = wait(browser, lambda d: css(d, control), "the send control")[0]
        known = browser.execute_script(JS_PROBE, Selectors().as_js())["send_button"]
        assert known is (config.get("send_control") != "unknown")  # the defaults know the div and the button
        button.click()  # a person can click any of them
        wait(browser, lambda d: len(rows(d)) == 2, "the sent row")
        assert [m["text"] for m in requests.get(f"{sim.url}/__sim__/sent", timeout=5).json()] == ["via the control"]
        wait(browser, lambda d: not css(d, control), "the voice-note control back")
    finally:
        sim.stop()


def test_2026_11_bare_ids_and_title_only_ticks(browser: Any) -> None:
    """The variants that leave only tails, runs and SVG titles: what JS_CHAT reads from them."""
    from wa_queue.transport.selectors import JS_CHAT, Selectors

    sim = sim_server(markup="2026-11", config={"row_ids": "bare", "ticks": "title"})
    try:
        account = account_of(sim, browser)
        for text in ("one", "two"):
            requests.post(f"{sim.url}/__sim__/incoming", json={"account": account, "from": DEST, "text": text},
                          timeout=5).raise_for_status()
        browser.get(send_url(sim, DEST, "mine"))
        wait_editor(browser, box(browser), "mine")
        wait(browser, lambda d: len(rows(d)) == 3, "the history")
        css(browser, PROFILES["2026-11"]["send"])[0].click()
        requests.post(f"{sim.url}/__sim__/incoming", json={"account": account, "from": DEST, "text": "three"},
                      timeout=5).raise_for_status()
        wait(browser, lambda d: len(rows(d)) == 5, "the sent row and the reply")
        assert not css(browser, f'{ROWS} [aria-label], {ROWS} [data-id^="true_"], {ROWS} [data-id^="false_"]')
        chat = wait(browser, lambda d: (c := d.execute_script(JS_CHAT, Selectors().as_js()))["out"]
                    and c["out"][0]["status"] == "read" and c, "the sent row Read, by its SVG title")
        sent = requests.get(f"{sim.url}/__sim__/sent", timeout=5).json()
        assert [r["id"] for r in chat["out"]] == [sent[0]["bare_id"]]
        assert chat["out"][0]["dir_by"] == "tail" and chat["unknown"] == 0 and chat["messages"] == 4
    finally:
        sim.stop()
