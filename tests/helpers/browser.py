"""The simulator and a logged-in Selenium sender, for the browser tests (one profile or all of them)."""

from __future__ import annotations

import threading
from pathlib import Path

import requests
from werkzeug.serving import make_server

from wa_queue.settings import Settings
from wa_queue.simulator import pairing
from wa_queue.simulator.app import create_app
from wa_queue.simulator.profiles import DEFAULT_MARKUP
from wa_queue.transport.selenium import SeleniumSender

ACCOUNT = "15550000001"  # the simulated phone the shared browser is linked to (the control API takes digits)
OTHER_ACCOUNT = "15550000002"
FRIEND = "+15551234567"  # numbers reach the sender as E.164
UNREGISTERED = "+15557654321"


class Sim:
    """The simulator on a free port, in a thread, with its control API."""

    def __init__(self, markup: str = DEFAULT_MARKUP, strict: bool = True, config: dict | None = None) -> None:
        self.markup = markup
        self.server = make_server("127.0.0.1", 0, create_app(markup=markup, strict=strict, config=config),
                                  threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def post(self, path: str, body: dict | None = None) -> dict:
        response = requests.post(self.url + path, json=body or {}, timeout=5)
        response.raise_for_status()
        return response.json() if response.content else {}

    def sent(self) -> list[dict]:
        return requests.get(self.url + "/__sim__/sent", timeout=5).json()

    def scan(self, ref: str, account: str = ACCOUNT) -> None:
        pairing.scan(self.url, account, ref)

    def number_fault(self, phone: str, fault: str, count: int | None = None) -> None:
        self.post("/__sim__/faults", {"number": phone.lstrip("+"), "fault": fault, "count": count})

    def session_fault(self, fault: str, account: str = ACCOUNT) -> None:
        self.post("/__sim__/faults", {"session": account, "fault": fault})


def make_settings(data_dir: Path, sim: Sim, **extra: str) -> Settings:
    # The simulator renders a chat's history in one step (history_delay_ms after the compose box), so rows that
    # hold still for half a second are settled there; the real page gets the 1.5 s default.
    return Settings.from_env({"WAQ_DATA_DIR": str(data_dir), "WAQ_WHATSAPP_URL": sim.url, "WAQ_SEND_TIMEOUT_S": "6",
                              "WAQ_CHAT_SETTLE_S": "0.5", **extra})


def log_in(sender: SeleniumSender, sim: Sim, account: str = ACCOUNT) -> None:
    """Scan the QR the page shows (its data-ref) through the control API, as the phone would."""
    pairing.log_in(sender, sim.url, account, timeout_s=20)


def sent_texts(sim: Sim, phone: str) -> list[str]:
    return [m["text"] for m in sim.sent() if m["to"] == phone.lstrip("+")]
