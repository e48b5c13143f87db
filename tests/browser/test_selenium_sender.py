"""The Selenium sender against real Chromium and the in-process WhatsApp Web simulator."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from werkzeug.serving import make_server

from wa_queue import errors
from wa_queue.errors import ConfigError
from wa_queue.settings import Settings
from wa_queue.simulator.app import create_app
from wa_queue.transport import procs
from wa_queue.transport.base import SessionState
from wa_queue.transport.selectors import SELECTORS, load_selectors
from wa_queue.transport.selectors_check import check_selectors
from wa_queue.transport.selenium import SeleniumSender

ACCOUNT = "+15550000001"
FRIEND = "+15551234567"
UNREGISTERED = "+15550000000"


class Sim:
    """The simulator on a free port, in a thread, with its control API."""

    def __init__(self) -> None:
        self.server = make_server("127.0.0.1", 0, create_app(), threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def post(self, path: str, body: dict | None = None) -> dict:
        response = requests.post(self.url + path, json=body or {}, timeout=5)
        response.raise_for_status()
        return response.json() if response.content else {}

    def sent(self) -> list[dict]:
        return requests.get(self.url + "/__sim__/sent", timeout=5).json()

    def scan(self, ref: str) -> None:
        self.post(f"/__sim__/sessions/{ACCOUNT}/scan", {"ref": ref})

    def fault(self, **body: object) -> None:
        self.post("/__sim__/faults", body)


@pytest.fixture(scope="module")
def sim() -> Iterator[Sim]:
    server = Sim()
    yield server
    server.server.shutdown()


@pytest.fixture(scope="module")
def profile_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("browser")


def make_settings(data_dir: Path, sim: Sim, **extra: str) -> Settings:
    return Settings.from_env({"WAQ_DATA_DIR": str(data_dir), "WAQ_WHATSAPP_URL": sim.url, "WAQ_SEND_TIMEOUT_S": "6",
                              **extra})


def log_in(sender: SeleniumSender, sim: Sim) -> None:
    state = sender.connect()
    deadline = time.monotonic() + 20
    while state is not SessionState.CONNECTED:
        assert time.monotonic() < deadline, f"never logged in: {state}"
        ref = sender.qr_ref()
        if ref:
            sim.scan(ref)
        time.sleep(0.2)
        state = sender.state()


@pytest.fixture(scope="module")
def sender(sim: Sim, profile_root: Path) -> Iterator[SeleniumSender]:
    """One logged-in browser shared by the tests that do not restart it (a Chrome start is the slow part)."""
    sim.post("/__sim__/reset")
    snd = SeleniumSender("shared", make_settings(profile_root / "shared", sim))
    log_in(snd, sim)
    yield snd
    snd.close()


@pytest.fixture(autouse=True)
def _clear_faults(sim: Sim) -> Iterator[None]:
    yield
    sim.fault(clear=True)


def sent_texts(sim: Sim, phone: str) -> list[str]:
    return [m["text"] for m in sim.sent() if m.get("to", m.get("phone", "")).lstrip("+") == phone.lstrip("+")]


# ---- login -------------------------------------------------------------------------------------------------------
def test_qr_login_then_login_kept_across_a_browser_restart(sim: Sim, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, sim)
    first = SeleniumSender("login", settings)
    try:
        assert first.connect() is SessionState.QR
        png = first.qr_png()
        assert png and png.startswith(b"\x89PNG")
        log_in(first, sim)
        assert first.is_connected()
    finally:
        first.close()
    second = SeleniumSender("login", settings)  # same profile folder
    try:
        assert second.connect() is SessionState.CONNECTED
        assert second.qr_png() is None
    finally:
        second.close()


# ---- sending -----------------------------------------------------------------------------------------------------
def test_long_text_with_newlines_and_emoji_arrives_intact_once(sim: Sim, sender: SeleniumSender) -> None:
    line = "Ünïcödé line with emoji 😀👍🏽🇫🇷 and a family 👨‍👩‍👧 — ok\n"
    text = (line * 100)[:4095] + "🎉"  # 4,096 UTF-16 units ends in a non-BMP char; count by code points below
    text = text[:4096]
    receipt = sender.send(FRIEND, text, ref="long")
    assert receipt.wa_id.startswith("true_")
    assert receipt.status in ("sent", "delivered", "read")
    assert sent_texts(sim, FRIEND).count(text) == 1
    assert sender.find_sent(FRIEND, text, ref="long") is not None
    assert sender.receipt_status(FRIEND, receipt.wa_id) in ("sent", "delivered", "read")


def test_unregistered_number_is_invalid(sim: Sim, sender: SeleniumSender) -> None:
    with pytest.raises(errors.InvalidNumber):
        sender.send(UNREGISTERED, "hello", ref="bad")
    assert sender.is_registered(UNREGISTERED) is False
    assert sender.is_registered(FRIEND) is True


@pytest.mark.parametrize("fault", ["fail_send", "drop_before_click"])
def test_faults_before_the_message_leaves_are_transient(sim: Sim, sender: SeleniumSender, fault: str) -> None:
    sim.fault(**{fault: 1})
    with pytest.raises(errors.TransientSendError):
        sender.send(FRIEND, f"fault {fault}", ref=fault)
    sim.fault(clear=True)
    assert sender.send(FRIEND, "after the fault", ref=f"{fault}-next").wa_id


def test_phone_disconnected_is_session_unavailable(sim: Sim, sender: SeleniumSender) -> None:
    sim.fault(phone_disconnected=True)
    with pytest.raises(errors.SessionUnavailable):
        sender.send(FRIEND, "phone off", ref="off")
    assert sender.state() is SessionState.PHONE_DISCONNECTED
    sim.fault(clear=True)
    assert "phone off" not in sent_texts(sim, FRIEND)


def test_after_drop_after_click_find_sent_settles_the_outcome(sim: Sim, sender: SeleniumSender) -> None:
    text = "clicked, then the acknowledgement was lost"
    sim.fault(drop_after_click=1)
    try:
        receipt = sender.send(FRIEND, text, ref="dac")
    except errors.SendOutcomeUnknown:
        receipt = None
    found = sender.find_sent(FRIEND, text, ref="dac")
    if sent_texts(sim, FRIEND).count(text) == 1:
        assert found is not None and (receipt is None or found.wa_id == receipt.wa_id)
    else:
        assert found is None  # it never left: sending again is safe


def test_chrome_killed_mid_send_then_next_send_restarts_it(sim: Sim, sender: SeleniumSender,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    original = sender._type

    def killing_type(text: str) -> list[str]:
        os.kill(sender.chrome_pid(), signal.SIGKILL)  # the browser dies with the chat open, before the click
        return original(text)

    monkeypatch.setattr(sender, "_type", killing_type)
    with pytest.raises((errors.TransientSendError, errors.SessionUnavailable)):
        sender.send(FRIEND, "never sent", ref="killed")
    monkeypatch.undo()
    assert sender.send(FRIEND, "sent after the restart", ref="after-kill").wa_id
    assert "never sent" not in sent_texts(sim, FRIEND)
    assert sent_texts(sim, FRIEND).count("sent after the restart") == 1


# ---- hygiene -----------------------------------------------------------------------------------------------------
def test_recycle_and_close_leave_no_browser_process(sim: Sim, profile_root: Path) -> None:
    settings = make_settings(profile_root / "shared", sim, WAQ_CHROME_RECYCLE_SENDS="2")
    snd = SeleniumSender("shared", settings)  # the logged-in profile of the shared sender
    try:
        first_pids = None
        for i in range(3):
            snd.send(FRIEND, f"recycle {i}", ref=f"r{i}")
            first_pids = first_pids or snd.browser_pids()
        assert snd.restarts == 2  # started once, recycled after 2 sends
        assert not [p for p in first_pids if procs.alive(p)]
        pids = snd.browser_pids()
        assert len(pids) >= 2 and procs.pss_kib(pids) > 0
    finally:
        snd.close()
    assert not [p for p in pids if procs.alive(p)]
    assert snd.browser_pids() == []


def test_selectors_file_overrides_and_rejects_unknown_names(tmp_path: Path) -> None:
    path = tmp_path / "sel.json"
    path.write_text('{"compose_box": "div.box", "text.invalid_number": "invalid"}')
    loaded = load_selectors(path)
    assert loaded["compose_box"] == "div.box" and loaded.text("invalid_number") == "invalid"
    assert loaded["send_button"] == SELECTORS["send_button"]
    path.write_text('{"compose_bx": "div"}')
    with pytest.raises(ConfigError, match="compose_bx"):
        load_selectors(path)


def test_selectors_check_on_a_chat(sender: SeleniumSender) -> None:
    counts = check_selectors(sender, open_phone=FRIEND)
    for name in ("logged_in", "compose_box", "outgoing_row", "message_id", "status_icon", "message_text"):
        assert counts[name] >= 1, name
    assert counts["qr_canvas"] == 0
