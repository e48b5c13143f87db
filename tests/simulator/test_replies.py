"""Replies to the logged-in account: unread counts and the chat list's badge, contacts who hide their number (@lid),
and reply_during_send. The servers through the Flask test client; the page in a real Chromium (one shared browser)."""

from __future__ import annotations

import re
import time
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.helpers.constants import SIM_ACCOUNT as ACCOUNT
from tests.helpers.constants import SIM_DEST as DEST
from tests.simulator.chrome import READ_ROW_TEXT, ROWS, SEND, account_of, box, css, sim_server, wait, wait_editor
from tests.simulator.test_page import PROFILES
from tests.simulator.test_simulator import linked_client, send
from wa_queue.simulator import create_app
from wa_queue.simulator.profiles import MARKUPS
from wa_queue.transport.replies import sender_of
from wa_queue.transport.selectors import JS_REPLIES, JS_UNREAD, Selectors

OTHER = "4917099887766"
LID, NAME = "123456789012345", "Anna Beispiel"
BADGE = 'span.unread-count[aria-label$=" unread message"], span.unread-count[aria-label$=" unread messages"]'
PRE = r"^\[\d\d:\d\d, \d{{1,2}}/\d{{1,2}}/\d{{4}}\] {who}: $"


def incoming(client: Any, **body: Any) -> Any:
    return client.post("/__sim__/incoming", json={"account": ACCOUNT, "text": "hi", **body})


def unread(client: Any) -> dict[str, int]:
    return {c["chat"]: c["unread"] for c in client.get("/__sim__/api/state").json["chats"]}


# ---- the servers ------------------------------------------------------------------------------------------


def test_unread_counts_until_the_chat_is_opened_or_open() -> None:
    client = linked_client()
    assert send(client, "ours").json["ack"]
    for _ in range(2):
        incoming(client, **{"from": DEST})
    incoming(client, **{"from": OTHER})
    assert unread(client) == {OTHER: 1, DEST: 2}  # newest first
    assert [m["direction"] for m in client.get(f"/__sim__/api/open?phone={DEST}").json["messages"]] == [
        "out", "in", "in"]
    assert unread(client) == {OTHER: 1, DEST: 0}
    assert client.get(f"/__sim__/api/state?chat={OTHER}").json["chats"][0]["unread"] == 0  # open in the page
    incoming(client, **{"from": DEST})
    assert unread(client) == {DEST: 1, OTHER: 0}
    assert client.post("/__sim__/reset", json={"keep_links": True}).json["ok"]
    incoming(client, **{"from": DEST})
    assert unread(client) == {DEST: 1}


def test_unread_counts_survive_a_restart(tmp_path: Path) -> None:
    path = str(tmp_path / "sim.json")
    client = linked_client({"state_file": path})
    incoming(client, **{"from": DEST})
    incoming(client, lid=LID, name=NAME)
    incoming(client, lid=LID, name=NAME)
    restarted = create_app(state_file=path).test_client()
    restarted.set_cookie("wa_sim_device", client.get_cookie("wa_sim_device").value)
    assert unread(restarted) == {f"{LID}@lid": 2, DEST: 1}
    [lid_chat] = [c for c in restarted.get("/__sim__/api/state").json["chats"] if c["lid"]]
    assert lid_chat["title"] == NAME and lid_chat["phone"] is None


def test_a_contact_who_hides_the_number() -> None:
    client = linked_client()
    resp = incoming(client, lid=LID, name=NAME, text="who am I")
    assert resp.status_code == 200, resp.json
    msg = resp.json["message"]
    assert re.fullmatch(rf"false_{LID}@lid_3A[0-9A-F]{{18}}", msg["id"]) and msg["bare_id"] == msg["id"][-20:]
    assert (msg["from"], msg["lid"], msg["name"], msg["direction"]) == (None, LID, NAME, "in")
    [listed] = client.get(f"/__sim__/incoming?account={ACCOUNT}").json
    assert listed["from"] is None and (listed["lid"], listed["name"]) == (LID, NAME)
    [chat] = client.get("/__sim__/api/state").json["chats"]
    assert chat == {"chat": f"{LID}@lid", "phone": None, "lid": LID, "title": NAME, "text": "who am I",
                    "time": msg["time"], "unread": 1}
    assert client.get("/__sim__/api/open?lid=999999999").json == {"valid": False}  # never wrote to this account
    opened = client.get(f"/__sim__/api/open?lid={LID}").json
    assert opened["valid"] and opened["title"] == NAME and [m["id"] for m in opened["messages"]] == [msg["id"]]
    assert unread(client) == {f"{LID}@lid": 0}
    assert client.get(f"/__sim__/api/open?phone={LID}").json["messages"] == []  # not the number's chat


@pytest.mark.parametrize(("body", "field"), [
    ({"from": DEST, "lid": LID, "name": NAME}, "exactly one of"),
    ({}, "exactly one of"),
    ({"lid": LID}, "name"),
    ({"lid": "1234567", "name": NAME}, "lid must be 8-20 digits"),
    ({"lid": "1" * 21, "name": NAME}, "lid must be 8-20 digits"),
    ({"lid": "12345678a", "name": NAME}, "lid must be 8-20 digits"),
    ({"lid": LID, "name": ""}, "name must be"),
    ({"lid": LID, "name": "   "}, "name must be"),
    ({"lid": LID, "name": "x" * 65}, "name must be"),
    ({"lid": LID, "name": "+49 151 1234567"}, "name must be"),
    ({"lid": LID, "name": 7}, "name must be"),
    ({"from": DEST, "name": NAME}, "name goes only with"),
    ({"from": "12"}, "from must be 7-15 digits"),
    ({"from": DEST, "account": "x"}, "account must be"),
    ({"lid": LID, "name": NAME, "text": ""}, "text must be"),
], ids=["from-and-lid", "neither", "lid-without-name", "lid-short", "lid-long", "lid-not-digits", "name-empty",
        "name-blank", "name-long", "name-a-number", "name-not-a-string", "name-with-from", "from-short",
        "account-bad", "text-empty"])
def test_incoming_validation_names_the_field(body: dict, field: str) -> None:
    client = linked_client()
    resp = incoming(client, **body)
    assert resp.status_code == 400 and resp.json["ok"] is False and field in resp.json["error"], resp.json
    assert client.get("/__sim__/incoming").json == []


def test_incoming_accepts_the_longest_name_and_lid() -> None:
    client = linked_client()
    assert incoming(client, lid="1" * 20, name="n" * 64).status_code == 200
    assert incoming(client, lid="1" * 8, name="Ö").status_code == 200


def test_reply_during_send_config() -> None:
    client = linked_client()
    assert client.get("/__sim__/config").json["reply_during_send"] is None
    for bad in ({"text": "x"}, {"text": "", "after_ms": 0}, {"text": "x", "after_ms": 5001},
                {"text": "x", "after_ms": -1}, {"text": "x", "after_ms": 1.5}, {"text": "x", "after_ms": True},
                {"text": "x", "after_ms": 0, "extra": 1}, "STOP", 3):
        resp = client.post("/__sim__/config", json={"reply_during_send": bad})
        assert resp.status_code == 400 and "reply_during_send" in resp.json["error"], bad
    value = {"text": "STOP", "after_ms": 0}
    assert client.post("/__sim__/config", json={"reply_during_send": value}).json["reply_during_send"] == value
    assert send(client, "offer").json["ack"]
    [reply] = client.get("/__sim__/incoming").json
    assert (reply["from"], reply["to"], reply["text"]) == (DEST, ACCOUNT, "STOP")
    assert send(client, "offer").json["ack"]  # the same message again (a retry): no second reply
    assert len(client.get("/__sim__/incoming").json) == 1
    assert client.post("/__sim__/reset", json={"keep_links": True}).json["ok"]
    assert client.get("/__sim__/config").json["reply_during_send"] is None


def test_reply_during_send_waits_after_ms_and_not_past_a_reset() -> None:
    client = linked_client({"config": {"reply_during_send": {"text": "later", "after_ms": 300}}})
    assert send(client, "one", n=1).json["ack"]
    assert client.get("/__sim__/incoming").json == []
    deadline = time.monotonic() + 5
    while not client.get("/__sim__/incoming").json and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [m["text"] for m in client.get("/__sim__/incoming").json] == ["later"]
    assert send(client, "two", n=2).json["ack"]
    assert client.post("/__sim__/reset", json={"keep_links": True}).json["ok"]
    assert client.get("/__sim__/config").json["reply_during_send"] == {"text": "later", "after_ms": 300}  # start value
    time.sleep(0.5)
    assert client.get("/__sim__/incoming").json == []  # the reply to a message the reset forgot never comes


# ---- the page -------------------------------------------------------------------------------------------------


def post_incoming(sim: Any, account: str, **body: Any) -> None:
    requests.post(f"{sim.url}/__sim__/incoming", json={"account": account, **body}, timeout=5).raise_for_status()


def items(driver: Any) -> list:
    return css(driver, '#pane-side div[role="listitem"].chat-item')


def item_for(driver: Any, title: str) -> Any:
    [item] = [i for i in items(driver) if i.find_elements("css selector", f'span[dir="auto"][title="{title}"]')]
    return item


def badges(driver: Any) -> dict[str, tuple[str, str]]:
    """title -> (aria-label, text) of each item's badge."""
    out = {}
    for item in items(driver):
        title = item.find_element("css selector", 'span[dir="auto"][title]').get_attribute("title")
        for badge in item.find_elements("css selector", BADGE):
            out[title] = (badge.get_attribute("aria-label"), badge.text)
    return out


def unread_seen(driver: Any) -> list[dict[str, Any]]:
    """What the Selenium sender's reply reader takes from the chat list."""
    return driver.execute_script(JS_UNREAD, Selectors().as_js())


@pytest.mark.parametrize("markup", list(MARKUPS))
def test_unread_badge_and_incoming_rows_in_every_profile(browser: Any, markup: str) -> None:
    spec = PROFILES[markup]
    sim = sim_server(markup=markup)
    try:
        account = account_of(sim, browser)
        post_incoming(sim, account, **{"from": DEST, "text": "first"})
        post_incoming(sim, account, **{"from": DEST, "text": "second *one*"})
        post_incoming(sim, account, **{"from": OTHER, "text": "other"})
        browser.get(sim.url)
        wait(browser, lambda d: len(badges(d)) == 2, "two badges")
        assert badges(browser) == {f"+{OTHER}": ("1 unread message", "1"), f"+{DEST}": ("2 unread messages", "2")}
        assert [i.find_element("css selector", 'span[dir="auto"][title]').get_attribute("title")
                for i in items(browser)] == [f"+{OTHER}", f"+{DEST}"]  # newest first
        assert unread_seen(browser) == [{"title": f"+{OTHER}", "unread": 1}, {"title": f"+{DEST}", "unread": 2}]

        item_for(browser, f"+{DEST}").click()
        wait(browser, lambda d: len(css(d, f"{ROWS} [data-pre-plain-text]")) == 2, "the two incoming rows")
        wait(browser, lambda d: set(badges(d)) == {f"+{OTHER}"}, "the opened chat's badge gone")
        assert browser.find_element("css selector", '#main header span[title]').get_attribute("title") == f"+{DEST}"
        received = [m for m in requests.get(f"{sim.url}/__sim__/incoming", timeout=5).json() if m["from"] == DEST]
        bubbles = [b for b in css(browser, f"{ROWS} > div[data-id]") if b.find_elements("css selector",
                                                                                        "[data-pre-plain-text]")]
        ids = [b.get_attribute("data-id") for b in bubbles]
        assert ids == [m["id"] if spec["packed"] else m["bare_id"] for m in received]
        pres = [b.find_element("css selector", "div.copyable-text[data-pre-plain-text]") for b in bubbles]
        assert all(re.match(PRE.format(who=re.escape(f"+{DEST}")), p.get_attribute("data-pre-plain-text"))
                   for p in pres)
        texts = [browser.execute_script(READ_ROW_TEXT, p.find_element("css selector", spec["text"])) for p in pres]
        assert texts == ["first", "second one"]
        if spec["dir_class"]:
            assert all("message-in" in b.get_attribute("class").split() for b in bubbles)

        post_incoming(sim, account, **{"from": DEST, "text": "while open"})  # read at once: no badge
        wait(browser, lambda d: len(css(d, f"{ROWS} [data-pre-plain-text]")) == 3, "the new row in the open chat")
        time.sleep(0.5)  # a few polls
        assert set(badges(browser)) == {f"+{OTHER}"}
        assert [i.find_element("css selector", 'span[dir="auto"][title]').get_attribute("title")
                for i in items(browser)] == [f"+{DEST}", f"+{OTHER}"]
    finally:
        sim.stop()


@pytest.mark.parametrize("markup", ["2026-11", "2026-05"])
def test_a_lid_contact_shows_its_name_and_no_number(browser: Any, markup: str) -> None:
    sim = sim_server(markup=markup)
    try:
        account = account_of(sim, browser)
        post_incoming(sim, account, lid=LID, name=NAME, text="hello from a username")
        browser.get(sim.url)
        wait(browser, lambda d: badges(d), "the badge")
        assert badges(browser) == {NAME: ("1 unread message", "1")}
        item = item_for(browser, NAME)
        html = item.get_attribute("outerHTML")
        assert not re.search(r"\+\d", html) and account not in html and item.get_attribute("data-phone") is None
        assert "/send?phone=" not in browser.execute_script("return document.documentElement.outerHTML")
        assert unread_seen(browser) == [{"title": NAME, "unread": 1}]

        item.click()
        wait(browser, lambda d: css(d, f"{ROWS} [data-pre-plain-text]"), "the incoming row")
        wait(browser, lambda d: not badges(d), "the badge gone")
        [msg] = requests.get(f"{sim.url}/__sim__/incoming", timeout=5).json()
        bubble = css(browser, f"{ROWS} > div[data-id]")[-1]
        data_id = bubble.get_attribute("data-id")
        assert data_id == (msg["id"] if PROFILES[markup]["packed"] else msg["bare_id"])
        assert re.fullmatch(rf"false_{LID}@lid_3A[0-9A-F]{{18}}" if PROFILES[markup]["packed"] else
                            r"3A[0-9A-F]{18}", data_id)
        pre = bubble.find_element("css selector", "[data-pre-plain-text]").get_attribute("data-pre-plain-text")
        assert re.match(PRE.format(who=re.escape(NAME)), pre), pre
        assert browser.find_element("css selector", '#main header span[title]').get_attribute("title") == NAME
        assert not css(browser, '#main footer div[contenteditable="true"]')  # no sending to a hidden number
        assert not re.search(r"\+\d", browser.find_element("id", "main").get_attribute("outerHTML"))
        shown = browser.execute_script(JS_REPLIES, Selectors().as_js())
        assert shown["title"] == NAME and [sender_of(m) for m in shown["msgs"]] == [(True, None)]
    finally:
        sim.stop()


def test_reply_during_send_shows_an_incoming_row_after_the_send(browser: Any) -> None:
    sim = sim_server(config={"reply_during_send": {"text": "STOP", "after_ms": 400}})
    try:
        account = account_of(sim, browser)
        browser.get(f"{sim.url}/send?phone={DEST}&text={urllib.parse.quote('an offer')}")
        wait_editor(browser, box(browser), "an offer")
        wait(browser, lambda d: len(css(d, ROWS)) == 1, "the system row")
        css(browser, SEND)[0].click()
        wait(browser, lambda d: len(css(d, ROWS)) == 2, "the sent row")
        assert not css(browser, f"{ROWS} div[data-id^='false_']")  # the reply is not there at the click
        wait(browser, lambda d: len(css(d, ROWS)) == 3, "the reply")
        pre = css(browser, ROWS)[2].find_element("css selector", "[data-pre-plain-text]")
        assert re.match(PRE.format(who=re.escape(f"+{DEST}")), pre.get_attribute("data-pre-plain-text"))
        assert browser.execute_script(READ_ROW_TEXT, pre.find_element("css selector", "span.selectable-text")) == \
            "STOP"
        [reply] = requests.get(f"{sim.url}/__sim__/incoming?account={account}", timeout=5).json()
        [sent] = requests.get(f"{sim.url}/__sim__/sent", timeout=5).json()
        assert reply["from"] == DEST and reply["time"] - sent["time"] >= 0.4
        time.sleep(0.4)
        assert not badges(browser)  # replied in the chat open in front: read at once
    finally:
        sim.stop()
