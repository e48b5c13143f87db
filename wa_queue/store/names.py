"""One owner for the store's table and collection names (SQLite tables and MongoDB collections alike)."""

from __future__ import annotations

MESSAGES = "messages"
ARCHIVE = "messages_archive"
SESSIONS = "sessions"
NUMBER_CHECKS = "number_checks"
STATUS_COUNTS = "status_counts"  # SQLite only: kept by triggers in the same transaction as every status change
