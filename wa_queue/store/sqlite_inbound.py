"""The SQLite store's replies: the inbound table, one row per (session, chat, wa_id). A part of SQLiteStore
(wa_queue/store/sqlite.py), which gives it `db`."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime

from wa_queue.models import ChatNote, InboundMessage, OptChange
from wa_queue.names import CHAT_NOTES, INBOUND, MESSAGES
from wa_queue.store.sqlite_connection import SQLiteConnections
from wa_queue.store.sqlite_schema import from_us, to_us

_COLUMNS = "id, session, chat, wa_id, text, phone, received_at, shown_at, reply_to, opt"


def _inbound(row: tuple) -> InboundMessage:
    return InboundMessage(id=row[0], session=row[1], chat=row[2], wa_id=row[3], text=row[4], phone=row[5],
                          received_at=from_us(row[6]), shown_at=from_us(row[7]) if row[7] is not None else None,
                          reply_to=row[8], opt=OptChange(row[9]) if row[9] else None)  # type: ignore[arg-type]


class SQLiteInbound:
    db: SQLiteConnections

    def record_inbound(self, inbound: InboundMessage) -> bool:
        # Durable before the reader moves on: a reply it read must not be lost, and the unique key makes a second
        # read of the same row (a restart, a re-read chat) a no-op.
        with self.db.transaction_synced_after(one_statement=True) as conn:
            return conn.execute(
                f"INSERT OR IGNORE INTO {INBOUND} ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (inbound.id, inbound.session, inbound.chat, inbound.wa_id, inbound.text, inbound.phone,
                 to_us(inbound.received_at), to_us(inbound.shown_at) if inbound.shown_at else None,
                 inbound.reply_to, inbound.opt.value if inbound.opt else None)).rowcount == 1

    def note_chat(self, note: ChatNote) -> None:
        with self.db.transaction_synced_after(one_statement=True) as conn:
            conn.execute(f"INSERT INTO {CHAT_NOTES} (session, key, chat, phone, unread, at, done) "
                         "VALUES (?, ?, ?, ?, ?, ?, 0) ON CONFLICT (session, key) DO UPDATE SET chat = excluded.chat, "
                         "phone = excluded.phone, unread = excluded.unread, at = excluded.at, done = 0",
                         (note.session, note.key, note.chat, note.phone, note.unread, to_us(note.at)))

    def chat_notes(self, session: str) -> list[ChatNote]:
        rows = self.db.get().execute(f"SELECT chat, phone, unread, at, seen FROM {CHAT_NOTES} WHERE session = ? "
                                     "AND done = 0 ORDER BY at, rowid", (session,)).fetchall()
        return [ChatNote(session=session, chat=r[0], phone=r[1], unread=r[2], at=from_us(r[3]),  # type: ignore
                         seen=r[4]) for r in rows]

    def settle_chat_notes(self, session: str, seen: Mapping[str, str], done: Collection[str]) -> None:
        if not seen and not done:
            return
        # Not fsynced: a settle lost in a power cut leaves notes that are only read again (their replies once), from
        # an older `seen` (more rows, never fewer).
        with self.db.transaction_synced_after(durable=False) as conn:
            conn.executemany(f"UPDATE {CHAT_NOTES} SET seen = ? WHERE session = ? AND key = ?",
                             [(row, session, key) for key, row in seen.items()])
            conn.executemany(f"UPDATE {CHAT_NOTES} SET done = 1 WHERE session = ? AND key = ?",
                             [(session, key) for key in done])

    def inbound_recorded(self, session: str, chat: str, wa_id: str) -> bool:
        return self.db.get().execute(f"SELECT 1 FROM {INBOUND} WHERE session = ? AND chat = ? AND wa_id = ?",
                                     (session, chat, wa_id)).fetchone() is not None

    def list_inbound(self, *, phone: str | None = None, session: str | None = None, since: datetime | None = None,
                     until: datetime | None = None, limit: int = 100, offset: int = 0
                     ) -> tuple[list[InboundMessage], int]:
        where, params = ["1 = 1"], []  # type: list[str], list[Any]
        for clause, value in (("phone = ?", phone), ("session = ?", session),
                              ("received_at >= ?", to_us(since) if since else None),
                              ("received_at < ?", to_us(until) if until else None)):
            if value is not None:
                where.append(clause)
                params.append(value)
        sql = " AND ".join(where)
        conn = self.db.get()
        rows = conn.execute(f"SELECT {_COLUMNS} FROM {INBOUND} WHERE {sql} ORDER BY received_at DESC, id DESC "
                            "LIMIT ? OFFSET ?", (*params, limit, offset)).fetchall()
        total = conn.execute(f"SELECT COUNT(*) FROM {INBOUND} WHERE {sql}", params).fetchone()[0]
        return [_inbound(r) for r in rows], total

    def last_sent_to(self, phone: str) -> str | None:
        row = self.db.get().execute(f"SELECT id FROM {MESSAGES} INDEXED BY ix_msg_phone_sent WHERE phone = ? AND "
                                    "sent_at IS NOT NULL ORDER BY sent_at DESC LIMIT 1", (phone,)).fetchone()
        return row[0] if row else None
