"""One owner for every shared name: Celery queues and task names, Redis keys, the store's tables and collections."""

from __future__ import annotations

DEFAULT_QUEUE = "wa.default"
MAINTENANCE_QUEUE = "wa.maintenance"
CALLBACK_QUEUE = "wa.callbacks"
SESSION_QUEUE_PREFIX = "wa.session."

TASK_SEND = "wa.send"
TASK_SESSION_HEALTH = "wa.session_health"
TASK_DISPATCH_DUE = "wa.dispatch_due"
TASK_RECOVER_STUCK = "wa.recover_stuck"
TASK_HEALTH_SWEEP = "wa.health_sweep"
TASK_ARCHIVE = "wa.archive_failed"
TASK_COLLECT_MEDIA = "wa.collect_media"
TASK_CALLBACK = "wa.status_callback"

# A message's priority is its task's kombu priority step: kombu's Redis transport keeps one list per queue and step
# (the queue's name, then PRIORITY_SEP and the step, step 0 under the bare name) and asks BRPOP for every consumed
# queue's step 0 before any queue's step 3, so a worker takes each waiting high task of its queues (its session's and
# wa.default) before a normal one, and normal before low; each list stays first in, first out.
PRIORITY_STEPS = {"high": 0, "normal": 3, "low": 6}
PRIORITY_SEP = "\x06\x16"  # kombu's Redis default (kombu.transport.redis.Channel.sep)

# Lives in the broker's Redis: when the broker loses its data this key goes with it, which is how the sweeper
# learns that every task published before is gone (see broker/epoch.py).
BROKER_EPOCH_KEY = "waq:broker-epoch"
FAKE_CONTROL_KEY = "waq:fake:control"
# One beat runs the jobs: the holder of this key (its owner token, with an expiry it renews; see beat_lock.py). The
# last run of each job is shared under the second key, so a beat that takes over keeps the holder's cadence.
BEAT_LOCK_KEY = "waq:beat:lock"
BEAT_LAST_RUN_KEY = "waq:beat:last-run"
# Send metrics in the broker's Redis (metrics_sink.py writes and reads them): counters, so a broker that restarts
# empty is an ordinary counter reset for Prometheus.
METRICS_KEY_PREFIX = "waq:metrics:"
METRICS_SEND_KEY_PREFIX = METRICS_KEY_PREFIX + "send:"
METRICS_SERIES_KEY = METRICS_KEY_PREFIX + "send-series"
METRICS_RETRIES_KEY = METRICS_KEY_PREFIX + "retries"
METRICS_KINDS_KEY = METRICS_KEY_PREFIX + "sent-kinds"

# The store's tables (SQLite) and collections (MongoDB), the same names in both.
MESSAGES = "messages"
ARCHIVE = "messages_archive"
SESSIONS = "sessions"
NUMBER_CHECKS = "number_checks"
SEND_COUNTS = "send_counts"  # MongoDB: the daily counters of the mark's gates (store/mongo.py)
ENQUEUE_COUNTS = "enqueue_counts"  # the daily quota's counters per API key and UTC day (wa_queue/quota.py)
INBOUND = "inbound"  # replies read in the sessions' chats, once per (session, chat, WhatsApp id)
CHAT_NOTES = "chat_notes"  # per session and chat its page opened: pending until read and left, and the row seen
OPEN_CHATS = "open_chats"  # before chat_notes: one note per session, moved into chat_notes when a store opens
SUPPRESSIONS = "suppressions"  # numbers that opted out (or an operator added): never enqueued, never clicked
SUPPRESSION_LOG = "suppression_log"  # every change of that list: out or in, when, by whom (a key, a CLI user, a reply)
MEDIA_UPLOADS = "media_uploads"  # files stored by POST /api/whatsapp/media, named by id in messages
STATUS_COUNTS = "status_counts"  # SQLite only: kept by triggers in the same transaction as every status change


def session_queue(session: str) -> str:
    return SESSION_QUEUE_PREFIX + session


def priority_list(queue: str, priority: str) -> str:
    """The Redis list holding `queue`'s tasks of this priority (see PRIORITY_STEPS)."""
    step = PRIORITY_STEPS[priority]
    return f"{queue}{PRIORITY_SEP}{step}" if step else queue


def worker_owner(session: str, hostname: str, pid: int) -> str:
    """The lease owner of one worker process; the prefix up to the pid names the session on that host."""
    return f"{session}/{hostname}/{pid}"


def metrics_send_key(session: str, outcome: str) -> str:
    """The histogram hash of one session's sends with one outcome."""
    return f"{METRICS_SEND_KEY_PREFIX}{session}:{outcome}"


def session_qr_key(session: str) -> str:
    """Broker Redis key holding the PNG of the QR a session's browser shows (written by its worker, with a TTL)."""
    return f"waq:session:{session}:qr"


def beat_lock_owner(hostname: str, pid: int, pid_namespace: str, nonce: str) -> str:
    """The beat lock's token: who holds it (host, pid and the pid namespace that pid belongs to: a beat on the same
    host and namespace can tell that the holder died) and a nonce, so that a restarted container with the same
    hostname and pid is never mistaken for the beat that held the lock before it."""
    return f"{hostname}/{pid}/{pid_namespace}/{nonce}"


# The callback circuit breaker (wa_queue/circuit.py): one hash per receiving host, shared by every callbacks worker.
CIRCUIT_KEY_PREFIX = "waq:circuit:"
# Callback outcomes (delivered, rejected, retried, gave_up, refused, deferred), counted by the callbacks workers.
METRICS_CALLBACKS_KEY = METRICS_KEY_PREFIX + "callbacks"


# The half-open circuit's trial lock: the one delivery let through to a host after its cool-down. Outside
# CIRCUIT_KEY_PREFIX, so the SCAN for circuits never meets it.
CIRCUIT_TRIAL_KEY_PREFIX = "waq:circuit-trial:"


def circuit_key(host: str) -> str:
    return CIRCUIT_KEY_PREFIX + host


def circuit_trial_key(host: str) -> str:
    return CIRCUIT_TRIAL_KEY_PREFIX + host


# The enqueue rate limits (wa_queue/rate_limit.py): one hash per API key name, shared by every API process.
RATE_LIMIT_KEY_PREFIX = "waq:rate:"


def rate_limit_key(key_name: str) -> str:
    return RATE_LIMIT_KEY_PREFIX + key_name
