"""Chrome's command line for a session, and the memory options (WAQ_CHROME_MEMORY_OPTIONS) that trim it.

Each memory option is named so that bench/browser.py can measure it on its own against the baseline; the default
list is what paid there (BENCHMARKS.md, "Browser memory, option by option"). Chrome honours only the last
--enable-features and the last --disable-features switch, so the features of every option are merged into one of each.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from typing import Any

BASE_ARGS = (
    "--disable-dev-shm-usage", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-quic", "--no-default-browser-check",
    "--disable-extensions", "--mute-audio", "--lang=en-US", "--password-store=basic", "--hide-crash-restore-bubble",
)
BASE_DISABLED_FEATURES = ("Translate", "MediaRouter", "OptimizationHints")
WINDOW_SIZE = (1280, 900)
SMALL_WINDOW_SIZE = (1024, 700)  # a desktop width: the simulator keeps its two panes (not yet tried on the real page)

# What the sender never reads and the real page loads: profile pictures (pps.whatsapp.net), photos, stickers, media
# and web fonts. Not PNG: emoji and the simulator's QR are PNG, and the QR is what a person scans. Patterns are
# Network.setBlockedURLs's (`*` is any run of characters).
BLOCKED_URLS = (
    "*://pps.whatsapp.net/*", "*://mmg.whatsapp.net/*", "*://media*.whatsapp.net/*",
    "*.jpg", "*.jpg?*", "*.jpeg", "*.jpeg?*", "*.webp", "*.webp?*", "*.gif", "*.gif?*",
    "*.mp4", "*.mp4?*", "*.webm", "*.webm?*", "*.ogg", "*.ogg?*", "*.opus", "*.opus?*", "*.mp3", "*.mp3?*",
    "*.woff", "*.woff?*", "*.woff2", "*.woff2?*", "*.ttf", "*.ttf?*", "*.otf", "*.otf?*",
)


@dataclasses.dataclass(frozen=True)
class MemoryOption:
    """One way to trim a session's Chrome: switches, features to turn on or off, a window size, URL blocking."""

    name: str
    what: str
    args: tuple[str, ...] = ()
    enable: tuple[str, ...] = ()
    disable: tuple[str, ...] = ()
    window: tuple[int, int] | None = None
    blocks: bool = False


MEMORY_OPTIONS: dict[str, MemoryOption] = {o.name: o for o in (
    MemoryOption("renderer-limit", "at most one renderer process", args=("--renderer-process-limit=1",)),
    MemoryOption("in-process-gpu", "the GPU thread in the browser process, no GPU process", args=("--in-process-gpu",)),
    MemoryOption("network-in-process", "the network service in the browser process, one utility process fewer",
                 enable=("NetworkServiceInProcess2",)),
    MemoryOption("no-site-isolation", "no process per site: the page is one origin",
                 args=("--disable-site-isolation-trials",), disable=("IsolateOrigins", "site-per-process")),
    MemoryOption("no-omnibox-webui", "no hidden renderer for the address bar's popup (a headless window shows none)",
                 disable=("WebUIOmniboxPopup", "WebUIOmniboxAimPopup", "OmniboxAimPopup")),
    MemoryOption("no-bfcache", "no back/forward cache: a page left for the next /send?phone= is not kept alive",
                 disable=("BackForwardCache",)),
    MemoryOption("small-v8-heap", "V8's old space capped at 128 MiB and a 1 MiB young generation",
                 args=("--js-flags=--max-old-space-size=128 --max-semi-space-size=1",)),
    MemoryOption("block-media", "pictures, media and web fonts the sender never reads are not loaded (DevTools)",
                 blocks=True),
    MemoryOption("small-window", f"a {SMALL_WINDOW_SIZE[0]}x{SMALL_WINDOW_SIZE[1]} window instead of "
                 f"{WINDOW_SIZE[0]}x{WINDOW_SIZE[1]}", window=SMALL_WINDOW_SIZE),
)}


def unknown_options(names: tuple[str, ...]) -> list[str]:
    """The names that are not memory options (for the settings' check)."""
    return [n for n in names if n not in MEMORY_OPTIONS]


def chrome_args(options: tuple[str, ...]) -> list[str]:
    """Chrome's switches for these memory options (names from MEMORY_OPTIONS), before the per-session ones."""
    chosen = [MEMORY_OPTIONS[n] for n in options]
    args = list(BASE_ARGS)
    disable = list(BASE_DISABLED_FEATURES)
    enable: list[str] = []
    window = WINDOW_SIZE
    for option in chosen:
        args += option.args
        disable += option.disable
        enable += option.enable
        window = option.window or window
    args.append(f"--disable-features={','.join(dict.fromkeys(disable))}")
    if enable:
        args.append(f"--enable-features={','.join(dict.fromkeys(enable))}")
    args.append(f"--window-size={window[0]},{window[1]}")
    return args


def blocked_urls(options: tuple[str, ...]) -> tuple[str, ...]:
    """The URL patterns to block through DevTools for these memory options (empty: block nothing)."""
    return BLOCKED_URLS if any(MEMORY_OPTIONS[n].blocks for n in options) else ()


def apply_blocking(driver: Any, options: tuple[str, ...]) -> None:
    """Block the options' URL patterns in the page's target; they hold for every later navigation of the tab."""
    patterns = blocked_urls(options)
    if patterns:
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": list(patterns)})


@contextlib.contextmanager
def uploads_allowed(driver: Any, options: tuple[str, ...]) -> Iterator[None]:
    """No URL blocked while a media message uploads: the block's media hosts and file patterns would stop the upload
    itself (Network.setBlockedURLs cannot tell a POST of the file from a GET of a photo). Blocking comes back
    after, best effort (a dead browser gets it again when restarted)."""
    patterns = blocked_urls(options)
    if patterns:
        driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": []})
    try:
        yield
    finally:
        if patterns:
            with contextlib.suppress(Exception):
                driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": list(patterns)})
