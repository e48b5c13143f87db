"""Chrome's memory options (WAQ_CHROME_MEMORY_OPTIONS): each takes effect in real Chromium, and with all of them on
the sender still has what it needs on the strict simulator (the QR canvas, the ticks, the invalid-number dialog)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.helpers.browser import FRIEND, UNREGISTERED, Sim, log_in, make_settings, sent_texts
from wa_queue import errors, procs
from wa_queue.errors import ConfigError
from wa_queue.settings import Settings
from wa_queue.transport.base import SessionState
from wa_queue.transport.chrome_options import BASE_DISABLED_FEATURES, MEMORY_OPTIONS, blocked_urls, chrome_args
from wa_queue.transport.selenium import SeleniumSender

ALL = tuple(MEMORY_OPTIONS)
# Dark pixels on the QR canvas: the code drawn from the image the page loads (a blank canvas has none).
JS_QR_DARK = """
const c = document.querySelector(arguments[0]);
if (!c) return -1;
const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
let dark = 0;
for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0 && d[i] < 80) dark++;
return dark;
"""
JS_PICTURES = "return [...document.images].filter(i => i.matches('.avatar, .link-preview')).map(i => i.naturalWidth)"


def _kinds(sender: SeleniumSender) -> list[str]:
    """Each Chrome process's kind: browser, renderer, top-chrome-webui, gpu-process, utility:<service>..."""
    kinds = []
    for pid in sender.chrome.browser_pids():
        args = procs.cmdline(pid).split()
        if not args or "chromedriver" in args[0]:
            continue
        kind = next((a[len("--type="):] for a in args if a.startswith("--type=")), "browser")
        if "--top-chrome-webui" in args:
            kind = "top-chrome-webui"
        service = next((a.split("=", 1)[1] for a in args if a.startswith("--utility-sub-type=")), "")
        kinds.append(f"{kind}:{service}" if service else kind)
    return kinds


def _qr_dark_pixels(sender: SeleniumSender) -> int:
    deadline = time.monotonic() + 10
    while True:
        dark = sender.chrome.driver.execute_script(JS_QR_DARK, sender.page.selectors["qr_canvas"])
        if dark > 0 or time.monotonic() > deadline:
            return dark
        time.sleep(0.1)


def test_options_merge_into_one_switch_each() -> None:
    args = chrome_args(ALL)
    for switch in ("--disable-features=", "--enable-features=", "--window-size="):
        assert len([a for a in args if a.startswith(switch)]) == 1, switch  # Chrome keeps only the last one
    disabled = next(a for a in args if a.startswith("--disable-features=")).split("=", 1)[1].split(",")
    assert set(BASE_DISABLED_FEATURES) <= set(disabled) and "WebUIOmniboxPopup" in disabled
    assert "--window-size=1280,900" in chrome_args(()) and "--window-size=1280,900" not in args
    assert not [a for a in chrome_args(()) if a.startswith("--enable-features=")]
    assert blocked_urls(()) == () and blocked_urls(("block-media",))
    assert not [p for p in blocked_urls(("block-media",)) if p.endswith((".png", ".png?*"))]  # the simulator's QR


def test_unknown_option_is_refused_naming_the_known_ones() -> None:
    assert Settings.from_env({"WAQ_CHROME_MEMORY_OPTIONS": ""}).chrome_memory_options == ()
    assert Settings.from_env({"WAQ_CHROME_MEMORY_OPTIONS": " block-media , small-window"}).chrome_memory_options == (
        "block-media", "small-window")
    with pytest.raises(ConfigError, match="WAQ_CHROME_MEMORY_OPTIONS.*no-such-option.*renderer-limit"):
        Settings.from_env({"WAQ_CHROME_MEMORY_OPTIONS": "block-media,no-such-option"})


def test_all_options_take_effect_and_the_sender_keeps_what_it_reads(sim: Sim, tmp_path: Path) -> None:
    sim.post("/__sim__/reset")
    sender = SeleniumSender("lean", make_settings(tmp_path, sim, WAQ_CHROME_MEMORY_OPTIONS=",".join(ALL)))
    try:
        assert sender.connect() is SessionState.QR
        assert _qr_dark_pixels(sender) > 1000  # the code is drawn: blocking spares the QR
        png = sender.qr_png()
        assert png and png.startswith(b"\x89PNG")
        log_in(sender, sim)
        kinds = _kinds(sender)
        assert "gpu-process" not in kinds  # in-process-gpu
        assert "utility:network.mojom.NetworkService" not in kinds  # network-in-process
        assert "top-chrome-webui" not in kinds  # no-omnibox-webui
        assert kinds.count("renderer") == 1  # renderer-limit, no spare renderer without site isolation
        assert sender.chrome.driver.execute_script("return [innerWidth, innerHeight]")[0] <= 1024  # small-window

        text = "Order 42 shipped 📦\nTrack it at https://example.com/t/42"
        receipt = sender.send(FRIEND, text, ref="lean-1")
        assert receipt.status in ("sent", "delivered", "read")  # the ticks were read
        assert sent_texts(sim, FRIEND) == [text]
        assert sender.receipt_status(FRIEND, receipt.wa_id) in ("sent", "delivered", "read")
        pictures = sender.chrome.driver.execute_script(JS_PICTURES)
        assert len(pictures) >= 2 and set(pictures) == {0}  # avatars and the link preview, none loaded

        sim.number_fault(UNREGISTERED, "unregistered")
        with pytest.raises(errors.InvalidNumber):  # the dialog was seen and dismissed
            sender.send(UNREGISTERED, "hello", ref="lean-bad")
        assert sender.send(FRIEND, "after the dialog", ref="lean-2").wa_id
        assert sent_texts(sim, FRIEND) == [text, "after the dialog"]
    finally:
        sender.close()


def test_without_options_the_pictures_load(sim: Sim, tmp_path: Path) -> None:
    """The contrast that makes the blocking above a finding: the simulator's pictures do load by default."""
    sim.post("/__sim__/reset")
    sender = SeleniumSender("full", make_settings(tmp_path, sim, WAQ_CHROME_MEMORY_OPTIONS=""))
    try:
        log_in(sender, sim)
        sender.send(FRIEND, "see https://example.com/x", ref="full-1")
        deadline = time.monotonic() + 10
        while 0 in (pictures := sender.chrome.driver.execute_script(JS_PICTURES)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(pictures) >= 2 and 0 not in pictures
    finally:
        sender.close()
