"""`waq selftest` in real Chromium against the strict simulator, one browser profile per markup profile.

Each test logs a session in by scanning the QR through the control API (as the phone would), closes that browser,
and runs the command as an operator does: it must refuse while a browser holds the profile, start its own, pass
on every known row form and fail, naming the selectors to override and sending nothing, on an unknown one.
A stand-in sender checks, without a browser, that the command closes it whatever fails.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import threading
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from tests.helpers.browser import ACCOUNT, Sim, log_in, sent_texts
from wa_queue import errors
from wa_queue.cli import main
from wa_queue.cli.output import LazyHub
from wa_queue.settings import Settings
from wa_queue.transport.base import SessionState
from wa_queue.transport.selenium import SeleniumSender

SESSION = "primary"
# Ticks move on quickly: the chat must hold still before it is read, and Sent -> Delivered -> Read is 2 s.
FAST_TICKS = {"delivered_after_s": 0.2, "read_after_s": 0.4}


@dataclass
class Stand:
    sim: Sim
    settings: Settings
    sender: SeleniumSender  # logged in; the test closes it before the command starts its own on the profile


@pytest.fixture
def stand(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stand]:
    markup, config = request.param if isinstance(request.param, tuple) else (request.param, {})
    sim = Sim(markup, config={**FAST_TICKS, **config})
    settings = Settings.from_env({"WAQ_DATA_DIR": str(tmp_path), "WAQ_WHATSAPP_URL": sim.url,
                                  "WAQ_SESSIONS": f"{SESSION},secondary", "WAQ_SEND_TIMEOUT_S": "6"})
    sender = SeleniumSender(SESSION, settings)
    try:
        log_in(sender, sim)
        yield Stand(sim, settings, sender)
    finally:
        sender.close()
        sim.server.shutdown()


def waq(*args: str, settings: Settings) -> Result:
    """`waq ARGS` in this process, over `settings` (in place of the WAQ_* variables)."""
    return CliRunner().invoke(main, list(args), obj=LazyHub(settings), catch_exceptions=False)


def steps_of(result: Result) -> dict[str, dict]:
    return {s["name"]: s for s in json.loads(result.stdout)["steps"]}


# The forms each profile's outgoing rows are recognised by (simulator README, "Markup profiles").
FORMS = {"2026-03": "out by out_id+out_class+out_tail+status_icon+status_title",
         "2026-05": "out by out_class+status_icon+status_title",
         "2026-08": "out by out_id+out_tail+status_icon+status_title",
         "2026-11": "out by out_id+out_tail+status_icon+status_title"}
FAST = ("2026-08", "2026-11")  # in make test; the others with --long


# The newest profile in make test; the older two (each ~25 s of Chromium) with --long. tests/browser/test_profiles.py
# and tests/integration/test_profiles_e2e.py send on every profile in make test.
@pytest.mark.browser  # the stand logs a Selenium sender in
@pytest.mark.parametrize("stand", [pytest.param(markup, marks=[] if markup in FAST else [pytest.mark.long])
                                   for markup in FORMS], indirect=True)
def test_selftest_with_send_passes_and_sends_each_canary_once(stand: Stand) -> None:
    markup = stand.sim.markup
    history = markup != "2026-08"  # one profile starts from an empty chat with itself: rows are checked by the sends
    if history:
        stand.sender.send("+" + ACCOUNT, "a note to self", ref="history")
    stand.sender.close()

    result = waq("selftest", "--session", SESSION, "--send", "--json", settings=stand.settings)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["override"] == [] and report["sent_chars"][1] == 1500
    steps = steps_of(result)
    assert [s["status"] for s in steps.values()] == ["ok"] * 4 + ["ok" if history else "skip"] + ["ok"] * 4
    assert steps["send_button"]["detail"].startswith("a send control appeared")
    assert "Headless" not in steps["browser"]["data"]["ua"] and steps["browser"]["data"]["language"] == "en-US"
    assert steps["account"]["data"]["number"] == ACCOUNT
    assert steps["compose_box"]["data"] == {"total": 2, "visible": 1, "no_rects": 0, "aria_hidden": 1}
    if history:
        assert f"1 {FORMS[markup]}" in steps["rows"]["detail"]

    sent = sent_texts(stand.sim, ACCOUNT)
    canaries = [t for t in sent if t.startswith("waq selftest ")]
    assert len(canaries) == 2 and len(set(canaries)) == 2 and sorted(map(len, canaries))[1] == 1500
    assert sent == (["a note to self"] if history else []) + canaries  # each once, nothing else, the typed one not
    assert "🙂" in canaries[0] and "*" in canaries[0]

    if not history:  # again without --send: the rows the canaries left are recognised; nothing is sent
        again = waq("selftest", "--session", SESSION, settings=stand.settings)
        assert again.exit_code == 0, again.output
        assert f"2 {FORMS[markup]}" in again.stdout and "passed" in again.stdout
        assert sent_texts(stand.sim, ACCOUNT) == sent


@pytest.mark.browser  # the stand logs a Selenium sender in
@pytest.mark.parametrize("stand", ["unknown"], indirect=True)
def test_selftest_fails_naming_the_selectors_to_override_and_sends_nothing(stand: Stand, tmp_path: Path) -> None:
    stand.sender.page.timeout = 2.0  # how long it looks for a row it cannot recognise
    with pytest.raises(errors.SendOutcomeUnknown):  # it leaves, but the sender cannot recognise its row
        stand.sender.send("+" + ACCOUNT, "a note to self", ref="history")
    # the worker's browser holds the profile
    busy = waq("selftest", "--session", SESSION, "--send", settings=stand.settings)
    assert busy.exit_code == 1 and f"stop `waq worker --session {SESSION}` first" in busy.stderr
    stand.sender.close()

    result = waq("selftest", "--session", SESSION, "--send", settings=stand.settings)
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines if line[:1] != " "][:8] == [
        "ok", "ok", "ok", "ok", "FAIL", "ok", "ok", "skip"]  # browser .. compose_box, rows, typing, send_button, send
    rows = next(line for line in lines if line.startswith("FAIL  rows"))
    assert "1 message rows of no known form" in rows and 'data-status="' in rows  # with a sketch of its markup
    assert ("override: out_id, out_class, in_id, in_class, out_tail, in_tail, status_icon, status_title, "
            "message_text") in result.stdout
    assert lines[-1].startswith(f"selftest of session {SESSION} FAILED: override out_id, out_class, in_id")
    assert "WAQ_SELECTORS_FILE" in lines[-1]
    assert sent_texts(stand.sim, ACCOUNT) == ["a note to self"]  # not sent again, no canary

    # An override that matches no compose box: the chat cannot be opened, and the report says which name to fix.
    overrides = tmp_path / "selectors.json"
    overrides.write_text(json.dumps({"compose_box": "footer div.no-such-editor"}))
    broken_settings = dataclasses.replace(stand.settings, selectors_file=str(overrides), send_timeout_s=3.0)
    broken = waq("selftest", "--session", SESSION, "--send", "--json", settings=broken_settings)
    assert broken.exit_code == 1, broken.output
    report = json.loads(broken.stdout)
    assert report["ok"] is False and report["override"] == ["compose_box"]
    assert [(s["name"], s["status"]) for s in report["steps"]][-2:] == [("account", "ok"), ("compose_box", "fail")]
    assert "0 visible" in report["steps"][-1]["detail"]
    assert sent_texts(stand.sim, ACCOUNT) == ["a note to self"]


@pytest.mark.browser  # the stand logs a Selenium sender in
@pytest.mark.parametrize("stand", [("2026-11", {"send_control": "unknown"})], indirect=True)
def test_selftest_fails_naming_send_button_when_no_send_control_is_known(stand: Stand) -> None:
    """The send control changed (late July 2026) into a form no selector knows: without --send the check types the
    canary, finds no send control, clears the box and fails naming send_button; nothing is clicked or sent."""
    stand.sender.close()
    result = waq("selftest", "--session", SESSION, "--json", settings=stand.settings)
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is False and report["override"] == ["send_button"]
    steps = steps_of(result)
    assert steps["typing"]["status"] == "ok"  # typed, read back and cleared
    assert steps["send_button"]["status"] == "fail" and steps["send_button"]["selectors"] == ["send_button"]
    assert "no visible send control" in steps["send_button"]["detail"]
    assert sent_texts(stand.sim, ACCOUNT) == []
    # --send stops before any canary
    with_send = waq("selftest", "--session", SESSION, "--send", settings=stand.settings)
    assert with_send.exit_code == 1 and "FAIL  send_button" in with_send.stdout
    assert "skip  send" in with_send.stdout and sent_texts(stand.sim, ACCOUNT) == []


class _BrokenSender:
    """Stands in for SeleniumSender: its browser fails at start (the CLI must still close it)."""

    instances: list[_BrokenSender] = []

    def __init__(self, session: str, settings: Settings) -> None:
        self.session, self._lock, self.calls = session, threading.RLock(), []
        self.chrome = types.SimpleNamespace(driver=None, browser_pids=lambda: [])  # no browser yet, none on the profile
        _BrokenSender.instances.append(self)

    def connect(self) -> SessionState:
        raise self.error

    def close(self) -> None:
        self.calls.append("close")


@pytest.mark.parametrize(("error", "code"), [(RuntimeError("page changed"), 1),
                                             (errors.ConfigError("selectors with invalid CSS: chat_row"), 2)])
def test_selftest_cli_closes_the_browser_whatever_fails(error: Exception, code: int, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import wa_queue.transport.selftest  # noqa: F401 - the real one, imported before the sender is replaced

    monkeypatch.setitem(sys.modules, "wa_queue.transport.selenium", types.SimpleNamespace(SeleniumSender=_BrokenSender))
    monkeypatch.setattr(_BrokenSender, "error", error, raising=False)
    _BrokenSender.instances.clear()
    settings = Settings.from_env({"WAQ_DATA_DIR": str(tmp_path)})
    result = waq("selftest", "--session", SESSION, "--json", settings=settings)
    assert waq("selftest", "--session", "nosuch", settings=settings).exit_code == 2
    assert result.exit_code == code, result.output
    assert _BrokenSender.instances[0].calls == ["close"]
    if code == 1:  # a failure under the check is reported as a step, not a traceback
        report = json.loads(result.stdout)
        assert report["ok"] is False and report["steps"][-1]["detail"] == "RuntimeError: page changed"
    else:
        assert "invalid CSS: chat_row" in result.output
