"""The MessageSender contract (wa_queue/transport/base.py, whose docstrings are the spec): the scripted fake and the
Selenium sender driving real Chromium on the WhatsApp Web simulator pass the same tests.

Each sender comes with a `World`: the same faults and states said once, scripted through the fake's control file or
the simulator's control API. One logged-in Chromium serves the whole module. What only the real page can show (a
chat of rows in an unknown markup, a row still Pending, the QR login kept across a browser restart, a killed or hung
Chrome) is tested in tests/browser/ and tests/unit/test_chat.py; the fake's own OutcomeUnverified ("unreadable") in
tests/unit/test_delivery.py.
"""

from __future__ import annotations

import abc
import dataclasses
import time
from collections.abc import Collection, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.helpers.browser import ACCOUNT, FRIEND, UNREGISTERED, Sim, log_in, make_settings
from wa_queue import errors
from wa_queue.models import ChatNote
from wa_queue.simulator.state import BAN_TEXT
from wa_queue.transport.base import MessageSender, SessionState
from wa_queue.transport.fake import BAN_WORDS, FakeControl, FakeSender, read_log
from wa_queue.transport.selenium import SeleniumSender

TICKS = ("sent", "delivered", "read")
PNG = b"\x89PNG"


class World(abc.ABC):
    """A sender and the means to script what its WhatsApp does. Faults: "unregistered" (not on WhatsApp),
    "refused" (the server refuses the message: it never leaves), "no_ack" (it leaves, and the acknowledgement is lost
    on the way back). Session states: "phone_disconnected", "logged_out", "banned" (the ban screen), or None for a
    linked, online phone."""

    sender: MessageSender
    account: str | None  # what account_number() says once connected
    logged_out_problem: str | None  # what last_problem() says once logged out
    shows_qr: bool  # whether a logged-out session offers a QR (qr_png)

    @abc.abstractmethod
    def number_fault(self, phone: str, fault: str, count: int | None = None) -> None:
        """Script a fault on sends to phone, for `count` sends (None: until reset)."""

    @abc.abstractmethod
    def session_state(self, state: str | None) -> None:
        """Put the session's phone in a state."""

    @abc.abstractmethod
    def sent(self, phone: str) -> list[dict[str, str]]:
        """What reached WhatsApp for phone, oldest first: {"text", "wa_id"}."""

    @abc.abstractmethod
    def sent_media(self, phone: str) -> list[dict[str, str]]:
        """The files that reached WhatsApp for phone, oldest first: {"kind", "filename", "sha256", "caption"}."""

    @abc.abstractmethod
    def reply(self, phone: str, text: str) -> None:
        """The contact `phone` writes `text` to the session's account."""

    @abc.abstractmethod
    def new_sender(self, session: str) -> MessageSender:
        """Another sender of the same kind, not connected."""

    @abc.abstractmethod
    def relink(self) -> None:
        """Bring the shared sender back to a connected session (after a logout, a close)."""

    @abc.abstractmethod
    def reset(self) -> None:
        """Forget messages and faults; the login stays."""


class FakeWorld(World):
    # The fake knows no account number and no reasons (both None: "when unknown"), and has no QR to offer.
    account = None
    logged_out_problem = None
    shows_qr = False
    FAULTS = {"unregistered": "unregistered", "refused": "transient", "no_ack": "unknown"}

    def __init__(self, data_dir: Path) -> None:
        self.log, self.control_path = data_dir / "fake-sent.jsonl", data_dir / "fake-control.json"
        self.control = FakeControl(self.control_path)
        self.sender = FakeSender("primary", self.log, self.control_path)
        self.sender.connect()

    def number_fault(self, phone: str, fault: str, count: int | None = None) -> None:
        self.control.set_number_fault(phone, self.FAULTS[fault], count)

    def session_state(self, state: str | None) -> None:
        self.control.set_session_state(self.sender.session, state)

    def sent(self, phone: str) -> list[dict[str, str]]:
        return [{"text": e["text"], "wa_id": e["wa_id"]} for e in read_log(self.log) if e["phone"] == phone]

    def sent_media(self, phone: str) -> list[dict[str, str]]:
        return [{"kind": e["media"]["kind"], "filename": e["media"]["filename"], "sha256": e["media"]["sha256"],
                 "caption": e["text"]} for e in read_log(self.log) if e["phone"] == phone and e.get("media")]

    def reply(self, phone: str, text: str) -> None:
        self.replies = getattr(self, "replies", 0) + 1
        self.control.add_reply(self.sender.session, chat=phone, wa_id=f"false_{phone.lstrip('+')}@c.us_{self.replies}",
                               text=text, phone=phone)

    def new_sender(self, session: str) -> MessageSender:
        return FakeSender(session, self.log, self.control_path)

    def relink(self) -> None:
        self.session_state(None)
        self.sender.connect()

    def reset(self) -> None:
        self.control.write({})
        self.log.unlink(missing_ok=True)


class SimWorld(World):
    account = ACCOUNT
    logged_out_problem = "logged out: scan the QR code"
    shows_qr = True
    FAULTS = {"unregistered": "unregistered", "refused": "fail_send", "no_ack": "drop_after_click"}

    def __init__(self, data_dir: Path) -> None:
        self.sim = Sim()
        self.settings = make_settings(data_dir, self.sim)
        self.sender = SeleniumSender("primary", self.settings)
        log_in(self.sender, self.sim)

    def number_fault(self, phone: str, fault: str, count: int | None = None) -> None:
        self.sim.number_fault(phone, self.FAULTS[fault], count)

    def session_state(self, state: str | None) -> None:
        self.sim.session_fault(state)  # "logged_out" unlinks the device: it takes a new scan (relink)

    def sent(self, phone: str) -> list[dict[str, str]]:
        return [{"text": m["text"], "wa_id": m["id"]} for m in self.sim.sent() if m["to"] == phone.lstrip("+")]

    def sent_media(self, phone: str) -> list[dict[str, str]]:
        import requests

        return [{"kind": m["kind"], "filename": m["filename"], "sha256": m["sha256"], "caption": m["caption"]}
                for m in requests.get(self.sim.url + "/__sim__/media", timeout=5).json()
                if m["to"] == phone.lstrip("+")]

    def reply(self, phone: str, text: str) -> None:
        self.sim.post("/__sim__/incoming", {"account": ACCOUNT, "from": phone.lstrip("+"), "text": text})

    def new_sender(self, session: str) -> MessageSender:
        return SeleniumSender(session, self.settings)

    def relink(self) -> None:
        self.sim.session_fault(None)
        log_in(self.sender, self.sim)  # after a logout: scans the QR, and Chrome restarts once to keep the login

    def reset(self) -> None:
        self.sim.post("/__sim__/reset", {"keep_links": True})

    def close(self) -> None:
        self.sender.close()
        self.sim.server.shutdown()


@pytest.fixture(scope="module", params=["fake", "selenium"])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data_dir = tmp_path_factory.mktemp(f"sender-{request.param}")
    if request.param == "fake":
        yield FakeWorld(data_dir)
        return
    sim_world = SimWorld(data_dir)
    try:
        yield sim_world
    finally:
        sim_world.close()


@pytest.fixture
def sender(world: World) -> Iterator[MessageSender]:
    if world.sender.state() is not SessionState.CONNECTED:
        world.relink()
    yield world.sender
    world.reset()


class MemoryNotes:
    """The ChatNotes contract in memory (the store's notes have their own suite: tests/contract/store)."""

    def __init__(self) -> None:
        self.notes: dict[str, ChatNote] = {}  # pending, the chat opened last last
        self.seen: dict[str, str] = {}  # kept once done, as the store keeps it

    def opening(self, *, chat: str | None = None, phone: str | None = None, unread: int = 0) -> None:
        note = ChatNote(session="primary", chat=chat, phone=phone, unread=unread, at=datetime.now(UTC))
        self.notes.pop(note.key, None)
        self.notes[note.key] = note

    def pending(self) -> list[ChatNote]:
        return [dataclasses.replace(n, seen=self.seen.get(n.key)) for n in self.notes.values()]

    def settle(self, seen: Mapping[str, str], done: Collection[str]) -> None:
        self.seen.update(seen)
        for key in done:
            self.notes.pop(key, None)

    @property
    def note(self) -> ChatNote | None:
        """The chat noted last."""
        return list(self.notes.values())[-1] if self.notes else None


def noted_then_a_new_page(world: World, sender: MessageSender, notes: MemoryNotes, noted: str,
                          other: str) -> list[tuple[str | None, str]]:
    """`noted`'s chat noted as open_chat notes it before it navigates, the worker dead before anything more, and a
    reply from `other` in the list of the next page: what that page's first read returns of the two."""
    notes.opening(phone=noted)
    sender.close()
    assert sender.connect() is SessionState.CONNECTED
    world.reply(other, "hello")
    time.sleep(1)  # the reply reaches the page's list
    return [(r.phone, r.text) for r in sender.read_replies(max_chats=5) if r.phone in (noted, other)]


def _cap_reached(ids: tuple[str, ...]) -> bool:
    raise errors.DailyCapReached("session daily cap reached: 3 of 3")


def since_before() -> datetime:
    return datetime.now(UTC) - timedelta(seconds=1)


# Tests that leave the shared sender logged out or closed come last: a test after them logs it in again (for the
# Selenium sender, a QR scan and a Chrome restart).
class TestSenderContract:
    def test_a_sender_not_yet_connected_is_closed(self, world: World) -> None:
        fresh = world.new_sender("fresh")
        try:
            assert fresh.state() is SessionState.CLOSED and not fresh.is_connected()
            assert fresh.qr_png() is None and fresh.account_number() is None
        finally:
            fresh.close()

    def test_connect_reports_a_linked_session_connected(self, world: World, sender: MessageSender) -> None:
        assert sender.connect() is SessionState.CONNECTED
        assert sender.state() is SessionState.CONNECTED and sender.is_connected()
        assert sender.last_problem() is None and sender.qr_png() is None
        assert sender.account_number() == world.account

    def test_replies_are_read_with_their_sender_and_none_invented(self, world: World, sender: MessageSender) -> None:
        other = "+15551230000"
        sender.send(FRIEND, "Your appointment is at 10:00", ref="reply-1")
        world.reply(FRIEND, "thanks")
        # The page draws it in the open chat first: a read that opened another chat before then would leave it
        # behind (docs/opt-out.md, "left open"), which is not what this test is about.
        time.sleep(1)
        world.reply(other, "STOP")
        got: dict[str, tuple[str | None, str]] = {}
        deadline = time.monotonic() + 20
        while len(got) < 2 and time.monotonic() < deadline:
            got.update({r.wa_id: (r.phone, r.text) for r in sender.read_replies(max_chats=5)})
            time.sleep(0.2)
        assert sorted(got.values()) == [(other, "STOP"), (FRIEND, "thanks")]
        again = {r.wa_id: (r.phone, r.text) for r in sender.read_replies(max_chats=5)}
        assert set(again.items()) <= set(got.items())  # read again, perhaps; never another reply
        assert sender.send(FRIEND, "See you", ref="reply-2").wa_id  # the next send opens its own chat

    def test_the_chat_a_send_is_about_to_open_is_read_first_when_unread(self, world: World,
                                                                          sender: MessageSender) -> None:
        mine, other = "+15551230001", "+15551230002"
        world.reply(other, "later")
        world.reply(mine, "here first")
        got: list[tuple[str | None, str]] = []
        deadline = time.monotonic() + 20
        while not got and time.monotonic() < deadline:
            # (the chat an earlier test left open may answer too: only these two numbers are this test's)
            got += [(r.phone, r.text) for r in sender.read_replies(max_chats=0, first=mine) if r.phone in (mine, other)]
            time.sleep(0.2)
        assert got == [(mine, "here first")]  # beyond max_chats=0, and no other chat opened

    def test_a_chat_opened_and_left_unrecorded_is_read_again_on_a_new_page(self, world: World,
                                                                             sender: MessageSender) -> None:
        """A worker killed between opening a chat (its badge gone) and recording the replies: the chat note, kept
        in the store by the worker (here in memory), brings them back on the next page."""
        other = "+15551230003"
        notes = MemoryNotes()
        sender.chat_notes = notes
        try:
            sender.send(FRIEND, "Your code is 1234", ref="note-1")
            assert (notes.note.phone, notes.note.chat) == (FRIEND, None)  # noted before the chat opened
            world.reply(other, "STOP")
            world.reply(other, "please")
            taken: list[str] = []
            deadline = time.monotonic() + 20
            while len(taken) < 2 and time.monotonic() < deadline:
                taken += [r.text for r in sender.read_replies(max_chats=1) if r.phone == other]
                time.sleep(0.2)
            assert taken == ["STOP", "please"] and notes.note.unread == 2
            sender.close()  # the worker dies here, the replies unrecorded; the next one gets a new page
            assert sender.connect() is SessionState.CONNECTED
            again = [r.text for r in sender.read_replies(max_chats=5) if r.phone == other]
            assert again == ["STOP", "please"]
            assert [r for r in sender.read_replies(max_chats=5) if r.phone == other] == []  # once, not every read
        finally:
            sender.chat_notes = None

    def test_a_reply_in_the_chat_in_front_when_the_browser_dies_is_read_on_the_next_page(
            self, world: World, sender: MessageSender) -> None:
        """The reply comes while the chat is open (no badge), and the browser dies before the next read; the next
        send opens its chat in a new page. The first chat's note stays beside the new one, so it is read again."""
        first, second = "+15551230006", "+15551230007"
        notes = MemoryNotes()
        sender.chat_notes = notes
        try:
            sender.send(first, "Your code is 4321", ref="front-1")
            sender.read_replies(max_chats=0)  # the pause's read: nothing yet, and recorded
            sender.replies_recorded()
            world.reply(first, "STOP")
            time.sleep(1)  # the reply reaches the open chat, where it has no badge
            sender.close()  # Chrome dies before the read before the next send
            assert sender.connect() is SessionState.CONNECTED
            sender.send(second, "Your code is 8765", ref="front-2")
            assert [n.phone for n in notes.pending()] == [first, second]
            got = [r.text for r in sender.read_replies(max_chats=0) if r.phone == first]
            assert got == ["STOP"]
            sender.replies_recorded()
            assert [n.phone for n in notes.pending()] == [second]  # read, recorded and left: forgotten
            assert [r for r in sender.read_replies(max_chats=0) if r.phone == first] == []
        finally:
            sender.chat_notes = None

    def test_a_reply_before_our_next_row_in_a_chat_no_page_read_since_is_read_again(
            self, world: World, sender: MessageSender) -> None:
        """A reply in the chat in front, Chrome dies, the next page sends to the same number (our row now follows the
        reply) and dies too before any read: the re-read counts from the newest row a recorded read saw, not from
        our last row (the chaos run lost such a reply)."""
        number = "+15551230009"
        notes = MemoryNotes()
        sender.chat_notes = notes
        try:
            sender.send(number, "Your table is booked", ref="seen-1")
            sender.read_replies(max_chats=0)
            sender.replies_recorded()  # what this chat showed is read and recorded
            world.reply(number, "ok, see you then")
            time.sleep(1)  # in the open chat: no badge
            sender.close()
            assert sender.connect() is SessionState.CONNECTED
            sender.send(number, "Reminder: tomorrow at 8", ref="seen-2")  # a new page, no read before it
            sender.close()
            assert sender.connect() is SessionState.CONNECTED
            got = [r.text for r in sender.read_replies(max_chats=0) if r.phone == number]
            assert got == ["ok, see you then"]
        finally:
            sender.chat_notes = None

    def test_a_chat_noted_for_a_send_that_left_no_row_does_not_hold_up_the_next_read(self, world: World,
                                                                                       sender: MessageSender) -> None:
        """A worker killed after noting a send's chat and before its row (a number never written to: the chat is
        empty on the next page): that chat is read again, finds nothing, and the same read goes on to the list."""
        new_number, other = "+15551230004", "+15551230005"
        notes = MemoryNotes()
        sender.chat_notes = notes
        try:
            got = noted_then_a_new_page(world, sender, notes, new_number, other)
            assert got == [(other, "hello")]  # in this one read: the empty chat neither failed nor stalled it
        finally:
            sender.chat_notes = None

    def test_a_chat_noted_for_a_number_not_on_whatsapp_reads_as_nothing_and_goes(self, world: World,
                                                                                 sender: MessageSender) -> None:
        """A send to a number not on WhatsApp notes its chat before the page says so, and the worker dies: the note
        opens no chat. It must neither hold up the read (the list's reply is read in the same read) nor stay."""
        other = "+15551230008"
        world.number_fault(UNREGISTERED, "unregistered")
        notes = MemoryNotes()
        sender.chat_notes = notes
        try:
            got = noted_then_a_new_page(world, sender, notes, UNREGISTERED, other)
            assert got == [(other, "hello")]
            sender.replies_recorded()
            assert UNREGISTERED not in [n.phone for n in notes.pending()]
        finally:
            sender.chat_notes = None

    def test_a_reply_that_comes_during_our_first_send_in_a_chat_is_read(self, world: World,
                                                                          sender: MessageSender) -> None:
        """The chat is open for the send (its number check), so the reply gets no badge, and it lands before our
        first row there: it still counts."""
        new_number = "+15551230006"
        assert sender.is_registered(new_number)  # opens its chat, as Delivery's number check does
        world.reply(new_number, "STOP")
        time.sleep(1.5)  # the open page shows it (and so reads it) before the click
        assert sender.send(new_number, "Your first message", ref="first-words").wa_id
        got: list[str] = []
        deadline = time.monotonic() + 10
        while not got and time.monotonic() < deadline:
            got += [r.text for r in sender.read_replies(max_chats=0) if r.phone == new_number]
            time.sleep(0.2)
        assert got == ["STOP"]

    def test_long_text_with_newlines_and_emoji_arrives_intact_once(self, world: World, sender: MessageSender) -> None:
        line = "Ünïcödé line, emoji 😀👍🏽🇫🇷 and a family 👨‍👩‍👧 — tab\there\n\n"
        text = (line * 120)[:4095] + "🎉"
        assert len(text) == 4096 and text.count("\n") > 100
        receipt = sender.send(FRIEND, text, ref="long")  # E.164 with its '+', as the store keeps it
        assert receipt.wa_id.startswith("true_15551234567@c.us_") and receipt.status in TICKS
        assert world.sent(FRIEND) == [{"text": text, "wa_id": receipt.wa_id}]
        found = sender.find_sent(FRIEND, text, ref="long")
        assert found is not None and found.wa_id == receipt.wa_id and found.status in TICKS
        assert sender.receipt_status(FRIEND, receipt.wa_id) in TICKS
        assert sender.receipt_status(FRIEND, "true_15551234567@c.us_NOTSENT") is None
        assert sender.find_sent(FRIEND, text[:-1], ref="long") is None  # another text: a chat positively read

    def test_find_sent_tells_the_click_from_an_older_message_by_the_picture(self, sender: MessageSender) -> None:
        text = "a reminder, sent before the click in doubt"
        earlier = sender.send(FRIEND, "an earlier message in this chat", ref="earlier")
        before = since_before()
        pictures: list[tuple[str, ...] | None] = []
        receipt = sender.send(FRIEND, text, ref="reminder", before_click=lambda ids: pictures.append(ids) or True)
        # What the chat showed before the click: its message rows (a row shown before the click, not the new one).
        assert len(pictures) == 1 and pictures[0] is not None
        assert [i.rsplit("_", 1)[-1] for i in pictures[0]][-1:] == [earlier.wa_id.rsplit("_", 1)[-1]]
        assert receipt.wa_id not in pictures[0]
        found = sender.find_sent(FRIEND, text, ref="reminder", since=before, picture=pictures[0])
        assert found is not None and found.wa_id == receipt.wa_id and found.status in TICKS
        # A later click's picture holds this row: it is an older message with the same text, not that click's.
        assert sender.find_sent(FRIEND, text, ref="reminder", since=before, picture=(*pictures[0], receipt.wa_id)) \
            is None
        # Another message owns it: not this click's either.
        assert sender.find_sent(FRIEND, text, ref="reminder", since=before, picture=pictures[0],
                                taken={receipt.wa_id}) is None
        # No picture, and a time from before the click: a time never proves another message, so it cannot tell.
        later = datetime.now(UTC) + timedelta(minutes=10)
        with pytest.raises(errors.OutcomeUnverified, match="no picture"):
            sender.find_sent(FRIEND, text, ref="reminder", since=later)

    def test_a_file_arrives_once_as_its_bytes_and_find_sent_knows_its_row(self, world: World, sender: MessageSender,
                                                                         tmp_path: Path) -> None:
        from tests.helpers import media_samples as samples
        from wa_queue.media.rules import check_file
        from wa_queue.models import MediaRef
        from wa_queue.settings import Settings
        from wa_queue.transport.base import Attachment

        path = tmp_path / "invoice 42.pdf"
        path.write_bytes(samples.pdf(30_000))
        ref = check_file(path.read_bytes(), path.name, None, Settings.from_env({}))
        receipt = sender.send(FRIEND, "Your invoice", ref="pdf", media=Attachment(path, ref))
        assert receipt.status in TICKS
        assert world.sent_media(FRIEND) == [{"kind": "document", "filename": "invoice 42.pdf", "sha256": ref.sha256,
                                             "caption": "Your invoice"}]
        found = sender.find_sent(FRIEND, "Your invoice", ref="pdf", media=ref)
        assert found is not None and found.wa_id == receipt.wa_id
        another = MediaRef(ref.sha256, ref.size, ref.mimetype, "another.pdf", ref.kind)
        assert sender.find_sent(FRIEND, "Your invoice", ref="pdf", media=another) is None  # another file: not there
        with pytest.raises(errors.OutcomeUnverified):  # a text message with the caption's text: a file cannot tell
            sender.find_sent(FRIEND, "Your invoice", ref="pdf")

    def test_a_mark_refused_before_the_click_sends_nothing(self, world: World, sender: MessageSender) -> None:
        with pytest.raises(errors.SendAborted):
            sender.send(FRIEND, "the lease moved on", ref="aborted", before_click=lambda ids: False)
        with pytest.raises(errors.DailyCapReached):
            sender.send(FRIEND, "the cap was reached", ref="capped", before_click=_cap_reached)
        assert world.sent(FRIEND) == []
        assert sender.send(FRIEND, "then sent", ref="then").wa_id  # the box was left clean
        assert [m["text"] for m in world.sent(FRIEND)] == ["then sent"]

    def test_unregistered_number_is_invalid(self, world: World, sender: MessageSender) -> None:
        world.number_fault(UNREGISTERED, "unregistered")
        with pytest.raises(errors.InvalidNumber):
            sender.send(UNREGISTERED, "hello", ref="bad")
        assert sender.is_registered(UNREGISTERED) is False
        assert sender.is_registered(FRIEND) is True
        assert world.sent(UNREGISTERED) == []

    def test_a_message_refused_before_it_left_is_transient(self, world: World, sender: MessageSender) -> None:
        text = "refused once, then sent"
        world.number_fault(FRIEND, "refused", count=1)
        with pytest.raises(errors.TransientSendError) as raised:
            sender.send(FRIEND, text, ref="refused")
        assert not isinstance(raised.value, errors.SendOutcomeUnknown)  # the page proves nothing left
        assert world.sent(FRIEND) == []
        assert sender.find_sent(FRIEND, text, ref="refused") is None
        assert sender.send(FRIEND, text, ref="refused").wa_id
        assert [m["text"] for m in world.sent(FRIEND)] == [text]

    def test_a_lost_acknowledgement_is_unknown_and_find_sent_finds_it(self, world: World,
                                                                       sender: MessageSender) -> None:
        text = "clicked; the acknowledgement never reached the page"
        before = since_before()
        world.number_fault(FRIEND, "no_ack", count=1)
        with pytest.raises(errors.SendOutcomeUnknown):
            sender.send(FRIEND, text, ref="no-ack")
        found = sender.find_sent(FRIEND, text, ref="no-ack", since=before)
        assert found is not None and found.wa_id == world.sent(FRIEND)[0]["wa_id"]
        assert [m["text"] for m in world.sent(FRIEND)] == [text]  # read, not sent again

    def test_a_disconnected_phone_is_reported_and_refuses_sends(self, world: World, sender: MessageSender) -> None:
        world.session_state("phone_disconnected")
        with pytest.raises(errors.SessionUnavailable) as raised:
            sender.send(FRIEND, "phone off", ref="off")
        assert not isinstance(raised.value, errors.SessionLoggedOut)
        assert sender.state() is SessionState.PHONE_DISCONNECTED and not sender.is_connected()
        # Reported by connect() too, not raised: the page draws the banner after the chat list, and connect() waits.
        assert sender.connect() is SessionState.PHONE_DISCONNECTED
        assert world.sent(FRIEND) == []
        world.session_state(None)
        assert sender.send(FRIEND, "phone back", ref="on").wa_id
        assert sender.state() is SessionState.CONNECTED

    def test_a_banned_account_is_reported_with_the_pages_words_and_refuses_sends(self, world: World,
                                                                                 sender: MessageSender) -> None:
        world.session_state("banned")
        with pytest.raises(errors.SessionBanned, match="is banned from using WhatsApp"):
            sender.send(FRIEND, "after the ban", ref="banned")
        assert sender.state() is SessionState.BANNED and not sender.is_connected()
        assert sender.connect() is SessionState.BANNED  # reported, not raised
        assert sender.last_problem() == BAN_WORDS == BAN_TEXT  # the page's words, the same in both worlds
        assert world.sent(FRIEND) == []
        world.session_state(None)
        assert sender.connect() is SessionState.CONNECTED and sender.last_problem() is None

    def test_a_logged_out_session_is_reported_and_refuses_sends(self, world: World, sender: MessageSender) -> None:
        world.session_state("logged_out")
        with pytest.raises(errors.SessionLoggedOut):
            sender.send(FRIEND, "after the logout", ref="logged-out")
        assert sender.state() is SessionState.LOGGED_OUT and not sender.is_connected()
        assert sender.connect() is SessionState.LOGGED_OUT  # reported, not raised
        assert sender.last_problem() == world.logged_out_problem
        png = sender.qr_png()
        assert png.startswith(PNG) if world.shows_qr else png is None
        assert world.sent(FRIEND) == []

    def test_close_leaves_the_session_closed(self, world: World) -> None:
        sender = world.sender  # in whatever state the last test left it: close() ends any
        sender.close()
        assert sender.state() is SessionState.CLOSED and not sender.is_connected()
        sender.close()  # a second close is harmless
        assert sender.state() is SessionState.CLOSED
