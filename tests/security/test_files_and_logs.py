"""Files and logs (issue 24, part 6): private modes whatever the umask, phone numbers masked and callback URLs without
their query in logs, the launcher's URLs without passwords, and the simulator on loopback only."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.callbacks.test_callbacks import Receiver
from tests.helpers.delivery import delivery_world
from wa_queue import redact
from wa_queue.models import NewMessage
from wa_queue.notify import Notifier
from wa_queue.settings import Settings
from wa_queue.store.sqlite import SQLiteStore
from wa_queue.transport.selenium import SeleniumSender

PHONE = "+919876543210"
MASKED = "+9198•••••210"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    old = os.umask(0)
    yield
    os.umask(old)


# ---- file modes ----------------------------------------------------------------------------------------------------
def test_the_data_folder_and_sqlite_files_are_private(tmp_path: Path, open_umask: None) -> None:  # noqa: ARG001
    data = tmp_path / "data"
    store = SQLiteStore(str(data / "waq.db"))
    try:
        store.insert(NewMessage(phone=PHONE, text="hi"), datetime.now(UTC))
        files = [data / name for name in ("waq.db", "waq.db-wal", "waq.db-shm")]
        assert all(f.exists() for f in files)
        assert mode(data) == 0o700
        assert {f.name: mode(f) for f in files} == {f.name: 0o600 for f in files}
    finally:
        store.close()


def test_the_chrome_profiles_are_private(tmp_path: Path, open_umask: None) -> None:  # noqa: ARG001
    settings = Settings.from_env({"WAQ_DATA_DIR": str(tmp_path / "data")})
    profile = SeleniumSender("primary", settings).chrome.prepare_profile()
    assert (mode(profile.parent), mode(profile)) == (0o700, 0o700)


# ---- phones in logs ------------------------------------------------------------------------------------------------
def test_the_mask_keeps_five_and_three() -> None:
    assert redact.phone(PHONE) == MASKED
    assert redact.phone(PHONE, show=True) == PHONE
    assert redact.phones_in(f"{PHONE} is not on WhatsApp") == f"{MASKED} is not on WhatsApp"


@pytest.mark.parametrize("log_phones", ["0", "1"])
def test_a_number_check_logs_a_masked_phone(tmp_path: Path, caplog: pytest.LogCaptureFixture, log_phones: str) -> None:
    with delivery_world(tmp_path, datetime.now(UTC), {"WAQ_LOG_PHONES": log_phones}) as (_, store, clock, _r, make):
        delivery = make()
        message = store.insert(NewMessage(phone=PHONE, text="hi"), clock())[0]

        def refuses(phone: str) -> bool:
            raise RuntimeError(f"the chat with {phone} did not open")

        delivery.sender.is_registered = refuses  # type: ignore[method-assign]
        with caplog.at_level(logging.INFO, logger="wa_queue.delivery"):
            assert delivery._number_registered(message) is None
    text = caplog.text
    if log_phones == "1":
        assert PHONE in text
    else:
        assert PHONE not in text and text.count(MASKED) == 2


def test_an_admin_notice_logs_masked_phones(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="wa_queue.notify"):
        Notifier(None).notify_admin("message_failed", f"message m1 to {PHONE} failed", phone=PHONE)
    assert PHONE not in caplog.text and caplog.text.count(MASKED) == 2


# ---- callback URLs in logs -----------------------------------------------------------------------------------------
def test_a_callback_url_is_logged_without_its_query(caplog: pytest.LogCaptureFixture, waq_env: dict[str, str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from wa_queue.hub import close_default_hub
    from workers.callback_tasks import status_callback

    monkeypatch.setenv("WAQ_OUTBOUND_ALLOW", "127.0.0.1")  # the loopback receiver below
    close_default_hub()

    with Receiver([404]) as receiver:
        url = receiver.url + "?token=hunter2-secret&x=1"
        with caplog.at_level(logging.INFO, logger="workers.callback_tasks"):
            assert status_callback(url, {"id": "m1", "event": "sent", "key": None}) == "refused 404"
    assert "hunter2" not in caplog.text and receiver.url + "?…" in caplog.text
    assert redact.url("https://u:p@h.example:8443/a/b?t=1#f") == "https://h.example:8443/a/b?…"


# ---- the launcher ----------------------------------------------------------------------------------------------------
def test_the_launcher_prints_urls_without_passwords(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from wa_queue.devstack import launcher

    class Stopped:
        stop_requested = True

        def __init__(self, *args: object, **kwargs: object) -> None:
            pass

        def request_stop(self, *args: object) -> None:
            pass

        def run(self) -> int:
            return 0

    monkeypatch.setattr(launcher, "Supervisor", Stopped)
    monkeypatch.setattr(launcher, "broker_answers", lambda url: True)
    monkeypatch.setenv("WAQ_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("WAQ_BROKER_URL", "redis://:broker-pw-1@127.0.0.1:6390/0")
    monkeypatch.setenv("WAQ_STORE_URL", "mongodb://waq:store-pw-2@db.example:27017/waq")
    monkeypatch.setattr(launcher.signal, "signal", lambda *a: None)  # keep the test runner's handlers
    assert launcher.main([]) == 0
    out = capsys.readouterr().out
    assert "broker-pw-1" not in out and "store-pw-2" not in out
    assert "redis://:***@127.0.0.1:6390/0" in out and "mongodb://waq:***@db.example:27017/waq" in out


# ---- the simulator ---------------------------------------------------------------------------------------------------
def test_the_simulator_refuses_a_non_loopback_host(monkeypatch: pytest.MonkeyPatch) -> None:
    from wa_queue.cli import main as waq
    from wa_queue.simulator import app as sim_app
    from wa_queue.simulator.app import SimServer
    from wa_queue.simulator.listen import UnsafeListen

    served: list[str] = []
    monkeypatch.setattr(sim_app, "make_server", lambda host, *a, **k: served.append(host) or pytest.fail("served"))
    result = CliRunner().invoke(waq, ["simulator", "--host", "0.0.0.0", "--port", "0"])
    assert result.exit_code == 2 and "--unsafe-listen" in result.output and not served
    monkeypatch.undo()
    with pytest.raises(UnsafeListen):
        SimServer(host="0.0.0.0")
    server = SimServer(host="0.0.0.0", unsafe_listen=True)  # an explicit choice (a network-namespace test)
    server.server.server_close()
    SimServer(host="127.0.0.1").server.server_close()
    SimServer(host="localhost").server.server_close()
