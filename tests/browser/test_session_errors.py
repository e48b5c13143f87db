"""Sessions say why: a real Chromium that cannot load WhatsApp Web reports Chrome's own reason (last_problem), and
the page's own state (the QR) reads as one too."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.helpers.browser import Sim, make_settings
from wa_queue.devstack.ports import free_port
from wa_queue.sessions import error_hint
from wa_queue.settings import Settings
from wa_queue.transport.base import SessionState
from wa_queue.transport.selenium import SeleniumSender

pytestmark = pytest.mark.timeout(60)


def test_an_unreachable_url_reports_connection_refused(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    settings = Settings.from_env({"WAQ_DATA_DIR": str(tmp_path), "WAQ_WHATSAPP_URL": url, "WAQ_SEND_TIMEOUT_S": "6"})
    sender = SeleniumSender("offline", settings)
    started = time.monotonic()
    try:
        assert sender.last_problem() is None
        assert sender.connect() is SessionState.CLOSED
        problem = sender.last_problem()
        assert problem is not None and "ERR_CONNECTION_REFUSED" in problem, problem
        assert url in problem  # which page failed
        host = url.removeprefix("http://")
        assert error_hint(problem, url=url) == f"cannot reach {host}: check the network or WAQ_WHATSAPP_URL"
        assert sender.state() is SessionState.CLOSED and sender.last_problem() == problem  # kept until connected
    finally:
        sender.close()
    assert time.monotonic() - started < 20


def test_the_qr_reads_as_logged_out(fresh_sim: Sim, tmp_path: Path) -> None:
    sender = SeleniumSender("qr", make_settings(tmp_path, fresh_sim))
    try:
        assert sender.connect() is SessionState.QR
        assert sender.last_problem() == "logged out: scan the QR code"
    finally:
        sender.close()
