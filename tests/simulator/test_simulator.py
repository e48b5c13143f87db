"""The WhatsApp Web simulator: control API and send semantics (Flask test client), then a real headless Chromium."""

from __future__ import annotations

import shutil
import tempfile
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from flask.testing import FlaskClient

from wa_queue.simulator import SimServer, create_app
from wa_queue.simulator.state import SimState, auto_account

ACCOUNT = "15551230000"
DEST = "4915112345678"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def linked_client(app_kwargs: dict | None = None) -> FlaskClient:
    client = create_app(**(app_kwargs or {})).test_client()
    client.get("/")
    assert client.post(f"/__sim__/sessions/{ACCOUNT}/scan").status_code == 200
    return client


def msg_id(to: str = DEST, n: int = 1) -> str:
    return f"true_{to}@c.us_3EB0{n:016X}"


def send(client: FlaskClient, text: str = "hi", to: str = DEST, n: int = 1):  # noqa: ANN201
    return client.post("/__sim__/api/send", json={"id": msg_id(to, n), "to": to, "text": text})


# ---- identity and linking ----------------------------------------------------------------------------------


def test_first_visit_issues_a_device_cookie_and_shows_the_qr() -> None:
    client = create_app().test_client()
    page = client.get("/")
    assert "wa_sim_device=" in page.headers["Set-Cookie"] and "Max-Age=" in page.headers["Set-Cookie"]
    html = page.get_data(as_text=True)
    [device] = client.get("/__sim__/devices").json
    assert device["linked"] is False and device["ref"]
    assert f'data-ref="{device["ref"]}"' in html
    assert 'canvas aria-label="Scan this QR code to link a device!"' in html
    assert client.get(f"/__sim__/qr/{device['ref']}.png").data.startswith(b"\x89PNG")
    assert client.get("/").get_data(as_text=True).count(device["ref"]) == 2  # same QR until it expires or reloads


def test_scan_by_ref_and_by_most_recent() -> None:
    app = create_app()
    first, second = app.test_client(), app.test_client()
    first.get("/")
    second.get("/")
    refs = {d["id"]: d["ref"] for d in first.get("/__sim__/devices").json}
    first_id = first.get_cookie("wa_sim_device").value
    resp = first.post(f"/__sim__/sessions/{ACCOUNT}/scan", json={"ref": refs[first_id]})
    assert resp.json == {"ok": True, "device": first_id, "account": ACCOUNT}
    assert first.get("/__sim__/sessions/x/scan").status_code == 405
    assert first.post(f"/__sim__/sessions/{ACCOUNT}/scan", json={"ref": "nope"}).status_code == 404
    assert second.post("/__sim__/sessions/15559990000/scan").json["device"] == second.get_cookie("wa_sim_device").value
    assert first.post(f"/__sim__/sessions/{ACCOUNT}/scan").status_code == 409  # nobody is showing a QR
    assert "pane-side" in first.get("/").get_data(as_text=True)
    state = first.get("/__sim__/api/state").json
    assert state["linked"] and state["account"] == ACCOUNT


def test_expired_qr_cannot_be_scanned_and_a_reload_issues_a_new_one() -> None:
    clock = FakeClock()
    state = SimState(clock=clock)
    old = state.current_ref("d1")
    clock.now += 61
    assert state.devices_public()[0]["qr_expired"]
    with pytest.raises(Exception, match="expired"):
        state.scan(ACCOUNT)
    assert state.new_ref("d1") != old
    assert state.scan(ACCOUNT).account == ACCOUNT


def test_auto_scan_links_a_first_visit_to_a_stable_fake_number_but_not_after_a_logout() -> None:
    client = create_app(auto_scan=True).test_client()
    assert "pane-side" in client.get("/").get_data(as_text=True)
    device_id = client.get_cookie("wa_sim_device").value
    account = auto_account(device_id)
    assert account.startswith("1555000") and len(account) == 11
    assert client.get("/__sim__/devices").json[0]["account"] == account
    logout = client.post("/__sim__/faults", json={"session": account, "fault": "logged_out"})
    assert logout.json["unlinked"] == [device_id]
    assert client.get("/__sim__/api/state").json["linked"] is False
    assert "Scan this QR code" in client.get("/").get_data(as_text=True)


def test_links_and_messages_survive_a_restart_with_a_state_file(tmp_path: Path) -> None:
    path = str(tmp_path / "sim.json")
    client = linked_client({"state_file": path})
    assert send(client).json["ack"]
    restarted = create_app(state_file=path).test_client()
    restarted.set_cookie("wa_sim_device", client.get_cookie("wa_sim_device").value)
    assert restarted.get("/__sim__/api/state").json["account"] == ACCOUNT
    assert [m["text"] for m in restarted.get("/__sim__/sent").json] == ["hi"]


# ---- sending -----------------------------------------------------------------------------------------------


def test_send_records_exact_text_once_and_the_chat_shows_it() -> None:
    client = linked_client()
    text = "line one\n\nemoji 😀👍🏽👨‍👩‍👧 🇩🇪\n  spaced  " + "x" * 4000
    first = send(client, text)
    assert first.json["ack"] is True and first.json["status"] == "Sent"
    assert send(client, text).json["ack"] is True  # the same id again is the same message
    [sent] = client.get("/__sim__/sent").json
    assert sent["text"] == text and sent["from"] == ACCOUNT and sent["to"] == DEST and sent["id"] == msg_id()
    assert set(sent) >= {"id", "from", "to", "text", "time"}
    opened = client.get(f"/__sim__/api/open?phone={DEST}").json
    assert opened["valid"] and [m["id"] for m in opened["messages"]] == [msg_id()]
    assert client.get("/__sim__/api/state").json["chats"][0]["phone"] == DEST
    assert client.get(f"/__sim__/sent?to={DEST}").json and not client.get("/__sim__/sent?to=1234567").json


def test_send_requires_a_linked_device_and_a_well_formed_id() -> None:
    client = create_app().test_client()
    client.get("/")
    assert send(client).status_code == 401
    linked = linked_client()
    bad = linked.post("/__sim__/api/send", json={"id": msg_id("4915100000000"), "to": DEST, "text": "x"})
    assert bad.status_code == 400


def test_status_advances_with_the_configured_speeds() -> None:
    clock = FakeClock()
    state = SimState(clock=clock)
    state.device("d1")
    state.current_ref("d1")
    state.scan(ACCOUNT)
    msg = state.accept("d1", msg_id(), DEST, "hi")
    assert state.status(msg) == "Sent"
    clock.now += 1.0
    assert state.status(msg) == "Delivered"
    clock.now += 1.0
    assert state.status(msg) == "Read"
    state.set_config({"delivered_after_s": None, "read_after_s": None})
    assert state.status(msg) == "Sent"


def test_unregistered_fault_with_count_and_inherently_invalid_numbers() -> None:
    client = linked_client()
    client.post("/__sim__/faults", json={"number": DEST, "fault": "unregistered", "count": 1})
    assert client.get(f"/__sim__/api/open?phone={DEST}").json == {"valid": False}
    assert client.get(f"/__sim__/api/open?phone={DEST}").json["valid"] is True  # count used up
    assert client.get("/__sim__/faults").json == {"numbers": {}, "sessions": {}}
    assert client.get("/__sim__/api/open?phone=123").json == {"valid": False}


def test_drop_before_click_ignores_the_click() -> None:
    client = linked_client()
    client.post("/__sim__/faults", json={"number": DEST, "fault": "drop_before_click", "count": 2})
    assert client.post("/__sim__/api/click", json={"to": DEST}).json == {"dropped": True}
    assert client.get("/__sim__/faults").json["numbers"][DEST] == {"fault": "drop_before_click", "delay_s": 3.0,
                                                                    "count": 1}
    assert client.post("/__sim__/api/click", json={"to": DEST}).json == {"dropped": True}
    assert client.post("/__sim__/api/click", json={"to": DEST}).json == {"dropped": False}


def test_fail_send_rejects_and_records_nothing() -> None:
    client = linked_client()
    client.post("/__sim__/faults", json={"number": DEST, "fault": "fail_send"})
    resp = send(client)
    assert resp.status_code == 503 and resp.json == {"ack": False, "error": "fail_send"}
    assert client.get("/__sim__/sent").json == []
    assert client.post("/__sim__/api/click", json={"to": DEST}).json == {"dropped": False}


def test_drop_after_click_records_but_does_not_ack() -> None:
    client = linked_client()
    client.post("/__sim__/faults", json={"number": DEST, "fault": "drop_after_click", "count": 1})
    assert send(client).json == {"ack": False, "dropped": True}
    assert [m["id"] for m in client.get("/__sim__/sent").json] == [msg_id()]
    assert send(client, n=2).json["ack"] is True


def test_slow_delays_the_ack_but_records_at_the_click() -> None:
    client = linked_client()
    client.post("/__sim__/faults", json={"number": DEST, "fault": "slow", "delay_s": 0.05, "count": 1})
    assert send(client).json["ack"] is True
    assert client.get("/__sim__/faults").json["numbers"] == {}
    clock = FakeClock()
    state = SimState(clock=clock)
    state.current_ref("d1")
    state.scan(ACCOUNT)
    msg = state.accept("d1", msg_id(), DEST, "hi", ack_delay_s=4)
    assert [m["status"] for m in state.chat(ACCOUNT, DEST)] == ["Pending"]  # in the chat already, clock showing
    clock.now += 4
    assert state.status(msg) == "Sent"
    clock.now += 1
    assert state.status(msg) == "Delivered"


def test_disconnected_phone_rejects_sends_and_shows_in_state() -> None:
    client = linked_client()
    client.post("/__sim__/faults", json={"session": ACCOUNT, "fault": "phone_disconnected"})
    assert client.get("/__sim__/api/state").json["fault"] == "phone_disconnected"
    assert client.get("/__sim__/faults").json["sessions"] == {ACCOUNT: {"fault": "phone_disconnected"}}
    resp = send(client)
    assert resp.status_code == 503 and resp.json == {"ack": False, "offline": "phone_disconnected"}
    assert client.get("/__sim__/sent").json == []
    client.post("/__sim__/faults", json={"session": ACCOUNT, "fault": None})
    assert send(client).json["ack"] is True


def test_fault_validation_and_reset() -> None:
    client = linked_client()
    for body in ({"number": DEST, "fault": "boom"}, {"number": "abc", "fault": "slow"}, {"fault": "slow"},
                 {"number": DEST, "fault": "slow", "count": 0}, {"session": ACCOUNT, "fault": "slow"}):
        assert client.post("/__sim__/faults", json=body).status_code == 400, body
    assert client.post("/__sim__/config", json={"nope": 1}).status_code == 400
    assert send(client, to="4915199999999").json["ack"]
    batch = [{"number": DEST, "fault": "slow"}, {"session": ACCOUNT, "fault": "phone_disconnected"}]
    assert client.post("/__sim__/faults", json=batch).json["ok"]
    client.post("/__sim__/reset", json={"keep_links": True})
    assert client.get("/__sim__/faults").json == {"numbers": {}, "sessions": {}}
    assert client.get("/__sim__/sent").json == []
    assert client.get("/__sim__/api/state").json["linked"] is True
    client.post("/__sim__/reset")
    assert client.get("/__sim__/api/state").json["linked"] is False
    assert client.get("/__sim__/healthz").json["ok"] is True


# ---- a real browser ----------------------------------------------------------------------------------------

CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM = "/usr/bin/chromium"
COMPOSE = 'footer div[contenteditable="true"][role="textbox"][data-tab="10"][aria-placeholder="Type a message"]'
SEND = 'footer button[aria-label="Send"] span[data-icon="wds-ic-send-filled"]'
QR = 'div[data-ref] > canvas[aria-label="Scan this QR code to link a device!"]'
READ_ROW_TEXT = """
let out = '';
const walk = (n) => { for (const c of n.childNodes) {
  if (c.nodeType === 3) out += c.data; else if (c.nodeName === 'BR') out += '\\n';
  else if (c.nodeName === 'IMG') out += c.alt; else walk(c); } };
walk(arguments[0]);
return out;
"""


def long_text() -> str:
    """4,096 code points with newlines, blank lines, runs of spaces and non-BMP emoji (incl. ZWJ and flags)."""
    head = "Hello 👋 world\nline two\n\n  indented 😀👍🏽👨‍👩‍👧🇩🇪 end  \n"
    body = "".join(f"row {i} ✓ 🚀\n" for i in range(300))
    text = head + body
    return (text + "z" * 4096)[:4095] + "🎉"


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    server = SimServer(config={"starting_chat_s": 0.3, "delivered_after_s": 0.3, "read_after_s": 0.6,
                               "poll_ms": 200}).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def profile() -> Iterator[str]:
    path = tempfile.mkdtemp(prefix="wa-sim-chrome-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def start_chrome(profile_dir: str):  # noqa: ANN201
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    if not Path(CHROMEDRIVER).exists():
        raise RuntimeError(f"{CHROMEDRIVER} is missing: apt-get install chromium chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                f"--user-data-dir={profile_dir}"):
        options.add_argument(arg)
    return webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))


def wait(driver, predicate, what: str, timeout: float = 15):  # noqa: ANN001, ANN201
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    # The page re-renders rows and dialogs; an element that went stale mid-check is simply checked again.
    waiter = WebDriverWait(driver, timeout, poll_frequency=0.05, ignored_exceptions=[StaleElementReferenceException])
    return waiter.until(lambda d: predicate(d), message=what)


def css(driver, selector: str) -> list:  # noqa: ANN001
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, selector)


def test_real_browser_links_survives_restart_and_sends_exact_text(sim: SimServer, profile: str) -> None:
    driver = start_chrome(profile)
    try:
        driver.get(sim.url)
        canvas = wait(driver, lambda d: css(d, QR), "the QR canvas")[0]
        ref = css(driver, "div[data-ref]")[0].get_attribute("data-ref")
        dark_pixel = ("const p = arguments[0].getContext('2d').getImageData(0, 0, 264, 264).data;"
                      "for (let i = 0; i < p.length; i += 4) if (p[i + 3] === 255 && p[i] < 50) return true;"
                      "return false")
        wait(driver, lambda d: d.execute_script(dark_pixel, canvas), "the QR to be drawn")
        assert requests.post(f"{sim.url}/__sim__/sessions/{ACCOUNT}/scan", json={"ref": ref}, timeout=5).ok
        wait(driver, lambda d: css(d, "#pane-side") and css(d, '[aria-label="Search or start a new chat"]'), "login")
    finally:
        driver.quit()

    driver = start_chrome(profile)  # same profile: the device cookie (or its localStorage copy) keeps the link
    try:
        driver.get(sim.url)
        wait(driver, lambda d: css(d, "#pane-side"), "still logged in after a browser restart")
        assert not css(driver, QR)

        text = long_text()
        assert len(text) == 4096
        driver.get(f"{sim.url}/send?phone={DEST}&text={urllib.parse.quote(text, safe='')}")
        box = wait(driver, lambda d: css(d, COMPOSE), "the compose box")[0]
        assert driver.execute_script("return arguments[0].textContent", box) == text
        assert requests.get(f"{sim.url}/__sim__/sent", timeout=5).json() == []  # pre-fill does not send
        wait(driver, lambda d: css(d, SEND), "the send button")[0].click()

        row_sel = f'div[role="row"] div[data-id^="true_{DEST}@c.us_"]'
        row = wait(driver, lambda d: css(d, row_sel), "the outgoing row")[0]
        assert css(driver, 'div[role="row"] [data-icon="tail-out"]')
        wait(driver, lambda d: row.find_elements("css selector", '[aria-label="Sent"], [aria-label="Delivered"]')
             or row.find_elements("css selector", '[aria-label="Read"]'), "the status to reach Sent/Delivered")
        wait(driver, lambda d: row.find_elements("css selector", '[aria-label="Read"]'), "the status to reach Read")
        assert driver.execute_script(READ_ROW_TEXT, row.find_element("css selector", "span.selectable-text")) == text
        assert not css(driver, 'footer button[aria-label="Send"]')  # the box is empty again: voice-note button
        sent = [m for m in requests.get(f"{sim.url}/__sim__/sent", timeout=5).json() if m["to"] == DEST]
        assert len(sent) == 1 and sent[0]["text"] == text and sent[0]["id"] == row.get_attribute("data-id")

        unregistered = "4915100000001"
        requests.post(f"{sim.url}/__sim__/faults", json={"number": unregistered, "fault": "unregistered"}, timeout=5)
        driver.get(f"{sim.url}/send?phone={unregistered}&text=hello")
        invalid = "Phone number shared via url is invalid."
        dialog = wait(driver, lambda d: [e for e in css(d, 'div[role="dialog"]') if invalid in e.text], "the dialog")[0]
        ok = dialog.find_element("css selector", 'div[role="button"]')
        assert ok.text == "OK" and not css(driver, COMPOSE)
        ok.click()
        wait(driver, lambda d: not css(d, 'div[role="dialog"]'), "the dialog to close")
    finally:
        driver.quit()


def test_real_browser_faults_banner_dropped_click_and_logout(sim: SimServer, profile: str) -> None:
    other = "4915100000002"
    driver = start_chrome(profile)
    try:
        driver.get(sim.url)
        wait(driver, lambda d: css(d, "#pane-side"), "logged in")
        requests.post(f"{sim.url}/__sim__/faults", json={"session": ACCOUNT, "fault": "phone_disconnected"}, timeout=5)
        banner = wait(driver, lambda d: css(d, '[data-testid="alert-phone"]'), "the phone banner")[0]
        assert "Phone not connected" in banner.text
        requests.post(f"{sim.url}/__sim__/faults", json={"session": ACCOUNT, "fault": None}, timeout=5)
        wait(driver, lambda d: not css(d, '[data-testid="alert-phone"]'), "the banner to go")

        requests.post(f"{sim.url}/__sim__/faults", json={"number": other, "fault": "drop_before_click", "count": 1},
                      timeout=5)
        requests.post(f"{sim.url}/__sim__/config", json={"starting_chat_s": 1.5}, timeout=5)
        driver.get(f"{sim.url}/send?phone={other}&text=twice%0Athe%20charm")
        wait(driver, lambda d: [e for e in css(d, 'div[role="dialog"]') if "Starting chat" in e.text], "Starting chat")
        assert not css(driver, COMPOSE)
        requests.post(f"{sim.url}/__sim__/config", json={"starting_chat_s": 0.3}, timeout=5)
        wait(driver, lambda d: css(d, SEND), "the send button")[0].click()
        assert not css(driver, 'div[role="row"]')  # the click was ignored (checked synchronously by the page)
        assert driver.execute_script("return arguments[0].textContent", css(driver, COMPOSE)[0]) == "twice\nthe charm"
        from selenium.webdriver.common.keys import Keys

        css(driver, COMPOSE)[0].send_keys(Keys.ENTER)  # Enter sends
        wait(driver, lambda d: css(d, f'div[data-id^="true_{other}@c.us_"] [aria-label="Read"]'), "a Read receipt")
        assert [m["text"] for m in requests.get(f"{sim.url}/__sim__/sent?to={other}", timeout=5).json()] == [
            "twice\nthe charm"]

        requests.post(f"{sim.url}/__sim__/faults", json={"session": ACCOUNT, "fault": "logged_out"}, timeout=5)
        wait(driver, lambda d: css(d, QR), "the QR page after a logout")
    finally:
        driver.quit()
