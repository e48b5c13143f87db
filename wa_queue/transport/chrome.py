"""One session's browser process: Chrome under chromedriver, on the session's persistent profile.

`Chrome` starts it (switches, sandbox, a person-like user agent, the profile folder), recycles it on the same profile
(after `chrome_recycle_sends` sends, `chrome_recycle_hours` hours, or over `chrome_max_pss_mb`), and runs every
WebDriver command through `call`, which kills the whole process tree when a command fails or hangs, and anything else
still holding the profile. What the page shows is whatsapp_page.py's; the sender (selenium.py) composes the two.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wa_queue import procs
from wa_queue.private import private_dir
from wa_queue.settings import Settings
from wa_queue.transport.chrome_options import apply_blocking, chrome_args
from wa_queue.transport.sandbox import SandboxChoice, sandbox_choice, unusable_reason

log = logging.getLogger(__name__)

# WAQ_CHROME_MAX_PSS_MB is checked at most this often (sends, seconds): Chrome grows slowly, and one reading walks /proc
# and every Chrome process's smaps.
PSS_CHECK_SENDS = 10
PSS_CHECK_S = 60.0
# The major version the user agent names when `chrome --version` says nothing: any current desktop Chrome's will do.
FALLBACK_MAJOR = "131"


class BrowserDied(Exception):
    """The driver or Chrome stopped answering; the tree has been killed."""


@functools.lru_cache(maxsize=4)
def desktop_user_agent(binary: str) -> str:
    """What a person's desktop Chrome of the installed version says: WhatsApp shows an "update your browser" page to
    HeadlessChrome (the real page, and the strict simulator)."""
    major = FALLBACK_MAJOR
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=20).stdout
        found = re.search(r"(\d+)\.\d+\.\d+\.\d+", out)
        major = found.group(1) if found else major
    except (OSError, subprocess.SubprocessError) as exc:
        log.info("no version from %s --version (%s); the user agent says Chrome/%s", binary, exc, major)
    return (f"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{major}.0.0.0 "
            "Safari/537.36")


def first_line(exc: Exception) -> str:
    """The first line of an error's text (WebDriver's carry a stack trace after it), else its class's name."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def page_level(exc: Exception) -> bool:
    """WebDriver errors about the page, not the browser (the browser is fine; the caller decides)."""
    from selenium.common.exceptions import (
        ElementClickInterceptedException,
        ElementNotInteractableException,
        InvalidSelectorException,
        JavascriptException,
        NoSuchElementException,
        StaleElementReferenceException,
        TimeoutException,
    )

    if isinstance(exc, ElementClickInterceptedException | ElementNotInteractableException | TimeoutException |
                  InvalidSelectorException | JavascriptException | NoSuchElementException |
                  StaleElementReferenceException):
        return True
    # A script that ran while a navigation replaced the document.
    return any(mark in str(exc) for mark in ("context was destroyed", "Cannot find context", "document unloaded"))


class Chrome:
    """The browser of one session. Not thread-safe: the sender holds its lock around every use."""

    def __init__(self, session: str, settings: Settings) -> None:
        self.session = session
        self.settings = settings
        self.profile_dir = Path(settings.data_dir) / "profiles" / session
        self.timeout = float(settings.send_timeout_s)  # WebDriver's page-load and script limits
        # Any one WebDriver command taking longer is a hung browser: the HTTP client gives up, the tree is killed.
        self.command_timeout_s = self.timeout + 30
        # Run with the new driver at the end of each start (the page's own checks); what it raises, start raises.
        self.on_start: Callable[[Any], None] | None = None
        self.driver: Any = None
        self.pid: int | None = None  # chromedriver's
        self.started_at = 0.0  # monotonic
        self.sends_since_start = 0  # counted by the sender, for the recycling
        self._pss_checked = (0, 0.0)  # (sends since start, monotonic time) of the last WAQ_CHROME_MAX_PSS_MB reading
        self.crashed = False  # died under a command: the sender starts it again at its next use
        self.sandbox: SandboxChoice | None = None  # decided at the first start (WAQ_CHROME_SANDBOX)
        self.restarts = 0  # starts, the first included

    # ---- processes -----------------------------------------------------------------------------------------------
    def browser_pids(self) -> list[int]:
        """chromedriver and every Chrome process of this session: its descendants, its process group (orphans
        included) and anything else holding the profile."""
        found: list[int] = []
        if self.pid:
            found = [self.pid] if procs.alive(self.pid) else []
            found += procs.descendants(self.pid) + procs.group_members(self.pid)
        found += procs.pids_with_arg(f"--user-data-dir={self.profile_dir}")
        return list(dict.fromkeys(found))  # each once, in order

    def chrome_pid(self) -> int | None:
        """The main browser process (chromedriver's Chrome child), for tests that crash it."""
        if not self.pid:
            return None
        parents = procs.parent_map()
        return next((p for p, pp in parents.items() if pp == self.pid and procs.alive(p)), None)

    # ---- lifecycle -----------------------------------------------------------------------------------------------
    def ensure(self, recycle: bool = False) -> None:
        """A running browser: started when there is none, and with `recycle`, restarted when one is due."""
        if self.driver is not None and recycle and self.recycle_due():
            log.info("session %s: recycling Chrome after %d sends", self.session, self.sends_since_start)
            self.stop(graceful=True)
            self.start()
            return
        if self.driver is None:
            self.start()  # no app load here: the caller's /send?phone= boots the app anyway

    def recycle_due(self) -> bool:
        s = self.settings
        if s.chrome_recycle_sends > 0 and self.sends_since_start >= s.chrome_recycle_sends:
            return True
        if s.chrome_recycle_hours > 0 and time.monotonic() - self.started_at >= s.chrome_recycle_hours * 3600:
            return True
        if s.chrome_max_pss_mb <= 0:
            return False
        sends, at = self._pss_checked
        if self.sends_since_start < sends or at < self.started_at:  # Chrome restarted since: count from its start
            sends, at = 0, self.started_at
        now = time.monotonic()
        if self.sends_since_start - sends < PSS_CHECK_SENDS and now - at < PSS_CHECK_S:
            return False
        self._pss_checked = (self.sends_since_start, now)
        pss_mib = procs.pss_kib(self.browser_pids()) / 1024
        if pss_mib <= s.chrome_max_pss_mb:
            return False
        log.info("session %s: Chrome's PSS %.0f MiB is over WAQ_CHROME_MAX_PSS_MB (%d)", self.session, pss_mib,
                 s.chrome_max_pss_mb)
        return True

    def prepare_profile(self) -> Path:
        """The profile folder, created 0700 with the profiles folder (it holds the WhatsApp login), without the
        locks a dead Chrome left."""
        private_dir(self.profile_dir)
        for name in ("SingletonLock", "SingletonSocket", "SingletonCookie"):
            try:
                (self.profile_dir / name).unlink()
            except FileNotFoundError:
                pass
        return self.profile_dir

    def start(self) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        self.kill_profile_holders()  # a crashed worker's Chrome would lock the profile
        self.prepare_profile()
        options = webdriver.ChromeOptions()
        options.binary_location = self.settings.chrome_binary
        if self.sandbox is None:
            self.sandbox = sandbox_choice(self.settings.chrome_sandbox)
            log.log(logging.WARNING if self.sandbox.fallback else logging.INFO, "session %s: %s", self.session,
                    self.sandbox.describe())
        memory = self.settings.chrome_memory_options
        for arg in (*chrome_args(memory), *self.sandbox.args, f"--user-data-dir={self.profile_dir}"):
            options.add_argument(arg)
        if self.settings.headless:
            options.add_argument("--headless=new")
        # Look like a person's Chrome: a desktop agent (flag and DevTools, below) and no automation switches.
        agent = self.settings.chrome_user_agent or desktop_user_agent(self.settings.chrome_binary)
        options.add_argument(f"--user-agent={agent}")
        options.add_argument("--disable-blink-features=AutomationControlled")
        options.add_experimental_option("excludeSwitches", ["enable-automation"])
        options.add_experimental_option("prefs", {"intl.accept_languages": "en-US,en"})
        # An explicit path: Selenium Manager never runs. Its own process group: a Chrome child orphaned by a crash
        # keeps the group, so kill_tree still finds it.
        service = Service(self.settings.chromedriver, popen_kw={"start_new_session": True})
        try:
            driver = webdriver.Chrome(service=service, options=options)
        except Exception as exc:
            if service.process is not None:
                procs.kill_tree(service.process.pid)
            self.kill_profile_holders()
            # chromedriver only says "Chrome instance exited": name the sandbox when it is the likely cause.
            why = unusable_reason(self.sandbox)
            raise BrowserDied(f"Chrome did not start: {why}; {first_line(exc)}" if why
                              else f"Chrome did not start: {exc}") from exc
        self.driver = driver
        self.pid = service.process.pid
        self.started_at = time.monotonic()
        self.sends_since_start = 0
        self.crashed = False
        self.restarts += 1
        driver.command_executor._client_config.timeout = self.command_timeout_s
        driver.set_page_load_timeout(self.timeout)
        driver.set_script_timeout(self.timeout)
        # The flag covers the first request; the override covers workers and anything the flag misses.
        driver.execute_cdp_cmd("Network.setUserAgentOverride", {"userAgent": agent, "acceptLanguage": "en-US,en",
                                                                 "platform": "Linux x86_64"})
        apply_blocking(driver, memory)  # before the first page load
        if self.on_start is not None:
            self.on_start(driver)

    def stop(self, graceful: bool) -> None:
        driver, self.driver = self.driver, None
        if driver is not None and graceful:
            try:
                # A graceful quit lets Chrome flush the profile (the login lives in its IndexedDB).
                driver.command_executor._client_config.timeout = 15
                driver.quit()
            except Exception as exc:  # noqa: BLE001 - a hung or dead driver is killed below
                log.info("session %s: quit failed (%s); killing the tree", self.session, exc)
        if self.pid:
            procs.kill_tree(self.pid)
            self.pid = None
        self.kill_profile_holders()

    def close(self) -> None:
        """Quit and leave nothing behind; the next use starts a browser only when asked (not a crash)."""
        self.crashed = False
        self.stop(graceful=True)

    def kill_profile_holders(self) -> None:
        """Kill whatever still runs on this profile, with the chromedriver that started it: after a worker was
        SIGKILLed its chromedriver and Chrome live on, re-parented to init, in the group the driver leads."""
        pids = procs.pids_with_arg(f"--user-data-dir={self.profile_dir}")
        for group in {procs.pgid_of(p) for p in pids} - {None, os.getpgrp()}:
            if "chromedriver" in procs.cmdline(group):
                pids += [p for p in procs.group_members(group) if p not in pids]
        if pids:
            procs.kill_pids(pids)

    # ---- commands ------------------------------------------------------------------------------------------------
    def call(self, fn: Callable[[Any], Any]) -> Any:
        """One WebDriver command; a browser error or an HTTP time-out kills the whole tree."""
        from selenium.common.exceptions import WebDriverException

        if self.driver is None:
            raise BrowserDied("no browser")
        try:
            return fn(self.driver)
        except Exception as exc:  # noqa: BLE001 - urllib3 time-outs and socket errors included
            if isinstance(exc, WebDriverException) and page_level(exc):
                raise  # the page changed under us; the browser itself is fine
            log.warning("session %s: browser command failed (%s: %s); killing Chrome", self.session,
                        type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
            self.stop(graceful=False)
            self.crashed = True
            raise BrowserDied(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from exc
