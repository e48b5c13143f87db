"""Session health: which sessions can take work now, reconnection with back-off (attempt n waits n units), and the
ban detector's record (a banned session is never reconnected on its own: only an operator's restart clears it)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from wa_queue.models import SessionStatus
from wa_queue.notify import LOG_ONLY, Notifier
from wa_queue.retry import local_midnight_utc
from wa_queue.settings import Settings
from wa_queue.store import MessageStore, SessionRecord
from wa_queue.transport.base import MessageSender, SessionState
from wa_queue.transport.chat import PAGE_CLOCK_WARN_S
from wa_queue.warmup import WarmupStatus, session_warmup

log = logging.getLogger(__name__)

# The error fields of a connected session (SessionRecord.last_error*).
CLEARED_ERROR = {"last_error": None, "last_error_at": None, "last_error_hint": None}
# Chrome's net:: errors (and time-outs) that mean WhatsApp Web's host cannot be reached.
_UNREACHABLE = ("ERR_NAME_NOT_RESOLVED", "ERR_CONNECTION_REFUSED", "ERR_INTERNET_DISCONNECTED",
                "ERR_CONNECTION_TIMED_OUT", "ERR_ADDRESS_UNREACHABLE", "ERR_CONNECTION_RESET", "ERR_NETWORK_CHANGED",
                "ERR_PROXY_CONNECTION_FAILED", "ERR_TIMED_OUT", "took over", "timed out", "timeout")
# What the state alone says when the sender cannot tell more.
_STATE_REASONS = {
    SessionState.QR: "logged out: scan the QR code",
    SessionState.LOGGED_OUT: "logged out: scan the QR code",
    SessionState.PHONE_DISCONNECTED: "the phone is not connected",
    SessionState.STARTING: "WhatsApp Web did not finish loading",
    SessionState.CLOSED: "the browser is closed",
    SessionState.BANNED: "WhatsApp shows the account banned or restricted",
}
BAN_HINT = ("WhatsApp banned or restricted this number: appeal from the phone (Settings > Help > Contact us); once "
            "the ban is lifted or the restriction's end time has passed, restart the session (waq sessions restart "
            "{session} or the dashboard)")


def clock_warning(name: str, offset_s: float | None) -> str | None:
    """The warning a session's page clock gives (health, doctor) when it is further off this machine's clock than
    PAGE_CLOCK_WARN_S, else None. The chat rules never trust a time alone, so this is a warning, not a fault."""
    if offset_s is None or abs(offset_s) <= PAGE_CLOCK_WARN_S:
        return None
    side = "ahead of" if offset_s > 0 else "behind"
    return (f"session {name}: the page's clock is {abs(offset_s):.0f} s {side} this machine's: check this machine's "
            "clock (NTP)")


def error_hint(reason: str, *, url: str, session: str = "NAME") -> str:
    """What an operator should do about a session's raw `reason` (pure: the reason's text decides)."""
    text = reason.lower()
    host = urlsplit(url).netloc or url
    if "banned" in text or "restricted" in text:  # before "phone": "Your phone number is banned ..."
        return BAN_HINT.format(session=session)
    if "sandbox is unusable" in text:  # transport/sandbox.UNUSABLE
        return ("Chrome cannot sandbox itself: run the worker as a non-root user (in Docker with "
                "security_opt seccomp=deploy/chrome-seccomp.json), or set WAQ_CHROME_SANDBOX=auto or off")
    if "chrome did not start" in text or "chromedriver" in text:
        return "Chrome did not start: check WAQ_CHROME_BINARY / WAQ_CHROMEDRIVER"
    if any(mark.lower() in text for mark in _UNREACHABLE):
        return f"cannot reach {host}: check the network or WAQ_WHATSAPP_URL"
    if "logged out" in text or "qr" in text:
        return f"scan the QR code (waq sessions qr {session} or the dashboard)"
    if "phone" in text:
        return "bring the phone online"
    if "update your browser" in text or "update_browser" in text:
        return "WhatsApp refuses this browser: update Chromium or set WAQ_CHROME_USER_AGENT"
    if "did not finish loading" in text:
        return f"{host} loads slowly: wait for the next health check or restart the session"
    return "restart the session (dashboard or admin API); see the worker's log"


def error_fields(sender: MessageSender, settings: Settings, now: datetime, state: SessionState,
                 exc: BaseException | None = None) -> dict[str, object]:
    """SessionRecord's last_error fields for a session found in `state`: cleared when connected, else the sender's
    last problem (or the exception, or what the state says) with its hint."""
    if state is SessionState.CONNECTED:
        return dict(CLEARED_ERROR)
    try:
        reason = sender.last_problem()
    except Exception:  # noqa: BLE001 - the reason is information, never a reason to fail a health check
        reason = None
    if not reason and exc is not None:
        reason = f"{type(exc).__name__}: {exc}"
    reason = (reason or _STATE_REASONS.get(state, state.value))[:500]
    return {"last_error": reason, "last_error_at": now,
            "last_error_hint": error_hint(reason, url=settings.whatsapp_url, session=sender.session)}


def heartbeat_fresh(record: SessionRecord, settings: Settings, now: datetime) -> bool:
    """A worker that has not reported for three health intervals is presumed dead."""
    if record.heartbeat_at is None:
        return False
    return now - record.heartbeat_at <= timedelta(seconds=3 * settings.health_interval_s + 5)


def reconnect_window(settings: Settings) -> timedelta:
    """How long reconnect() keeps trying before the session needs an operator: attempt n waits n units."""
    return timedelta(seconds=settings.reconnect_unit_s * sum(range(1, settings.reconnect_max_attempts + 1)))


def is_available(record: SessionRecord, settings: Settings, now: datetime) -> bool:
    return record.status == SessionStatus.CONNECTED and not record.needs_operator and heartbeat_fresh(
        record, settings, now
    )


def daily_cap(record: SessionRecord, settings: Settings, now: datetime) -> WarmupStatus:
    """The session's cap for today and where it stands in the warm-up ramp (WAQ_MAX_DAILY_PER_SESSION once the ramp
    is done, skipped or off)."""
    return session_warmup(settings, record.first_send_day, now, skipped=record.warmup_skipped)


def under_cap(store: MessageStore, session: str, settings: Settings, now: datetime) -> bool:
    """A cheap check before the work of a send; the store's mark decides (mark_sending's session cap)."""
    cap = daily_cap(store.get_session(session), settings, now).cap
    return store.sends_since(session, local_midnight_utc(now, settings.zone)) < cap


def pick_session(store: MessageStore, settings: Settings, now: datetime, *, exclude: str | None = None) -> str | None:
    """The available session under its cap (warm-up included) with the most headroom today, or None."""
    best: tuple[int, str] | None = None
    midnight = local_midnight_utc(now, settings.zone)
    for name in settings.sessions:
        record = store.get_session(name)
        if name == exclude or not is_available(record, settings, now):
            continue
        headroom = daily_cap(record, settings, now).cap - store.sends_since(name, midnight)
        if headroom > 0 and (best is None or headroom > best[0]):
            best = (headroom, name)
    return best[1] if best else None


def account_fields(sender: MessageSender) -> dict[str, str]:
    """{"number": "+<digits>"} when the page tells the logged-in account's own number, else nothing (the last one
    kept)."""
    try:
        number = sender.account_number()
    except Exception as exc:  # noqa: BLE001 - the number is information, never a reason to fail a health check
        log.debug("session %s: account number not read: %s", sender.session, exc)
        return {}
    return {"number": f"+{number}"} if number else {}


def record_ban(store: MessageStore, name: str, words: str | None, settings: Settings, now: datetime, *,
               notifier: Notifier = LOG_ONLY) -> SessionRecord:
    """The page shows the account banned or restricted: the session becomes `banned` with the page's words (a
    restriction's include its end time) and needs an operator; the admin is told once, when the record turns banned.
    A restriction does not lift itself here even after its end time: resuming at once is how a restricted number
    gets banned for good, and the end time is in the page's own words and locale. The operator restarts it."""
    before = store.get_session(name)
    words = (words or _STATE_REASONS[SessionState.BANNED])[:500]
    record = store.update_session(
        name, status=SessionStatus.BANNED.value, heartbeat_at=now, needs_operator=True, reconnect_attempts=0,
        next_reconnect_at=None, restart_requested=False, last_error=words, last_error_at=now,
        last_error_hint=BAN_HINT.format(session=name),
    )
    if before.status != SessionStatus.BANNED:
        log.error("session %s: banned: %s", name, words)
        notifier.notify_admin("session_banned", f"session {name} is banned: {words}", session=name, words=words)
        from wa_queue import batches  # batches reads sessions' availability: imported here, not at the top

        batches.pause_for_ban(store, name, now, notifier=notifier)
    return record


def note_unavailable(store: MessageStore, sender: MessageSender, settings: Settings, now: datetime, *,
                     notifier: Notifier = LOG_ONLY) -> SessionRecord:
    """A send found its session unable to send (Delivery): a ban (on the page, or already on the record) is recorded
    as one; anything else as closed, for the health check to look into."""
    record = store.get_session(sender.session)
    if record.status == SessionStatus.BANNED:
        return store.update_session(sender.session, heartbeat_at=now)
    if _safe_state(sender) is SessionState.BANNED:
        return record_ban(store, sender.session, _safe_problem(sender), settings, now, notifier=notifier)
    return store.update_session(sender.session, status=SessionStatus.CLOSED.value, heartbeat_at=now)


def record_started(store: MessageStore, sender: MessageSender, settings: Settings, now: datetime, state: SessionState,
                   exc: BaseException | None = None, *, notifier: Notifier = LOG_ONLY) -> SessionRecord:
    """A worker's first connect: its state as found, except that a banned record stays banned (a restarted worker
    process is not an operator's restart)."""
    name = sender.session
    record = store.get_session(name)
    if state is SessionState.BANNED:
        return record_ban(store, name, _safe_problem(sender), settings, now, notifier=notifier)
    if record.status == SessionStatus.BANNED and not record.restart_requested:
        return store.update_session(name, heartbeat_at=now)
    extra = account_fields(sender) if state is SessionState.CONNECTED else {}
    why = error_fields(sender, settings, now, state, exc)
    if why.get("last_error"):
        log.warning("session %s: %s (%s)", name, why["last_error"], why["last_error_hint"])
    return store.update_session(name, status=state.value, heartbeat_at=now, **extra, **why)


def check_health(store: MessageStore, sender: MessageSender, settings: Settings, now: datetime, *,
                 notifier: Notifier = LOG_ONLY) -> SessionRecord:
    """Read the session's state, record a heartbeat, and reconnect when the back-off says so. A banned session is
    left alone (a heartbeat only) until an operator's restart."""
    name = sender.session
    record = store.get_session(name)
    if record.restart_requested:
        return reconnect(store, sender, settings, now, reset=True, notifier=notifier)
    if record.status == SessionStatus.BANNED:
        return store.update_session(name, heartbeat_at=now)
    state = _safe_state(sender)
    if state is SessionState.BANNED:
        return record_ban(store, name, _safe_problem(sender), settings, now, notifier=notifier)
    if state is SessionState.CONNECTED:
        return store.update_session(
            name, status=state.value, heartbeat_at=now, reconnect_attempts=0, next_reconnect_at=None,
            needs_operator=False, **account_fields(sender), **CLEARED_ERROR,
        )
    why = error_fields(sender, settings, now, state)
    if record.needs_operator:
        return store.update_session(name, status=SessionStatus.NEEDS_OPERATOR.value, heartbeat_at=now, **why)
    if record.next_reconnect_at is None:
        # First sight of trouble: attempt 1 waits one unit.
        return store.update_session(
            name, status=state.value, heartbeat_at=now,
            next_reconnect_at=now + timedelta(seconds=settings.reconnect_unit_s), **why,
        )
    if now < record.next_reconnect_at:
        return store.update_session(name, status=state.value, heartbeat_at=now, **why)
    return reconnect(store, sender, settings, now, reset=False, notifier=notifier)


def reconnect(
    store: MessageStore, sender: MessageSender, settings: Settings, now: datetime, *, reset: bool,
    notifier: Notifier = LOG_ONLY,
) -> SessionRecord:
    name = sender.session
    record = store.get_session(name)
    attempts = 0 if reset else record.reconnect_attempts
    raised: Exception | None = None
    try:
        sender.close()
        state = sender.connect()
    except Exception as exc:  # noqa: BLE001 - a failed reconnect is one failed attempt, not a crash
        log.warning("session %s: reconnect raised %s: %s", name, type(exc).__name__, exc)
        state, raised = SessionState.CLOSED, exc
    if state is SessionState.BANNED:
        return record_ban(store, name, _safe_problem(sender), settings, now, notifier=notifier)
    if state is SessionState.CONNECTED:
        log.info("session %s: connected", name)
        return store.update_session(
            name, status=state.value, heartbeat_at=now, reconnect_attempts=0, next_reconnect_at=None,
            needs_operator=False, restart_requested=False, **account_fields(sender), **CLEARED_ERROR,
        )
    why = error_fields(sender, settings, now, state, raised)
    attempts += 1
    if attempts >= settings.reconnect_max_attempts:
        notifier.notify_admin(
            "session_needs_operator", f"session {name} failed {attempts} reconnections ({state.value})",
            session=name, state=state.value,
        )
        return store.update_session(
            name, status=SessionStatus.NEEDS_OPERATOR.value, heartbeat_at=now, reconnect_attempts=attempts,
            next_reconnect_at=None, needs_operator=True, restart_requested=False, **why,
        )
    wait = timedelta(seconds=settings.reconnect_unit_s * (attempts + 1))
    log.info("session %s: reconnect %d failed (%s); next in %s", name, attempts, state.value, wait)
    return store.update_session(
        name, status=state.value, heartbeat_at=now, reconnect_attempts=attempts, next_reconnect_at=now + wait,
        restart_requested=False, **why,
    )


def request_restart(store: MessageStore, name: str) -> SessionRecord:
    """The admin's restart: the session's next health check reconnects at once with a fresh counter."""
    return store.update_session(name, restart_requested=True, needs_operator=False, reconnect_attempts=0,
                                next_reconnect_at=None)


def _safe_problem(sender: MessageSender) -> str | None:
    try:
        return sender.last_problem()
    except Exception:  # noqa: BLE001 - the words are information; the ban is recorded without them
        return None


def _safe_state(sender: MessageSender) -> SessionState:
    try:
        return sender.state()
    except Exception as exc:  # noqa: BLE001 - a browser that cannot answer counts as closed
        log.warning("session %s: state check raised %s: %s", sender.session, type(exc).__name__, exc)
        return SessionState.CLOSED
