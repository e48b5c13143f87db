"""The `waq` session, doctor and process commands (sessions, doctor, flower, selectors, up, worker and the rest)
against a real SQLite store and a real redis-server: click's CliRunner in-process, and `python -m wa_queue.cli`
subprocesses for what a script sees (exit codes, stdout, stderr)."""

from __future__ import annotations

import io
import json
import re
import sys
import types
from datetime import timedelta
from pathlib import Path

import pytest

from tests.cli.helpers import waq, waq_proc
from tests.helpers.constants import UNREACHABLE
from wa_queue import names
from wa_queue.devstack.ports import free_port
from wa_queue.hub import default_hub
from wa_queue.models import utcnow


# ---- sessions --------------------------------------------------------------------------------------------------
def test_sessions_list_and_restart(waq_env: dict[str, str]) -> None:
    listing = json.loads(waq("sessions", "list", "--json").stdout)
    assert set(listing) == {"primary", "secondary"} and listing["primary"]["connected"] is False
    assert "secondary" in waq("sessions", "list").stdout
    done = waq_proc(waq_env, "sessions", "restart", "primary")
    assert done.returncode == 0, done.stderr
    assert "restart requested for primary" in done.stdout
    assert default_hub().store.get_session("primary").restart_requested is True
    unknown = waq_proc(waq_env, "sessions", "restart", "nosuch")
    assert unknown.returncode == 2 and "session must be one of" in unknown.stderr


def _qr_png(data: str) -> tuple[bytes, list[list[bool]]]:
    import qrcode

    code = qrcode.QRCode(border=4, box_size=6)
    code.add_data(data)
    code.make(fit=True)
    buffer = io.BytesIO()
    code.make_image().save(buffer, format="PNG")
    matrix = [row[4:-4] for row in code.get_matrix()[4:-4]]  # without the quiet zone
    return buffer.getvalue(), matrix


def test_sessions_qr_reads_the_png_the_worker_put_in_the_broker(waq_env: dict[str, str], redis_server,  # noqa: ANN001
                                                                 tmp_path: Path) -> None:
    missing = waq_proc(waq_env, "sessions", "qr", "primary")
    assert missing.returncode == 1 and "not waiting for a QR scan" in missing.stderr

    png, matrix = _qr_png("2@wa-queue-test,some-login-ref")
    redis_server.client().set(names.session_qr_key("primary"), png)
    out = tmp_path / "qr.png"
    done = waq_proc(waq_env, "sessions", "qr", "primary", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == png

    drawn = waq_proc(waq_env, "sessions", "qr", "primary")
    assert drawn.returncode == 0, drawn.stderr
    lines = [line for line in drawn.stdout.splitlines() if set(line) <= {" ", "\u2588"} and line]
    grid = [[line[i:i + 2] == "  " for i in range(0, len(line), 2)] for line in lines]  # dark module = blank
    assert [row[2:-2] for row in grid[2:-2]] == matrix  # redrawn module for module, inside a 2-module quiet zone

    assert waq_proc(waq_env, "sessions", "qr", "nosuch").returncode == 2


def test_sessions_qr_that_cannot_be_drawn_still_writes_out(waq_env: dict[str, str], redis_server,  # noqa: ANN001
                                                          tmp_path: Path) -> None:
    redis_server.client().set(names.session_qr_key("secondary"), b"not a png")
    assert waq("sessions", "qr", "secondary").exit_code == 1
    assert waq("sessions", "qr", "secondary", "--out", str(tmp_path / "x.png")).exit_code == 0
    assert (tmp_path / "x.png").read_bytes() == b"not a png"


def test_unreachable_broker_is_exit_1(waq_env: dict[str, str]) -> None:
    done = waq_proc({**waq_env, "WAQ_BROKER_URL": f"redis://127.0.0.1:{free_port()}/0"}, "sessions", "qr", "primary")
    assert done.returncode == 1 and "cannot reach" in done.stderr and "Traceback" not in done.stderr


def test_bad_setting_is_exit_2(waq_env: dict[str, str]) -> None:
    done = waq_proc({**waq_env, "WAQ_LEASE_S": "soon"}, "status")
    assert done.returncode == 2 and "WAQ_LEASE_S" in done.stderr


# ---- doctor ----------------------------------------------------------------------------------------------------
def _doctor(env: dict[str, str], *args: str) -> tuple[int, dict[str, dict]]:
    done = waq_proc(env, "doctor", "--json", *args)
    return done.returncode, {c["name"]: c for c in json.loads(done.stdout)["checks"]}


def test_doctor_store_and_broker_ok_sessions_need_workers(waq_env: dict[str, str]) -> None:
    code, checks = _doctor(waq_env)
    assert checks["store"]["status"] == "ok" and "pending 0" in checks["store"]["detail"]
    assert checks["broker"]["status"] == "ok"
    assert checks["chromium"]["status"] == "skip"  # WAQ_TRANSPORT=fake
    assert checks["session primary"]["status"] == "fail"
    assert "waq worker --session primary" in checks["session primary"]["fix"]
    assert code == 1

    store, now = default_hub().store, utcnow()
    for name in ("primary", "secondary"):
        store.update_session(name, status="connected", heartbeat_at=now)
    code, checks = _doctor(waq_env)
    assert code == 0 and checks["session secondary"]["status"] == "ok"

    store.update_session("secondary", heartbeat_at=now - timedelta(hours=1))
    code, checks = _doctor(waq_env, "--check", "sessions")
    assert code == 1 and set(checks) == {"session primary", "session secondary"}
    assert "stopped reporting" in checks["session secondary"]["fix"]


def _session_down(name: str = "primary") -> None:
    now = utcnow()
    default_hub().store.update_session(name, status="closed", heartbeat_at=now, last_error="net::ERR_NAME_NOT_RESOLVED",
                                   last_error_at=now, last_error_hint=UNREACHABLE)


def test_sessions_list_says_why_a_session_is_down(waq_env: dict[str, str]) -> None:
    _session_down()
    listing = json.loads(waq("sessions", "list", "--json").stdout)
    assert listing["primary"]["last_error"] == "net::ERR_NAME_NOT_RESOLVED"
    assert listing["primary"]["hint"] == UNREACHABLE
    assert listing["secondary"]["last_error"] is None
    lines = [line for line in waq("sessions", "list").stdout.splitlines() if "ERR_NAME_NOT_RESOLVED" in line]
    assert len(lines) == 1 and lines[0].startswith("primary: net::ERR_NAME_NOT_RESOLVED") and UNREACHABLE in lines[0]


def test_doctor_gives_the_sessions_hint(waq_env: dict[str, str]) -> None:
    _session_down()
    code, checks = _doctor(waq_env, "--check", "sessions")
    assert code == 1 and checks["session primary"]["status"] == "fail"
    assert "last error: net::ERR_NAME_NOT_RESOLVED" in checks["session primary"]["detail"]
    assert checks["session primary"]["fix"] == UNREACHABLE


def test_doctor_warns_of_a_page_clock_far_off(waq_env: dict[str, str]) -> None:
    store, now = default_hub().store, utcnow()
    for name in ("primary", "secondary"):
        store.update_session(name, status="connected", heartbeat_at=now)
    store.update_session("primary", page_clock_offset_s=605.0)
    code, checks = _doctor(waq_env, "--check", "sessions")
    assert code == 0  # a warning: the chat rules never trust a time alone
    assert checks["session primary"]["status"] == "warn" and "page clock +605s" in checks["session primary"]["detail"]
    assert checks["session primary"]["fix"] == "the page's clock is 605 s ahead of this machine's: check this " \
        "machine's clock (NTP)"
    assert checks["session secondary"]["status"] == "ok"


def test_doctor_says_what_to_fix(waq_env: dict[str, str], tmp_path: Path) -> None:
    env = {**waq_env, "WAQ_BROKER_URL": f"redis://127.0.0.1:{free_port()}/0"}
    code, checks = _doctor(env, "--check", "broker", "--check", "store")
    assert code == 1 and checks["broker"]["status"] == "fail" and "redis" in checks["broker"]["fix"]
    assert checks["store"]["status"] == "ok"

    env = {**waq_env, "WAQ_TRANSPORT": "selenium", "WAQ_CHROMEDRIVER": str(tmp_path / "no-driver")}
    code, checks = _doctor(env, "--check", "chromedriver")
    assert code == 1 and "apt-get install chromium-driver" in checks["chromedriver"]["fix"]

    # Selenium refuses a driver of another major version: doctor says so before a worker fails on it.
    fake_chrome, fake_driver = tmp_path / "chromium", tmp_path / "chromedriver"
    fake_chrome.write_text("#!/bin/sh\necho 'Chromium 120.0.6099.224'\n")
    fake_driver.write_text("#!/bin/sh\necho 'ChromeDriver 121.0.6167.85'\n")
    fake_chrome.chmod(0o755)
    fake_driver.chmod(0o755)
    env = {**env, "WAQ_CHROME_BINARY": str(fake_chrome), "WAQ_CHROMEDRIVER": str(fake_driver)}
    code, checks = _doctor(env, "--check", "chromium", "--check", "chromedriver")
    assert checks["chromium"]["status"] == "ok" and checks["chromedriver"]["status"] == "fail"
    assert "does not match" in checks["chromedriver"]["detail"]


def test_doctor_finds_the_installed_chromium(waq_env: dict[str, str]) -> None:
    """`make test` installs chromium and chromium-driver: a machine without them fails here, loudly."""
    code, checks = _doctor({**waq_env, "WAQ_TRANSPORT": "selenium"}, "--check", "chromium", "--check", "chromedriver")
    assert checks["chromium"]["status"] == "ok", checks
    assert checks["chromedriver"]["status"] == "ok", checks
    assert code == 0


def test_doctor_human_output(waq_env: dict[str, str]) -> None:
    done = waq_proc(waq_env, "doctor")
    assert done.returncode == 1
    assert re.search(r"^OK\s+store", done.stdout, re.M) and re.search(r"^FAIL\s+session primary", done.stdout, re.M)
    assert "fix: no worker has reported" in done.stdout


# ---- flower, selectors, up, the process commands -----------------------------------------------------------------
def test_flower_execs_flower_argv_with_the_auth_in_its_environment(waq_env: dict[str, str],
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from wa_queue.cli import processes
    from wa_queue.devstack.flower import flower_argv
    from wa_queue.settings import read_settings

    execed: list[tuple[list[str], dict[str, str] | None]] = []
    monkeypatch.setattr(processes, "exec_argv", lambda argv, env=None: execed.append((argv, env)))
    refused = waq("flower")
    assert refused.exit_code == 2 and "WAQ_FLOWER_AUTH" in refused.stderr  # an open Flower is refused

    monkeypatch.setenv("WAQ_FLOWER_AUTH", "admin:correct-horse-battery")
    assert waq("flower", "--port", "5566", "--address", "0.0.0.0").exit_code == 0
    argv, env = execed[-1]
    assert argv == flower_argv(read_settings(), 5566, address="0.0.0.0", auth_in_env=True)
    assert "correct-horse-battery" not in " ".join(argv)  # not visible in `ps`
    assert env == {"FLOWER_BASIC_AUTH": "admin:correct-horse-battery"}


class _FakeSender:
    instances: list[_FakeSender] = []
    holders: list[int] = []

    def __init__(self, session: str, settings: object) -> None:
        self.session, self.calls = session, ["init"]
        self.chrome = types.SimpleNamespace(browser_pids=lambda: list(_FakeSender.holders))
        _FakeSender.instances.append(self)

    def connect(self) -> str:
        self.calls.append("connect")
        return "qr"

    def close(self) -> None:
        self.calls.append("close")


def _fake_selenium(monkeypatch: pytest.MonkeyPatch, check: object) -> None:
    from wa_queue.transport import selectors_check

    monkeypatch.setitem(sys.modules, "wa_queue.transport.selenium", types.SimpleNamespace(SeleniumSender=_FakeSender))
    monkeypatch.setitem(sys.modules, "wa_queue.transport.selectors_check",
                        types.SimpleNamespace(check_selectors=check, format_report=selectors_check.format_report))
    _FakeSender.instances.clear()
    _FakeSender.holders = []


def test_selectors_check_prints_matches_and_closes_the_browser(waq_env: dict[str, str],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The wiring only (a real Chromium run belongs to the selenium transport's tests): a stand-in sender."""
    results = {"qr_canvas": 1, "search_box": 0, "text.invalid_number": False}
    opened: list[str | None] = []
    _fake_selenium(monkeypatch, lambda sender, open_phone=None: opened.append(open_phone) or results)
    result = waq("selectors", "check", "--session", "primary", "--open-phone", "+1 415 555 0123")
    assert result.exit_code == 0, result.output
    assert re.search(r"qr_canvas\s+1\s+ok", result.stdout) and re.search(r"search_box\s+0\s+missing", result.stdout)
    assert _FakeSender.instances[0].calls == ["init", "connect", "close"]
    assert opened == ["14155550123"]  # the sender takes digits without '+'
    as_json = json.loads(waq("selectors", "check", "--session", "primary", "--json").stdout)
    assert as_json["selectors"] == results and as_json["state"] == "qr" and as_json["invalid"] == []

    _fake_selenium(monkeypatch, lambda sender, open_phone=None: {"send_button": False})
    invalid = waq("selectors", "check", "--session", "primary")
    assert invalid.exit_code == 1 and "INVALID CSS" in invalid.stdout

    def broken(sender: object, open_phone: str | None = None) -> dict:
        raise RuntimeError("page changed")

    _fake_selenium(monkeypatch, broken)
    with pytest.raises(RuntimeError):
        waq("selectors", "check", "--session", "primary")
    assert _FakeSender.instances[-1].calls[-1] == "close"  # the browser is closed even when the check fails
    assert waq("selectors", "check", "--session", "nosuch").exit_code == 2


def test_selectors_check_leaves_a_running_worker_browser_alone(waq_env: dict[str, str],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_selenium(monkeypatch, lambda sender, open_phone=None: {})
    _FakeSender.holders = [4242]
    result = waq("selectors", "check", "--session", "primary")
    assert result.exit_code == 1 and "stop `waq worker --session primary` first" in result.stderr
    assert _FakeSender.instances[0].calls == ["init"]  # no browser started (it would kill the worker's)


def test_up_runs_the_procfile_through_honcho(waq_env: dict[str, str], tmp_path: Path) -> None:
    procfile = tmp_path / "Procfile"
    procfile.write_text("hello: echo hello-from-honcho\n")
    data_dir = Path(waq_env["WAQ_DATA_DIR"])
    assert not data_dir.exists()
    done = waq_proc(waq_env, "up", "--procfile", str(procfile), timeout=60)
    assert "hello-from-honcho" in done.stdout, done.stdout + done.stderr
    assert data_dir.is_dir()
    assert waq_proc(waq_env, "up", "--procfile", str(tmp_path / "missing")).returncode == 2


def test_the_process_commands_are_still_there(waq_env: dict[str, str]) -> None:
    for command in ("worker", "beat", "api", "simulator"):
        assert waq(command, "--help").exit_code == 0
    done = waq_proc(waq_env, "worker", "--session", "nosuch")
    assert done.returncode == 2 and "unknown session" in done.stderr
