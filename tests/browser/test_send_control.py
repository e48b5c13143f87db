"""A send control that may change (issue 22): the default selectors find the 2026-11 div[role="button"]; a control
no selector knows falls back to Enter, which sends in WhatsApp's editor; where Enter does not send either, the send
stops naming send_button and nothing is ever sent twice."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers.browser import FRIEND, Sim, log_in, make_settings
from wa_queue import errors
from wa_queue.transport.selectors import JS_BOX
from wa_queue.transport.selenium import SeleniumSender


@pytest.fixture(scope="module")
def sim_2026_11() -> Iterator[Sim]:
    server = Sim(markup="2026-11")
    yield server
    server.server.shutdown()


@pytest.fixture(scope="module")
def sender(sim_2026_11: Sim, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeleniumSender]:
    snd = SeleniumSender("controls", make_settings(tmp_path_factory.mktemp("controls"), sim_2026_11))
    log_in(snd, sim_2026_11)
    yield snd
    snd.close()


@pytest.fixture(autouse=True)
def _reset(sim_2026_11: Sim) -> Iterator[None]:
    yield
    sim_2026_11.post("/__sim__/config", {"send_control": "profile", "enter_sends": True})
    sim_2026_11.post("/__sim__/reset", {"keep_links": True})


def texts(sim: Sim) -> list[str]:
    return [m["text"] for m in sim.sent()]


def test_the_2026_11_div_send_control_is_found_by_the_defaults(sender: SeleniumSender, sim_2026_11: Sim) -> None:
    receipt = sender.send(FRIEND, "sent through the div control", ref="div")
    assert receipt.wa_id and texts(sim_2026_11) == ["sent through the div control"]
    assert sender.last_problem() is None  # no fallback was needed


def test_an_unknown_send_control_falls_back_to_enter_once(sender: SeleniumSender, sim_2026_11: Sim,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    sim_2026_11.post("/__sim__/config", {"send_control": "unknown"})
    receipt = sender.send(FRIEND, "sent with Enter", ref="enter")
    assert receipt.wa_id and texts(sim_2026_11) == ["sent with Enter"]
    assert any("send_button" in r.getMessage() and "Enter" in r.getMessage() for r in caplog.records)
    # The row decides, not the key: the message is found in the chat as the click's row.
    assert sender.find_sent(FRIEND, "sent with Enter", ref="enter").wa_id == receipt.wa_id


def test_where_enter_does_not_send_the_send_stops_naming_send_button(sender: SeleniumSender,
                                                                     sim_2026_11: Sim) -> None:
    sim_2026_11.post("/__sim__/config", {"send_control": "unknown", "enter_sends": False})
    for attempt in range(2):
        with pytest.raises(errors.TransientSendError, match="send_button") as raised:
            sender.send(FRIEND, "never sent", ref=f"stuck-{attempt}")
        assert not isinstance(raised.value, errors.SendOutcomeUnknown)  # the box still held it: nothing left
        assert sender.page.call(JS_BOX) == ""  # the text (and Enter's line break) cleared for the next try
    assert texts(sim_2026_11) == []
    sim_2026_11.post("/__sim__/config", {"send_control": "profile", "enter_sends": True})
    assert sender.send(FRIEND, "never sent", ref="stuck-2").wa_id
    assert texts(sim_2026_11) == ["never sent"]  # once, when the page allows it
