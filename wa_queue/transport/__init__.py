"""Senders: the interface in base.py; fake.py for tests and demos; selenium.py drives WhatsApp Web (the browser in
chrome.py, the page's steps in whatsapp_page.py)."""

from __future__ import annotations

from wa_queue.settings import Settings
from wa_queue.transport.base import MessageSender, Receipt, SessionState


def make_sender(session: str, settings: Settings) -> MessageSender:
    if settings.transport == "fake":
        from wa_queue.transport.fake import FakeSender

        return FakeSender(session, settings.fake_log, settings.fake_control)
    from wa_queue.transport.selenium import SeleniumSender

    return SeleniumSender(session, settings)


__all__ = ["MessageSender", "Receipt", "SessionState", "make_sender"]
