"""When a sender may let a chat note go, and from which row a re-read counts: the one rule both senders (the page
and the fake) keep.

Every chat is noted (ChatNotes.opening) before it opens, because the page counts what an open chat shows as read: a
reply there has no badge to be found by again. A note stays pending until both hold:
- a read returned that chat's replies and the caller recorded them (MessageSender.replies_recorded); and
- the chat has left the front: while it is open, a reply that comes has no badge either.
So a note goes at the first acknowledgement after its chat left the front, not at the one of its own read. A chat
noted again starts over: what its new opening shows has not been read. A read the caller could not record
acknowledges nothing (its next read has `again` and reads every pending note again), and a new page reads every
pending note again: a chat that could not be read then stays pending until a read gets through.

At each acknowledgement the newest row each chat read showed is kept on its note (`seen`): a re-read counts the
incoming rows after it. "After our last outgoing row" is not enough there: a page that sent again to the chat and
died before reading it leaves our newer row after a reply nobody read.
"""

from __future__ import annotations

from wa_queue.models import chat_key
from wa_queue.transport.base import ChatNotes


class NoteBook:
    """One sender's notes: where they are kept (`notes`, None when replies are not read), the chat in front (`front`,
    a ChatNote key) and what each noted chat's reads saw."""

    def __init__(self) -> None:
        self.notes: ChatNotes | None = None
        self.front: str | None = None  # the key of the chat the page has open, None when it has none or cannot tell
        self.fresh = True  # the pending notes not all read again since this document loaded: the next read does
        self._read: dict[str, str | None] = {}  # chats the read under way read (not yet recorded): their newest row
        self._recorded: dict[str, str | None] = {}  # recorded, still pending: they go once they leave the front
        self._written: dict[str, str] = {}  # the `seen` last stored per chat (not written again unchanged)

    def new_page(self) -> None:
        """A new document: nothing open, and nothing it read (the pending notes are read again)."""
        self.front = None
        self.fresh = True
        self._read, self._recorded = {}, {}

    def opening(self, *, chat: str | None = None, phone: str | None = None, unread: int = 0) -> str:
        """Note a chat before it opens (raises when the note is not written); returns its key."""
        key = chat_key(chat, phone)
        self._read.pop(key, None)
        self._recorded.pop(key, None)
        if self.notes is not None:
            self.notes.opening(chat=chat, phone=phone, unread=unread)
        return key

    def begin_read(self) -> None:
        """A read starts: what an earlier read that was never acknowledged read does not count."""
        self._read = {}

    def read(self, key: str | None, newest: str | None = None) -> None:
        """The read under way returned every reply of that chat (one it could read for sure), whose newest row (any
        direction) is `newest` (None: unknown)."""
        if key is not None:
            self._read[key] = newest

    def recorded(self) -> None:
        """The caller recorded the last read's replies: keep what each chat read showed, and let go the notes of
        chats read and no longer in front."""
        seen = {k: row for k, row in self._read.items() if row is not None and self._written.get(k) != row}
        recorded = {**self._recorded, **self._read}
        done = set(recorded) - {self.front}
        if (seen or done) and self.notes is not None:
            self.notes.settle(seen, done)
        self._written.update(seen)
        self._recorded = {k: row for k, row in recorded.items() if k not in done}
        self._read = {}
