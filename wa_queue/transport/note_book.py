"""When a sender may forget a chat note: the one rule both senders (the page and the fake) keep.

Every chat is noted (ChatNotes.opening) before it opens, because the page counts what an open chat shows as read: a
reply there has no badge to be found by again. A note may go only once both hold:
- a read returned that chat's replies and the caller recorded them (MessageSender.replies_recorded); and
- the chat has left the front: while it is open, a reply that comes has no badge either.
So a note is forgotten at the first acknowledgement after its chat left the front, not at the one of its own read.
A chat noted again starts over: what its new opening shows has not been read. A read the caller could not record
acknowledges nothing (its next read has `again` and reads every note again), and a new page reads every note again:
a chat that could not be read then keeps its note until a read gets through.
"""

from __future__ import annotations

from wa_queue.models import chat_key
from wa_queue.transport.base import ChatNotes


class NoteBook:
    """One sender's notes: where they are kept (`notes`, None when replies are not read), the chat in front (`front`,
    a ChatNote key) and which noted chats were read."""

    def __init__(self) -> None:
        self.notes: ChatNotes | None = None
        self.front: str | None = None  # the key of the chat the page has open, None when it has none or cannot tell
        self._read: set[str] = set()  # chats the read under way has read (not yet recorded)
        self._recorded: set[str] = set()  # chats whose replies are recorded: forgotten once they leave the front

    def new_page(self) -> None:
        """A new document: nothing open, and nothing it read (the notes of the one before are read again)."""
        self.front = None
        self._read, self._recorded = set(), set()

    def opening(self, *, chat: str | None = None, phone: str | None = None, unread: int = 0) -> str:
        """Note a chat before it opens (raises when the note is not written); returns its key."""
        key = chat_key(chat, phone)
        self._read.discard(key)
        self._recorded.discard(key)
        if self.notes is not None:
            self.notes.opening(chat=chat, phone=phone, unread=unread)
        return key

    def begin_read(self) -> None:
        """A read starts: what an earlier read that was never acknowledged read does not count."""
        self._read = set()

    def read(self, key: str | None) -> None:
        """The read under way returned every reply of that chat (one it could read for sure)."""
        if key is not None:
            self._read.add(key)

    def recorded(self) -> None:
        """The caller recorded the last read's replies: forget the notes of chats read and no longer in front."""
        self._recorded |= self._read
        self._read = set()
        gone = self._recorded - {self.front}
        if gone and self.notes is not None:
            self.notes.forget(gone)
        self._recorded -= gone
