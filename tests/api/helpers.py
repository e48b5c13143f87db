"""What the API endpoint tests share: a second producer's key, a JSON POST, the one error shape, a failed message,
connected sessions."""

from __future__ import annotations

import json

from tests.helpers.constants import BASE, PHONE, PRODUCER
from wa_queue.hub import default_hub
from wa_queue.models import NewMessage, utcnow

# the app fixture's second producer (tests/api/conftest.py)
OTHER_PRODUCER_KEY = "other-producer-0123456789ab"


def post(client, path: str, body, headers=PRODUCER):  # noqa: ANN001, ANN201
    return client.post(BASE + path, data=json.dumps(body), headers={**headers, "Content-Type": "application/json"})


def assert_error(response, status: int) -> dict:  # noqa: ANN001
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error", "details"}
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["details"], dict)
    return body


def failed_message(phone: str = PHONE, session: str = "primary", error_class: str = "InvalidNumber",
                   callback_url: str | None = None) -> str:
    store = default_hub().store
    message, _ = store.insert(NewMessage(phone=phone, text="boom", callback_url=callback_url), utcnow())
    store.claim(message.id, owner="t", session=session, now=utcnow(), lease_s=60)
    store.record_failed(message.id, owner="t", now=utcnow(), error_class=error_class, error_text="not on WA")
    return message.id


def connect(*sessions: str) -> None:
    for name in sessions:
        default_hub().store.update_session(name, status="connected", heartbeat_at=utcnow(), number="+4915112345678")
