"""The phone's side of linking a browser to the simulator: scan the QR a sender shows, through the simulator's control
API, until the sender is logged in. The one QR login of the browser tests and bench/browser.py."""

from __future__ import annotations

import time
from typing import Protocol

import requests

from wa_queue.transport.base import SessionState


class NeverLoggedIn(TimeoutError):
    """The sender did not reach CONNECTED before the deadline."""


class ShowsQr(Protocol):
    def connect(self) -> SessionState: ...

    def state(self) -> SessionState: ...

    def qr_ref(self) -> str | None: ...


def scan(sim_url: str, account: str, ref: str) -> None:
    """What the phone does when its camera reads the code: link the device showing ref to account (digits)."""
    requests.post(f"{sim_url}/__sim__/sessions/{account}/scan", json={"ref": ref}, timeout=5).raise_for_status()


def log_in(sender: ShowsQr, sim_url: str, account: str, *, timeout_s: float = 30.0, interval_s: float = 0.1) -> None:
    """Connect the sender and scan each new code its page shows (data-ref) until it is logged in."""
    state = sender.connect()
    deadline = time.monotonic() + timeout_s
    scanned = None
    while state is not SessionState.CONNECTED:
        if time.monotonic() > deadline:
            raise NeverLoggedIn(f"never logged in within {timeout_s:g} s: {state}")
        ref = sender.qr_ref()
        if ref and ref != scanned:  # the page shows the old code until its next poll reloads it
            scan(sim_url, account, ref)
            scanned = ref
        time.sleep(interval_s)
        state = sender.state()
