"""Error classes. The retry decision reads the class, never the message text."""

from __future__ import annotations


class WaQueueError(Exception):
    """Root of every wa-queue error."""


class ConfigError(WaQueueError):
    """A WAQ_* setting has a value the program cannot use."""


class StoreError(WaQueueError):
    """The message store failed or was asked for something impossible."""


class NotFound(StoreError):
    """No message with that id."""


class InvalidTransition(StoreError):
    """The message is not in a state that allows this operation (e.g. deleting a pending message)."""


class IdempotencyConflict(StoreError):
    """The idempotency key is already used by a message with other content."""


class SendError(WaQueueError):
    """Root of the errors a sender raises while sending one message."""


class TransientSendError(SendError):
    """The send may work later (time-out, missing element, network): retried on the schedule."""


class PermanentSendError(SendError):
    """The send can never work (invalid or unregistered number): the message fails at once."""


class InvalidNumber(PermanentSendError):
    """The number is not a valid WhatsApp number."""


class SessionUnavailable(SendError):
    """The session cannot send now (disconnected, logged out, at its cap): the message goes to another session
    without using an attempt."""


class DailyCapReached(SessionUnavailable):
    """The session sent its WAQ_MAX_DAILY_PER_SESSION today: the message goes to another session, or waits for the
    next local midnight when none can take it. Its name is stored as the release's error_class."""


class RecipientLimitReached(SendError):
    """The number had WAQ_MAX_PER_RECIPIENT_PER_DAY messages in its local day: the message waits, without using an
    attempt, for the recipient's next day (deferred), and is checked again then. Refused by the store's mark."""


class SendWindowClosed(SendError):
    """The message's send window (its own, else WAQ_SEND_WINDOW) is closed in the recipient's time zone: the message
    waits, without using an attempt, until the window opens (deferred)."""


class SessionLoggedOut(SessionUnavailable):
    """The session lost its login and needs a QR scan by an operator."""


class SessionBanned(SessionUnavailable):
    """The page shows that WhatsApp banned or restricted the account (NOTICES["banned"], NOTICES["restricted"] in
    transport/selectors.py); the text is the page's words. Raised before any click: the session becomes `banned`,
    its messages go to the other sessions, and it stays so until an operator restarts it."""


class SendOutcomeUnknown(TransientSendError):
    """The send was clicked but its acknowledgement never came: before sending again, the chat must be read."""


class SendAborted(SendError):
    """The send was stopped before its click because the store refused the mark (the lease moved on): nothing was
    clicked, and this worker no longer owns the message."""


class OutcomeUnverified(SendError):
    """Sent? It could not be verified in the chat (rows of an unknown form, a text that cannot be compared, or the
    session that clicked is gone). The message fails for an operator, who holds the phone: retry, or mark as sent.
    Never sent again on a guess."""


class ValidationError(WaQueueError):
    """Input a person must correct: `field` names what is wrong."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class StateConflict(ValidationError):
    """Well-formed input that cannot hold now: answered 409, because the same request could be right at another time
    or in another state of the world, and no schema can say when."""


class MediaUnavailable(StateConflict):
    """A media URL that could not give a file that can be sent now: refused by the outbound rule once resolved, not
    answering 200 within WAQ_MEDIA_FETCH_TIMEOUT_S, redirecting, or answering bytes that cannot be sent (a type not
    accepted, or one its name does not claim). What is at the URL decides, and it may change."""


class OptedOut(StateConflict):
    """The number is on the suppression list (it replied with an opt-out word, or an operator put it there): an
    enqueue is refused (409 naming phone), and a queued message is cancelled by the mark instead of clicked
    (`cancelled`: that message, as the mark left it)."""

    def __init__(self, text: str, *, cancelled: object = None) -> None:
        super().__init__(text, "phone")
        self.cancelled = cancelled


class MediaNotFound(ValidationError):
    """A media id that is not an upload of this API key (never made, another key's, collected, or older than
    WAQ_MEDIA_UPLOAD_TTL_H): answered 404 naming media, as for an unknown message id."""


class TimeConflict(StateConflict):
    """Well-formed times that cannot hold now: a send_at past the scheduling horizon (WAQ_MAX_SCHEDULE_DAYS), an
    expiry already past or before the send_at, a send window never open for the number (SendWindowNeverOpen).
    Answered 409: the same request could be right at another time, and
    no schema can say when."""


class MediaTooLarge(ValidationError):
    """A file over its kind's size cap (WAQ_MEDIA_MAX_*_MB): answered 413 naming `media` and the limit."""

    def __init__(self, message: str, limit_bytes: int) -> None:
        super().__init__(message, "media")
        self.limit_bytes = limit_bytes


class MediaRefused(PermanentSendError):
    """WhatsApp refused the file (too big for it, or a type it does not take): the message fails, naming the limit
    the page gave. Sending the same file again would be refused again."""


class MediaMissing(PermanentSendError):
    """The file a message names is not in the media store (deleted by hand, a lost volume): the message fails for an
    operator rather than go out without it."""


class NotCancellable(WaQueueError):
    """The message cannot be cancelled (being sent, sent, in doubt, or already final): answered 409 with why."""

    def __init__(self, message: str, status: str) -> None:
        super().__init__(message)
        self.status = status


class SendWindowNeverOpen(TimeConflict):
    """A message's send window is never open at once in every time zone of its number (within a week): refused when
    it is enqueued, rather than left waiting forever."""


class OutboundRefused(WaQueueError):
    """The outbound rule (wa_queue/outbound.py) refused a URL: its host is written in a refused form, cannot be
    encoded, resolves to an internal address (loopback, private, link-local, ...) that WAQ_OUTBOUND_ALLOW does not
    name, or the receiver answered with a redirect. Final: the same URL will be refused again."""


class RateLimited(WaQueueError):
    """An API key enqueued faster than its rate limit (wa_queue/rate_limit.py). retry_after_s: when the same request
    would pass; None when it never can (more messages than the key's bucket holds)."""

    def __init__(self, key_name: str, retry_after_s: float | None) -> None:
        self.key_name = key_name
        self.retry_after_s = retry_after_s
        super().__init__(f"the key {key_name!r} is over its enqueue rate limit")



class QuotaExceeded(WaQueueError):
    """An API key's messages of this UTC day would pass its daily quota (WAQ_DAILY_QUOTA, `daily=` in
    WAQ_KEY_LIMITS), decided by the store in the insert's own write (wa_queue/quota.py). Nothing of the request was
    stored. retry_after_s: until the next UTC midnight, when the key's count starts again."""

    def __init__(self, key_name: str, quota: int, used: int, requested: int, retry_after_s: float) -> None:
        self.key_name = key_name
        self.quota = quota
        self.used = used
        self.requested = requested
        self.retry_after_s = retry_after_s
        super().__init__(f"the key {key_name!r} has enqueued {used} of its daily quota of {quota} messages today "
                         f"(UTC); {requested} more would pass it")
