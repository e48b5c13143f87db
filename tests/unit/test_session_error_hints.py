"""Sessions say why: the raw reason a session is not connected maps to a hint, and check_health / reconnect record
it (and clear it once connected)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.helpers.constants import UNREACHABLE
from wa_queue.sessions import check_health, error_hint, reconnect
from wa_queue.settings import Settings
from wa_queue.store.sqlite import SQLiteStore
from wa_queue.transport.base import SessionState
from wa_queue.transport.fake import FakeControl, FakeSender

T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
URL = "https://web.whatsapp.com"


@pytest.mark.parametrize("reason, hint", [
    ("page load of https://web.whatsapp.com/ failed: WebDriverException: Message: unknown error: "
     "net::ERR_NAME_NOT_RESOLVED", UNREACHABLE),
    ("unknown error: net::ERR_CONNECTION_REFUSED", UNREACHABLE),
    ("net::ERR_INTERNET_DISCONNECTED", UNREACHABLE),
    ("page load of https://web.whatsapp.com/ took over 30s", UNREACHABLE),
    ("logged out: scan the QR code", "scan the QR code (waq sessions qr primary or the dashboard)"),
    ("the phone is not connected", "bring the phone online"),
    ("Chrome did not start: Message: unknown error: cannot find Chrome binary",
     "Chrome did not start: check WAQ_CHROME_BINARY / WAQ_CHROMEDRIVER"),
    ("WhatsApp shows its 'update your browser' page: it refuses the user agent",
     "WhatsApp refuses this browser: update Chromium or set WAQ_CHROME_USER_AGENT"),
    ("something new", "restart the session (dashboard or admin API); see the worker's log"),
])
def test_error_hint(reason: str, hint: str) -> None:
    assert error_hint(reason, url=URL, session="primary") == hint


def test_error_hint_names_the_configured_host() -> None:
    hint = error_hint("net::ERR_CONNECTION_REFUSED", url="http://127.0.0.1:9/")
    assert hint == "cannot reach 127.0.0.1:9: check the network or WAQ_WHATSAPP_URL"


class _Unreachable(FakeSender):
    """A fake whose connect fails the way Chrome does offline."""

    problem: str | None = "page load of https://web.whatsapp.com/ failed: net::ERR_NAME_NOT_RESOLVED"
    fail = True

    def connect(self) -> SessionState:
        return SessionState.CLOSED if self.fail else super().connect()

    def state(self) -> SessionState:
        return SessionState.CLOSED if self.fail else super().state()

    def last_problem(self) -> str | None:
        return self.problem if self.fail else None


@pytest.fixture
def parts(tmp_path: Path):  # noqa: ANN201
    settings = Settings.from_env({"WAQ_DATA_DIR": str(tmp_path), "WAQ_TRANSPORT": "fake"})
    store = SQLiteStore(str(tmp_path / "waq.db"))
    yield settings, store
    store.close()


def test_check_health_records_the_senders_reason_and_reconnect_clears_it(parts) -> None:  # noqa: ANN001
    settings, store = parts
    sender = _Unreachable("primary", settings.fake_log, settings.fake_control)
    record = check_health(store, sender, settings, T0)
    assert record.status == "closed" and record.last_error == _Unreachable.problem and record.last_error_at == T0
    assert record.last_error_hint == UNREACHABLE
    later = T0 + timedelta(seconds=settings.reconnect_unit_s)
    record = check_health(store, sender, settings, later)  # the back-off is over: reconnect, fails again
    assert record.reconnect_attempts == 1 and record.last_error_at == later and record.last_error_hint == UNREACHABLE
    sender.fail = False
    record = reconnect(store, sender, settings, later + timedelta(seconds=1), reset=True)
    assert record.status == "connected"
    assert (record.last_error, record.last_error_at, record.last_error_hint) == (None, None, None)


def test_reconnect_that_raises_records_the_exception(parts) -> None:  # noqa: ANN001
    settings, store = parts
    sender = _Unreachable("primary", settings.fake_log, settings.fake_control)
    sender.problem = None

    def boom() -> SessionState:
        raise RuntimeError("Chrome did not start: no such file")

    sender.connect = boom  # type: ignore[method-assign]
    record = reconnect(store, sender, settings, T0, reset=True)
    assert record.last_error == "RuntimeError: Chrome did not start: no such file"
    assert record.last_error_hint == "Chrome did not start: check WAQ_CHROME_BINARY / WAQ_CHROMEDRIVER"


def test_a_state_without_a_reason_says_what_the_page_shows(parts) -> None:  # noqa: ANN001
    settings, store = parts
    sender = FakeSender("primary", settings.fake_log, settings.fake_control)
    sender.connect()
    FakeControl(settings.fake_control).set_session_state("primary", "phone_disconnected")
    record = check_health(store, sender, settings, T0)
    assert record.last_error == "the phone is not connected" and record.last_error_hint == "bring the phone online"
    FakeControl(settings.fake_control).set_session_state("primary", "connected")
    assert check_health(store, sender, settings, T0 + timedelta(seconds=1)).last_error is None
