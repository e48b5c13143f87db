"""Issue 16 at the `waq` command (click's CliRunner in-process, a real SQLite store and redis-server): a message's
--send-window, `waq sessions warmup`, and the warm-up ramp in `waq sessions list`, `waq status` and `waq doctor`."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from click.testing import CliRunner, Result

from tests.helpers.constants import PHONE
from wa_queue.cli import main
from wa_queue.hub import close_default_hub, default_hub
from wa_queue.models import utcnow


@pytest.fixture(autouse=True)
def ramp(waq_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The default warm-up ramp, which waq_env turns off."""
    monkeypatch.setenv("WAQ_WARMUP_CAPS", "20,40,80,150,300")
    close_default_hub()


def waq(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def today():  # noqa: ANN201 - the Hub's local day (WAQ_TIMEZONE is UTC in waq_env)
    return default_hub().clock().date()


def test_enqueue_with_a_send_window_and_status_shows_it(waq_env: dict[str, str]) -> None:
    done = waq("enqueue", PHONE, "hello", "--send-window", "22:00-06:00", "--json")
    assert done.exit_code == 0, done.output
    message_id = json.loads(done.stdout)["id"]
    assert str(default_hub().store.get(message_id).send_window) == "22:00-06:00"
    shown = waq("status", message_id)
    assert re.search(r"^send_window +22:00-06:00$", shown.stdout, re.MULTILINE), shown.stdout
    assert json.loads(waq("status", message_id, "--json").stdout)["send_window"] == {"start": "22:00",
                                                                                    "end": "06:00"}
    plain = json.loads(waq("enqueue", PHONE, "no window", "--json").stdout)["id"]
    assert "send_window" not in waq("status", plain).stdout


def test_enqueue_refuses_a_bad_send_window(waq_env: dict[str, str]) -> None:
    done = CliRunner().invoke(main, ["enqueue", PHONE, "hello", "--send-window", "08:00"])
    assert done.exit_code == 2
    assert "send_window must be HH:MM-HH:MM" in done.stderr
    never = CliRunner().invoke(main, ["enqueue", "+79161234567", "hello", "--send-window", "09:00-18:00"])
    assert never.exit_code == 2 and "never open" in never.stderr
    both = CliRunner().invoke(main, ["enqueue", "--file", __file__, "--send-window", "08:00-21:00"])
    assert both.exit_code == 2 and "not both" in both.stderr
    assert default_hub().store.count_by_status()["pending"] == 0


def test_sessions_warmup_skip_and_reset(waq_env: dict[str, str]) -> None:
    store = default_hub().store
    store.update_session("primary", first_send_day=today() - timedelta(days=7))
    listing = waq("sessions", "list")
    [line] = [row for row in listing.stdout.splitlines() if row.startswith("primary ")]
    assert "0/80" in line and "step 3/5, day 2/3, 8 days left" in line, listing.stdout
    [line] = [row for row in listing.stdout.splitlines() if row.startswith("secondary ")]
    assert "0/20" in line and "new: starts at the first send (5 steps of 3 days)" in line

    skipped = waq("sessions", "warmup", "primary", "--skip")
    assert skipped.exit_code == 0
    assert skipped.stdout.strip() == "warm-up of primary: skip; cap today 300 (skipped)"
    assert store.get_session("primary").warmup_skipped is True
    assert json.loads(waq("sessions", "list", "--json").stdout)["primary"]["warmup"]["state"] == "skipped"

    reset = json.loads(waq("sessions", "warmup", "primary", "--reset", "--json").stdout)
    assert (reset["daily_cap"], reset["warmup"]["state"]) == (20, "new")
    assert (store.get_session("primary").first_send_day, store.get_session("primary").warmup_skipped) == (None, False)


def test_sessions_warmup_needs_an_action_and_a_known_session(waq_env: dict[str, str]) -> None:
    none = CliRunner().invoke(main, ["sessions", "warmup", "primary"])
    assert none.exit_code == 2 and "--reset or --skip" in none.stderr
    unknown = CliRunner().invoke(main, ["sessions", "warmup", "nosuch", "--skip"])
    assert unknown.exit_code == 2 and "session must be one of" in unknown.stderr
    assert default_hub().store.get_session("primary").warmup_skipped is False


def test_doctor_shows_the_cap_of_today_and_the_ramp(waq_env: dict[str, str]) -> None:
    store, now = default_hub().store, utcnow()
    store.update_session("primary", status="connected", heartbeat_at=now, first_send_day=today())
    store.update_session("secondary", status="banned", heartbeat_at=now, warmup_skipped=True,
                         last_error="Your account is restricted until 14:00")
    done = CliRunner().invoke(main, ["doctor", "--check", "sessions", "--json"])
    checks = {c["name"]: c for c in json.loads(done.stdout)["checks"]}
    assert checks["session primary"]["status"] == "ok"
    assert "sent today 0/20, warm-up step 1/5, day 1/3, 15 days left" in checks["session primary"]["detail"]
    assert checks["session secondary"]["status"] == "fail"
    assert "banned" in checks["session secondary"]["detail"]
    assert "sent today 0/300, warm-up skipped" in checks["session secondary"]["detail"]
    assert "last error: Your account is restricted until 14:00" in checks["session secondary"]["detail"]
