"""The simulator's account faults `banned` and `restricted` (issue 16.2) through the Flask test client: the ban page,
the restriction banner with its end time, sends refused and recorded nowhere, and the restriction lifting itself at
its end. The page in a real Chromium: tests/browser/test_ban_detector.py."""

from __future__ import annotations

import json
import re

import pytest
from flask.testing import FlaskClient

from tests.helpers.constants import SIM_ACCOUNT as ACCOUNT
from tests.helpers.constants import SIM_DEST as DEST
from wa_queue.simulator import create_app
from wa_queue.simulator.state import BAN_TEXT

T0 = 1_800_000_000.0  # 2027-01-15 08:00 UTC


class FakeClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def client(clock: FakeClock) -> FlaskClient:
    app = create_app(config={"ack_delay_s": 0})
    app.extensions["wa_sim"].clock = clock
    client = app.test_client()
    client.get("/")
    assert client.post(f"/__sim__/sessions/{ACCOUNT}/scan").status_code == 200
    return client


def boot(html: str) -> dict:
    return json.loads(re.search(r"window\.SIM = (.*?);</script>", html).group(1))


def send(client: FlaskClient, n: int = 1):  # noqa: ANN201
    return client.post("/__sim__/api/send", json={"id": f"true_{DEST}@c.us_3EB0{n:016X}", "to": DEST, "text": "hi"})


def test_banned_shows_the_ban_page_refuses_sends_and_lasts_until_cleared(client: FlaskClient,
                                                                          clock: FakeClock) -> None:
    assert send(client).json["ack"]
    assert client.post("/__sim__/faults", json={"session": ACCOUNT, "fault": "banned"}).json["ok"]
    page = boot(client.get(f"/send?phone={DEST}&text=hi").get_data(as_text=True))
    assert page["screen"] == "banned" and page["notice"] == BAN_TEXT
    assert client.get("/__sim__/api/state").json["notice"] == BAN_TEXT  # an open page learns it at its next poll
    refused = send(client, 2)
    assert refused.status_code == 403 and refused.json == {"ack": False, "banned": True}
    assert len(client.get("/__sim__/sent").json) == 1
    clock.now += 30 * 86400
    assert client.get("/__sim__/faults").json["sessions"] == {ACCOUNT: {"fault": "banned"}}
    client.post("/__sim__/faults", json={"session": ACCOUNT, "fault": None})
    assert boot(client.get("/").get_data(as_text=True))["screen"] == "app" and send(client, 3).json["ack"]


def test_restricted_shows_its_end_time_in_a_banner_and_lifts_itself_at_the_end(client: FlaskClient,
                                                                               clock: FakeClock) -> None:
    until = T0 + 2 * 3600
    reply = client.post("/__sim__/faults", json={"session": ACCOUNT, "fault": "restricted", "until": until}).json
    assert reply["faults"]["sessions"] == {ACCOUNT: {"fault": "restricted", "until": until}}
    page = boot(client.get(f"/send?phone={DEST}&text=hi").get_data(as_text=True))
    assert page["screen"] == "app"  # the app still shows, under a banner
    assert page["notice"] == ("Your account is restricted until 15 Jan 2027, 10:00 UTC. "
                              "You can't send messages right now.")
    assert send(client).status_code == 403 and client.get("/__sim__/sent").json == []
    clock.now = until - 1
    assert client.get("/__sim__/api/state").json["fault"] == "restricted"
    clock.now = until
    state = client.get("/__sim__/api/state").json
    assert state["fault"] is None and state["notice"] is None
    assert client.get("/__sim__/faults").json["sessions"] == {}
    assert send(client, 2).json["ack"]


def test_restricted_lasts_a_day_by_default_and_until_is_checked(client: FlaskClient) -> None:
    reply = client.post("/__sim__/faults", json={"session": ACCOUNT, "fault": "restricted"}).json
    assert reply["faults"]["sessions"][ACCOUNT]["until"] == T0 + 86400
    for body in ({"fault": "banned", "until": T0}, {"fault": "restricted", "until": "tomorrow"},
                 {"fault": "restricted", "until": True}):
        bad = client.post("/__sim__/faults", json={"session": ACCOUNT, **body})
        assert bad.status_code == 400 and "until" in bad.json["error"]
    client.post("/__sim__/reset", json={"keep_links": True})
    assert client.get("/__sim__/faults").json["sessions"] == {}
