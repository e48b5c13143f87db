"""/metrics shows each session's status (issue 16.2): waq_session_status{session, status} is 1 for the status the
record is in and 0 for every other, so a banned session can be alerted on. Real redis-server and SQLite store."""

from __future__ import annotations

from tests.dashboard.test_metrics import client, scrape  # noqa: F401 - the fixture is used by name
from wa_queue.hub import default_hub
from wa_queue.models import SessionStatus, utcnow


def test_a_banned_session_reads_1_under_banned_and_0_elsewhere(client) -> None:  # noqa: ANN001, F811
    default_hub().store.update_session("primary", status=SessionStatus.BANNED.value, heartbeat_at=utcnow(),
                                       last_error="Your phone number is banned from using WhatsApp.")
    default_hub().store.update_session("secondary", status=SessionStatus.CONNECTED.value, heartbeat_at=utcnow())
    samples = scrape(client)

    def status(session: str) -> dict[str, float]:
        return {dict(labels)["status"]: value for (name, labels), value in samples.items()
                if name == "waq_session_status" and dict(labels)["session"] == session}

    assert status("primary") == {s.value: float(s is SessionStatus.BANNED) for s in SessionStatus}
    assert status("secondary") == {s.value: float(s is SessionStatus.CONNECTED) for s in SessionStatus}
    assert samples[("waq_session_connected", (("session", "primary"),))] == 0
