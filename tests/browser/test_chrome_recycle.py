"""WAQ_CHROME_MAX_PSS_MB: a Chrome tree over the limit is recycled on its profile between two sends, measured at most
every PSS_CHECK_SENDS sends; the session keeps its login and sends on. Real Chromium on the in-process simulator."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from tests.helpers.browser import FRIEND, Sim, log_in, make_settings, sent_texts
from wa_queue import procs
from wa_queue.transport import chrome
from wa_queue.transport.base import SessionState
from wa_queue.transport.selenium import SeleniumSender


def test_a_chrome_over_its_pss_limit_is_recycled_and_sends_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chrome, "PSS_CHECK_SENDS", 2)
    monkeypatch.setattr(chrome, "PSS_CHECK_S", 3600.0)
    sim = Sim()
    # 1 MiB: every Chrome is over it. No recycling by sends or hours, so only the PSS limit can restart Chrome.
    snd = SeleniumSender("heavy", make_settings(tmp_path, sim, WAQ_CHROME_MAX_PSS_MB="1",
                                                WAQ_CHROME_RECYCLE_SENDS="0", WAQ_CHROME_RECYCLE_HOURS="0"))
    try:
        log_in(snd, sim)
        starts, first_tree = snd.chrome.restarts, snd.chrome.browser_pids()
        texts = [f"heavy {i}" for i in range(5)]
        for i, text in enumerate(texts):
            assert snd.send(FRIEND, text, ref=f"h{i}").wa_id  # a logged-out page would raise SessionLoggedOut
        # Read before sends 3 and 5 (two sends after each start): over the limit both times.
        assert snd.chrome.restarts == starts + 2
        assert not [p for p in first_tree if procs.alive(p)]  # the old tree is gone, not leaked
        assert snd.state() is SessionState.CONNECTED  # the login lives in the profile
        # Under the limit nothing is recycled.
        snd.chrome.settings = dataclasses.replace(snd.chrome.settings, chrome_max_pss_mb=1_000_000)
        for i in range(3):
            snd.send(FRIEND, f"light {i}", ref=f"l{i}")
        assert snd.chrome.restarts == starts + 2
        assert sent_texts(sim, FRIEND) == [*texts, "light 0", "light 1", "light 2"]
    finally:
        snd.close()
        sim.server.shutdown()
