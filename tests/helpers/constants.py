"""Values several test files share: the repository's root, the REST API's prefix, API keys, phone numbers, the
simulator's accounts, and the fixed instants of the store tests. A file whose value differs on purpose keeps its own."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"  # screenshots and documents a run leaves for a person to look at

BASE = "/api/whatsapp"
ADMIN_KEY = "admin-key-0123456789abcdef"
PRODUCER_KEY = "producer-key-0123456789abcdef"
ADMIN = {"X-API-Key": ADMIN_KEY}
PRODUCER = {"X-API-Key": PRODUCER_KEY}
# Two producers and an admin by name, for the tests of what keeps producers apart (owners, rate limits)
SHOP_KEY = "shop-key-0123456789abcdef"
CRM_KEY = "crm-key-0123456789abcdefgh"
OPS_KEY = "ops-key-0123456789abcdefgh"
SHOP, CRM, OPS = ({"X-API-Key": key} for key in (SHOP_KEY, CRM_KEY, OPS_KEY))
MESSAGE = {"phone": "+14155550123", "text": "hello"}  # the smallest valid enqueue body

PHONE = "+14155550123"  # San Francisco: a valid number, in America/Los_Angeles
SESSIONS = ("primary", "secondary")  # waq_env's WAQ_SESSIONS

SIM_ACCOUNT = "15551230000"  # the simulator's own tests: the linked phone (the control API takes digits)
SIM_DEST = "4915112345678"  # ... and the chat they open

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)  # the store tests' fixed instant
# count_by_status() of an empty store: every status, each 0 (a test writes {**NO_MESSAGES, "pending": 3}).
NO_MESSAGES = {status: 0 for status in ("pending", "processing", "sent", "failed", "expired", "cancelled", "paused")}
UNREACHABLE = "cannot reach web.whatsapp.com: check the network or WAQ_WHATSAPP_URL"
