"""The WhatsApp Web simulator's servers through the Flask test client: control API, send semantics, profiles, screens.

The page itself is tested in a real Chromium: test_page.py and test_browser_flows.py."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from tests.helpers.constants import SIM_ACCOUNT as ACCOUNT
from tests.helpers.constants import SIM_DEST as DEST
from wa_queue.simulator import create_app
from wa_queue.simulator.profiles import DEFAULT_MARKUP
from wa_queue.simulator.state import SimError, SimState, auto_account


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def linked_client(app_kwargs: dict | None = None) -> FlaskClient:
    kwargs = dict(app_kwargs or {})
    kwargs["config"] = {"ack_delay_s": 0, **kwargs.get("config", {})}  # strict, but acks at once
    client = create_app(**kwargs).test_client()
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


# ---- profiles, strict mode, incoming messages, screens -------------------------------------------------------

HEADLESS_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0.0.0"


def boot(html: str) -> dict:
    return json.loads(re.search(r"window\.SIM = (.*?);</script>", html).group(1))


def test_markup_profiles_and_strictness_are_chosen_at_start_and_shown_in_config() -> None:
    with pytest.raises(ValueError,
                       match="unknown markup profile 'nope'; known: 2026-03, 2026-05, 2026-08, 2026-11, unknown"):
        create_app(markup="nope")
    client = create_app(markup="2026-05").test_client()
    config = client.get("/__sim__/config").json
    assert config["markup"] == "2026-05" and config["strict"] is True and config["whats_new"] is True
    assert config["ack_delay_s"] == 1.0 and config["history_delay_ms"] == 600 and config["input_delay_ms"] == 150
    assert config["boot_delay_s"] == 0
    assert client.post("/__sim__/config", json=config).status_code == 200  # a GET's answer may be posted back
    assert client.post("/__sim__/config", json={"markup": "2026-08"}).status_code == 400
    assert client.post("/__sim__/config", json={"strict": False}).status_code == 400
    assert client.post("/__sim__/config", json={"whats_new": 1}).status_code == 400
    assert client.post("/__sim__/config", json={"boot_delay_s": 2}).json["boot_delay_s"] == 2.0
    lenient = create_app(strict=False, config={"boot_delay_s": 1}).test_client().get("/__sim__/config").json
    assert lenient["strict"] is False and lenient["ack_delay_s"] == 0 and lenient["whats_new"] is False
    assert lenient["boot_delay_s"] == 1.0
    assert create_app().test_client().get("/__sim__/healthz").json["markup"] == DEFAULT_MARKUP == "2026-11"


def test_clock_skew_and_the_2026_11_variants_are_config_the_page_boots_with() -> None:
    client = linked_client({"markup": "2026-11", "clock_skew_s": -240})
    config = client.get("/__sim__/config").json
    assert config["clock_skew_s"] == -240.0
    assert (config["send_control"], config["row_ids"], config["ticks"]) == ("profile", "profile", "profile")
    page = boot(client.get(f"/send?phone={DEST}").get_data(as_text=True))
    assert page["clock_skew_s"] == -240.0 and page["send_control"] == "profile" and page["markup"] == "2026-11"
    changed = client.post("/__sim__/config", json={"clock_skew_s": 600.5, "send_control": "unknown",
                                                   "row_ids": "bare", "ticks": "title"}).json
    assert (changed["clock_skew_s"], changed["send_control"], changed["row_ids"], changed["ticks"]) == (
        600.5, "unknown", "bare", "title")
    page = boot(client.get("/").get_data(as_text=True))
    assert (page["clock_skew_s"], page["send_control"], page["row_ids"], page["ticks"]) == (
        600.5, "unknown", "bare", "title")
    for bad in ({"clock_skew_s": "60"}, {"clock_skew_s": True}, {"clock_skew_s": 400 * 86400},
                {"send_control": "link"}, {"row_ids": 1}, {"ticks": None}):
        assert client.post("/__sim__/config", json=bad).status_code == 400, bad
    client.post("/__sim__/reset", json={"keep_links": True})
    assert client.get("/__sim__/config").json["clock_skew_s"] == -240.0  # back to what it started with
    with pytest.raises(SimError):
        create_app(clock_skew_s=float("nan"))


def test_clock_skew_shifts_the_restriction_notice() -> None:
    clock = FakeClock()
    state = SimState(clock=clock, config={"clock_skew_s": -3600.0})
    state.set_fault({"session": ACCOUNT, "fault": "restricted", "until": 1_000_000.0 + 7200})
    assert "until 12 Jan 1970, 14:46 UTC" in state.notice(ACCOUNT)  # 13:46 + 2 h, shown an hour behind


def test_the_page_boots_with_its_profile_device_number_and_whats_new() -> None:
    client = linked_client({"markup": "2026-03", "config": {"boot_delay_s": 0.5}})
    first = boot(client.get(f"/send?phone={DEST}&text=hi").get_data(as_text=True))
    assert first["markup"] == "2026-03" and first["strict"] is True and first["screen"] == "app"
    assert first["chat"] == DEST and first["text"] == "hi" and first["boot_delay_s"] == 0.5
    assert first["whats_new"] is True and 2 <= first["device_no"] <= 61
    assert client.post("/__sim__/api/whats_new").json == {"ok": True}
    again = boot(client.get("/").get_data(as_text=True))
    assert again["whats_new"] is False and again["device_no"] == first["device_no"]
    assert client.get("/__sim__/devices").json[0]["whats_new_seen"] is True


def test_send_accepts_packed_and_bare_ids_as_one_message() -> None:
    client = linked_client()
    bare = "3EB0" + "AB" * 10
    assert client.post("/__sim__/api/send", json={"id": bare, "to": DEST, "text": "x"}).json["ack"]
    packed = f"true_{DEST}@c.us_{bare}"
    assert client.post("/__sim__/api/send", json={"id": packed, "to": DEST, "text": "x"}).json["ack"]
    [sent] = client.get("/__sim__/sent").json
    assert sent["id"] == packed and sent["bare_id"] == bare and sent["direction"] == "out"
    for bad in (f"true_4915100000000@c.us_{bare}", "false_" + packed[5:], "3EB0", "not-hex-at-all", ""):
        assert client.post("/__sim__/api/send", json={"id": bad, "to": DEST, "text": "x"}).status_code == 400, bad
    assert client.post("/__sim__/api/send", json={"id": bare, "to": "12", "text": "x"}).status_code == 400


def test_strict_ack_comes_after_ack_delay() -> None:
    client = linked_client({"config": {"ack_delay_s": 0.3}})
    started = time.monotonic()
    assert send(client).json["ack"] is True
    assert time.monotonic() - started >= 0.3


def test_incoming_messages_show_in_the_chat_with_a_direction() -> None:
    client = linked_client()
    assert send(client, "out").json["ack"]
    resp = client.post("/__sim__/incoming", json={"account": ACCOUNT, "from": DEST, "text": "in"})
    assert resp.status_code == 200
    msg = resp.json["message"]
    assert msg["id"].startswith(f"false_{DEST}@c.us_3A") and msg["bare_id"] == msg["id"].rsplit("_", 1)[1]
    assert msg["from"] == DEST and msg["to"] == ACCOUNT and msg["direction"] == "in"
    for bad in ({"account": ACCOUNT, "from": "12", "text": "x"}, {"account": "x", "from": DEST, "text": "x"},
                {"account": ACCOUNT, "from": DEST, "text": ""}, {"account": ACCOUNT, "from": DEST}):
        assert client.post("/__sim__/incoming", json=bad).status_code == 400, bad
    state = client.get(f"/__sim__/api/state?chat={DEST}").json
    assert [(m["direction"], m["text"]) for m in state["messages"]] == [("out", "out"), ("in", "in")]
    assert "status" in state["messages"][0] and "status" not in state["messages"][1]
    assert state["chats"] == [{"chat": DEST, "phone": DEST, "lid": None, "title": f"+{DEST}", "text": "in",
                               "time": msg["time"], "unread": 0}]  # read: the poll had the chat open
    assert [m["direction"] for m in client.get(f"/__sim__/api/open?phone={DEST}").json["messages"]] == ["out", "in"]
    assert [m["text"] for m in client.get("/__sim__/sent").json] == ["out"]  # only what the account sent
    assert [m["text"] for m in client.get(f"/__sim__/incoming?account={ACCOUNT}").json] == ["in"]
    assert client.get("/__sim__/incoming?account=15559999999").json == []


def test_conflict_fault_shows_the_conflict_screen_until_use_here() -> None:
    client = linked_client()
    assert client.post("/__sim__/faults", json={"session": ACCOUNT, "fault": "conflict"}).json["ok"]
    html = client.get(f"/send?phone={DEST}&text=hi").get_data(as_text=True)
    assert boot(html)["screen"] == "conflict" and "pane-side" not in html
    resp = send(client)
    assert resp.status_code == 409 and client.get("/__sim__/sent").json == []
    assert client.post("/__sim__/api/use_here").json == {"ok": True}
    assert client.get("/__sim__/faults").json["sessions"] == {}
    assert boot(client.get("/").get_data(as_text=True))["screen"] == "app"
    assert send(client).json["ack"]


def test_headless_chrome_gets_the_update_page_in_strict_mode_only() -> None:
    strict = create_app().test_client()
    page = strict.get("/send?phone=4915112345678", headers={"User-Agent": HEADLESS_UA})
    html = page.get_data(as_text=True)
    assert "WhatsApp works with Google Chrome 85+" in html and "UPDATE GOOGLE CHROME" in html
    assert "Set-Cookie" not in page.headers and "canvas" not in html and "pane-side" not in html
    assert strict.get("/__sim__/devices").json == []
    lenient = create_app(strict=False).test_client()
    assert "Scan this QR code" in lenient.get("/", headers={"User-Agent": HEADLESS_UA}).get_data(as_text=True)


def test_new_state_survives_a_restart(tmp_path: Path) -> None:
    path = str(tmp_path / "sim.json")
    client = linked_client({"state_file": path})
    client.post("/__sim__/api/whats_new")
    client.post("/__sim__/incoming", json={"account": ACCOUNT, "from": DEST, "text": "in"})
    restarted = create_app(state_file=path).test_client()
    restarted.set_cookie("wa_sim_device", client.get_cookie("wa_sim_device").value)
    assert boot(restarted.get("/").get_data(as_text=True))["whats_new"] is False
    assert [m["direction"] for m in restarted.get(f"/__sim__/api/state?chat={DEST}").json["messages"]] == ["in"]


def test_clock_skew_setting_and_flags_are_validated(monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from click.testing import CliRunner

    from wa_queue.cli import main as waq
    from wa_queue.errors import ConfigError
    from wa_queue.settings import Settings
    from wa_queue.simulator.__main__ import main

    assert Settings.from_env({"WAQ_SIM_CLOCK_SKEW_S": "-240"}).sim_clock_skew_s == -240.0
    assert Settings.from_env({}).sim_clock_skew_s == 0.0
    for bad in ("nan", "inf", "four minutes", str(400 * 86400)):
        with pytest.raises(ConfigError, match="WAQ_SIM_CLOCK_SKEW_S"):
            Settings.from_env({"WAQ_SIM_CLOCK_SKEW_S": bad})
    with pytest.raises(SystemExit):
        main(["--clock-skew-s", "1e12"])
    assert "clock_skew_s must be a number of seconds" in capsys.readouterr().err
    result = CliRunner().invoke(waq, ["simulator", "--clock-skew-s", "-1e12"])
    assert result.exit_code == 2 and "Invalid value for --clock-skew-s" in result.output
