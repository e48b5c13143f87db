"""Settings: the only reader of WAQ_* variables. Read once; a bad value stops the program at start."""

from __future__ import annotations

import dataclasses
import difflib
import logging
import math
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from wa_queue.errors import ConfigError
from wa_queue.outbound import NOTHING_ALLOWED, AllowList
from wa_queue.rate_limit import Rate
from wa_queue.setting_values import PARSERS, ApiKey, KeyLimits, parser_for

if TYPE_CHECKING:
    from wa_queue.send_window import SendWindow

_SESSION_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
MIN_SECRET_CHARS = 32  # an HMAC key a receiver can trust: 32 characters of a random secret are at least 128 bits
WORKER_POOLS = ("threads", "solo", "prefork")
# WAQ_* variables read outside Settings, on purpose: `waq worker` tells its Celery process its session; the launcher
# (wa_queue/devstack/launcher.py) takes its ports; the tests take a real MongoDB. Anything else WAQ_* that is not a
# field is a mistake.
READ_ELSEWHERE = frozenset({"WAQ_WORKER_SESSION", "WAQ_API_PORT", "WAQ_FLOWER_PORT", "WAQ_SIM_PORT",
                            "WAQ_TEST_MONGO_URL"})
log = logging.getLogger(__name__)
DOC, SHOWN = "doc", "shown"  # the metadata keys of setting()


def setting(default: Any, doc: str, *, shown: str | None = None) -> Any:
    """A Settings field and its documentation, which docs/hooks/settings_page.py turns into the docs' settings
    table (a field without one fails the docs build). `doc` is Markdown (links relative to docs/settings.md);
    `shown` is the default as the table writes it (Markdown), for a default that is derived or empty, or whose
    Python form is not the variable's; otherwise the table shows the default in the variable's own form."""
    return dataclasses.field(default=default, metadata={DOC: doc, SHOWN: shown})


@dataclasses.dataclass(frozen=True)
class Settings:
    """Typed settings. Every field has a WAQ_<FIELD_NAME_UPPER> variable and is declared with setting(), which
    carries its description: the settings page of the docs is generated from these fields."""

    data_dir: Path = setting(Path("var"), "data folder: SQLite file, Chrome profiles, generated keys", shown="`./var`")
    store_url: str = setting(
        "", "the store; `mongodb://host:27017/waq` selects MongoDB, written with `w=majority`, `journal=true`, a 10 s "
        "`wtimeoutMS`, a 20 s `serverSelectionTimeoutMS` and a 30 s `socketTimeoutMS` (a silent server or a cut "
        "network ends the call, which fails closed) unless the URL sets them "
        "(`?w=1&journal=false&serverSelectionTimeoutMS=5000`); `w=0` is refused "
        "([durability](concepts.md#how-nothing-is-lost))", shown="`sqlite:///<data dir>/waq.db`")
    store_start_timeout_s: float = setting(
        30.0, "`waq worker` and `waq beat` retry their store this long before Celery starts, then exit 1 naming "
        "`WAQ_STORE_URL`")
    broker_url: str = setting("redis://127.0.0.1:6379/0", "the Celery broker")
    sessions: tuple[str, ...] = setting(("primary", "secondary"), "session names (one worker each)")
    min_delay_s: float = setting(25.0, "the shortest random pause between two sends of one session (fractions "
                                 "allowed)")
    max_delay_s: float = setting(40.0, "the longest random pause between two sends of one session (fractions "
                                 "allowed); at least `WAQ_MIN_DELAY_S`")
    max_daily_per_session: int = setting(300, "sends per session per local day")
    retry_delays: tuple[float, ...] = setting((300.0, 900.0, 1800.0, 3600.0, 7200.0),
                                              "retry schedule (units s, m, h)", shown="`5m,15m,30m,1h,2h`")
    warmup_caps: tuple[int, ...] = setting(
        (20, 40, 80, 150, 300), "a new session's daily cap, step by step from the day of its first send, each step "
        "held `WAQ_WARMUP_DAYS_PER_STEP` days; then `WAQ_MAX_DAILY_PER_SESSION` (which also bounds every step). "
        "Empty: no warm-up ([keeping numbers alive](keeping-numbers-alive.md#warm-up-of-a-new-number))")
    warmup_days_per_step: int = setting(3, "days each warm-up cap holds (at least 1)")
    max_per_recipient_per_day: int = setting(
        0, "messages to one number per the recipient's local day, across all sessions; the rest wait for the next "
        "day", shown="`0` (off)")
    send_window: SendWindow | None = setting(
        None, "`HH:MM-HH:MM`: the send window of every message that has none of its own, in the recipient's time "
        "zone; a start after the end runs past midnight (`22:00-06:00`). Off by default: one-time codes and alerts "
        "must not wait", shown="(empty: off)")
    max_schedule_days: int = setting(35, "how far ahead a message's `send_at` may be, in days")
    default_ttl_s: float = setting(
        0.0, "the time-to-live of a message enqueued with neither `expires_at` nor `ttl_s`, in seconds from its "
        "enqueue; unsent by then it ends `expired`", shown="`0` (never expires)")
    high_skips_window: bool = setting(
        False, "a `high` priority message is sent outside its send window too (a one-time code at 02:00 is wanted); "
        "pacing, the daily caps and warm-up still apply")
    lease_s: float = setting(180.0, "how long a claim holds a message before beat may take it back; longer than the "
                             "pacing pause plus one send")
    archive_after_days: int = setting(30, "failed messages older than this move to the archive")
    timezone: str = setting("UTC", "the daily cap resets at this zone's midnight, and the warm-up counts its days")
    notify_webhook_url: str = setting("", "admin notifications are POSTed here (always logged)")
    transport: str = setting("selenium", "`fake` selects the scripted fake sender (tests, benchmarks)")
    fake_log: Path = setting(Path(""), "the fake sender's log", shown="`<data dir>/fake-sent.jsonl`")
    fake_control: Path = setting(Path(""), "the fake sender's control file", shown="`<data dir>/fake-control.json`")
    # Beat and recovery.
    dispatch_interval_s: float = setting(15.0, "beat: republish due messages the broker lost")
    max_countdown_s: float = setting(60.0, "the longest a retry waits as a countdown task in the broker; one due "
                                     "later waits in the store, and beat publishes it when due (within "
                                     "`WAQ_DISPATCH_INTERVAL_S`)")
    recover_interval_s: float = setting(60.0, "beat: expired leases back to pending")
    redispatch_after_s: float = setting(120.0, "beat: a due message this overdue whose queue is empty is published "
                                        "again")
    health_interval_s: float = setting(30.0, "beat: session health checks")
    reconnect_unit_s: float = setting(60.0, "reconnect attempt n waits n units; after the last "
                                      "(`WAQ_RECONNECT_MAX_ATTEMPTS`), an operator is needed")
    reconnect_max_attempts: int = setting(5, "reconnect attempts before a session needs an operator")
    beat_lock_ttl_s: float = setting(
        30.0, "beat: expiry of the beat lock in the broker's Redis, renewed every third by its holder "
        "(`wa_queue/beat_lock.py`); a standby beat takes over within about this long (plus a third) after the holder "
        "dies, within a third of it after a clean stop (which frees the lock) or when it runs on the same host and "
        "sees the holder's process gone; at least 1")
    # WhatsApp Web through Selenium.
    whatsapp_url: str = setting("https://web.whatsapp.com", "WhatsApp Web (the simulator's address in demos and "
                                "tests)")
    headless: bool = setting(True, "run Chromium headless")
    chrome_binary: str = setting("/usr/bin/chromium", "the browser")
    chromedriver: str = setting("/usr/bin/chromedriver", "the browser's driver")
    chrome_user_agent: str = setting("", "the user agent Chrome gives (never `HeadlessChrome`)",
                                     shown="(a desktop Chrome of the installed version)")
    chrome_sandbox: str = setting(
        "auto", "Chrome's sandbox (`wa_queue/transport/sandbox.py`): `on` never passes `--no-sandbox` (Chrome does "
        "not start without a usable sandbox; the session's last error says why); `off` always does (a container "
        "without `deploy/chrome-seccomp.json`); `auto` sandboxes unless running as root or user namespaces are "
        "refused, and logs which and why")
    chat_settle_s: float = setting(1.5, "a chat's rows must hold still this long before the sender concludes a "
                                   "message is not in it")
    selectors_file: str = setting("", "JSON file overriding WhatsApp Web selectors")
    send_timeout_s: float = setting(30.0, "how long one send may wait for the page")
    chrome_recycle_sends: int = setting(200, "restart Chrome on the same profile after this many sends")
    chrome_recycle_hours: float = setting(6.0, "restart Chrome on the same profile after this many hours")
    chrome_max_pss_mb: int = setting(
        0, "restart Chrome on the same profile, between two sends, once its tree (with chromedriver) is over this "
        "many MiB of PSS; read at most every 10 sends or 60 s. Off by default: the recycling by sends already "
        "bounds the growth measured on the simulator, and the real page's footprint differs; set it from what "
        "`waq doctor` shows per session", shown="`0` (off)")
    chrome_memory_options: tuple[str, ...] = setting(
        ("renderer-limit", "in-process-gpu", "network-in-process", "no-site-isolation", "no-omnibox-webui",
         "no-bfcache", "block-media", "small-window"),
        "ways to trim a session's Chrome (`wa_queue/transport/chrome_options.py`): at most one renderer; no GPU "
        "process; the network service inside the browser process; no process per site (the page is one origin); no "
        "hidden renderer for the address bar's popup; no back/forward cache (each `/send?phone=` is a full load, and "
        "the cache kept the pages left behind alive); pictures, media and web fonts the sender never reads (profile "
        "pictures, photos, link previews) blocked through DevTools (not PNG: the QR); a 1024x700 window. "
        "`small-v8-heap` (V8's old space capped at 128 MiB) is off: the real page's heap is larger. Empty: none. "
        "The default is what paid in `bench/browser.py --options` "
        "([benchmarks](benchmarks.md#browser-memory-option-by-option))")
    receipt_follow_s: float = setting(0.0, "follow the delivery ticks this long after a send to record delivered/read "
                                      "(0: off)")
    # API.
    api_keys: tuple[ApiKey, ...] = setting(
        (), "`name:role:key[:callback-secret],...`; roles `producer`, `admin`; names 1-64 letters, digits and "
        "`_ . @ -`, unique; keys of 16 characters or more; a callback secret (32 characters or more) signs the "
        "callbacks of that key's messages instead of `WAQ_CALLBACK_SECRET`; no `:` or `,` inside a key or a secret")
    default_region: str = setting("US", "region for phone numbers written without a country code")
    max_request_bytes: int = setting(2 * 1024 * 1024, "request size cap of the API")
    metrics_token: str = setting("", "bearer token for `/metrics` (besides the admin key)")
    flower_auth: str = setting("", "`user:password` for Flower")
    callback_secret: str = setting(
        "", "HMAC secret signing status callbacks of keys without their own (and of messages of the Python API and "
        "the CLI); 32 characters or more; empty: unsigned")
    rate_requests_per_s: float = setting(
        100.0, "enqueue requests a second each API key may make (one token bucket per key, shared by every API "
        "process through the broker's Redis: `wa_queue/rate_limit.py`); over it the answer is 429 with "
        "`Retry-After`; 0: no limit. `WAQ_KEY_LIMITS` sets it per key")
    rate_messages_per_s: float = setting(
        1000.0, "messages a second each API key may enqueue (a bulk request takes one per item); 0: no limit. The "
        "bucket (this times `WAQ_RATE_BURST_S`) must hold a whole bulk request (1,000)")
    rate_burst_s: float = setting(2.0, "how many seconds of their rate the buckets hold: the burst a key may send "
                                  "at once after a quiet while")
    daily_quota: int = setting(
        0, "messages each API key may enqueue per UTC day, counted by the store in the insert's own write "
        "(`wa_queue/quota.py`); over it the answer is 429 with `Retry-After` until the next UTC midnight, and nothing "
        "of the request is stored; idempotent replays do not count. `WAQ_KEY_LIMITS`' `daily=` sets it per key",
        shown="`0` (no quota)")
    key_limits: tuple[KeyLimits, ...] = setting(
        (), "per-key limits replacing the rates and the daily quota above for that key: "
        "`name:requests=R:messages=M:daily=N,...` (any of them; `daily=0`: no quota for that key; names of "
        "`WAQ_API_KEYS`)", shown="(none)")
    log_phones: bool = setting(False, "log phone numbers in full; otherwise every log line masks them "
                               "(`+9198•••••210`: the first 5 and the last 3 characters, `wa_queue/redact.py`)")
    outbound_allow: AllowList = setting(
        NOTHING_ALLOWED, "comma-separated hosts, IP addresses and CIDR networks that callbacks and the admin webhook "
        "may reach although internal (loopback, private, link-local, ...; the rule: `wa_queue/outbound.py`); a bad "
        "entry stops the process at start. Empty: only public addresses", shown="(none)")
    # Media messages ([media](media.md)).
    media_max_image_mb: float = setting(5.0, "largest image sent as a photo, in MB (10^6 bytes; WhatsApp's Cloud "
                                        "API limit)")
    media_max_video_mb: float = setting(16.0, "largest video, in MB")
    media_max_audio_mb: float = setting(16.0, "largest audio file, in MB")
    media_max_document_mb: float = setting(100.0, "largest document (a photo or video sent as a file included), in "
                                           "MB")
    media_keep_days: float = setting(
        7.0, "how long a file is kept after the last message that names it ended `sent`, `expired` or `cancelled`; "
        "never deleted while one that names it is pending, processing, paused, failed or archived")
    media_upload_ttl_h: float = setting(24.0, "an uploaded file (`POST /api/whatsapp/media`) no message names is "
                                        "kept this long, and its id refused after it")
    media_fetch_timeout_s: float = setting(30.0, "the longest a `media.url` fetch may take, connection included")
    media_upload_kbps: float = setting(
        256.0, "the slowest upload a media send waits for: its time-out is `WAQ_SEND_TIMEOUT_S` plus the file's "
        "size at this rate (KB a second)")
    # Replies and opt-out (docs/opt-out.md).
    opt_out_words: tuple[str, ...] = setting(
        ("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT", "PARAR", "SAIR", "CANCELAR",
         "DESCADASTRAR", "BAJA", "DETENER", "ALTO", "रुको", "बंद", "बंद करो"),
        "a reply whose text, trimmed and case-folded, is one of these puts its number on the suppression list "
        "(Twilio's list, and common Portuguese, Spanish and Hindi words); comma-separated")
    opt_in_words: tuple[str, ...] = setting(
        ("START", "UNSTOP", "INICIAR", "COMEÇAR", "COMECAR", "EMPEZAR", "शुरू"),
        "a reply of one of these takes its number off the suppression list again; comma-separated")
    opt_out_scope: str = setting(
        "all", "what an opt-out blocks: `all` (every message to the number) or `marketing` (only messages of category "
        "`marketing`; `transactional` ones, the default category, still go)")
    opt_out_reply: str = setting(
        "", "a confirmation queued to a number that opted out by a reply (an ordinary message from the session that "
        "read it, paced like any other, the one message the list lets through); empty: none")
    inbound_webhook_url: str = setting(
        "", "receives a signed `message.received` event for each reply recorded, retried as status callbacks are "
        "(through the outbound rule, signed with `WAQ_CALLBACK_SECRET`); empty: none")
    callback_concurrency: int = setting(4, "processes of `waq callbacks`' pool (at least 2; prefork, so that a "
                                        "task's time limit can end a stuck delivery)")
    health_failed_window_s: float = setting(3600.0, "a failure this recent makes `/api/whatsapp/health` say "
                                            "`warning` (older ones are only counted)")
    # The WhatsApp Web simulator (`waq simulator`).
    sim_markup: str = setting("2026-11", "the simulator's markup profile ([simulator](simulator.md))")
    sim_strict: bool = setting(True, "the simulator's strict page, which behaves like the real one")
    sim_boot_delay_s: float = setting(0.0, "the simulator's boot delay of every full page load")
    sim_clock_skew_s: float = setting(0.0, "the seconds every time the simulator's page shows is shifted by "
                                      "(negative: behind)")
    stop_grace_s: float = setting(
        120.0, "`make run` / `make demo`: how long a stop waits for each worker to finish the message in hand "
        "(pacing, number check, send) before it is killed; longer than `WAQ_SEND_TIMEOUT_S`")
    worker_pool: str = setting(
        "threads", "Celery's pool for `waq worker` (always one task at a time): `threads` runs the session in one "
        "Python process whose main thread still answers Flower and `celery inspect` during a send; `solo` is one "
        "process too, but answers nothing while a task (pacing included) runs, so Flower loses the worker; "
        "`prefork` is the former main process plus a child; solo and prefork are kept for comparison "
        "(`bench/pipeline.py`, [benchmarks](benchmarks.md))")

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def longest_retry_s(self) -> float:
        return max(self.retry_delays, default=0.0)

    def key_named(self, name: str | None) -> ApiKey | None:
        """The configured key of this name (names are unique: _validated)."""
        return next((key for key in self.api_keys if key.name == name), None) if name else None

    def callback_secret_for(self, key_name: str | None) -> str:
        """The secret that signs a callback of a message enqueued by `key_name`: the key's own, else the global
        WAQ_CALLBACK_SECRET (also for a key removed since the message was enqueued)."""
        key = self.key_named(key_name)
        return key.callback_secret if key is not None and key.callback_secret else self.callback_secret

    def _key_limits(self, name: str | None) -> KeyLimits | None:
        return next((limits for limits in self.key_limits if limits.name == name), None) if name else None

    def rate_for(self, key_name: str | None) -> Rate:
        """The enqueue rate limits of this key: its WAQ_KEY_LIMITS entry where it sets one, else the defaults."""
        own = self._key_limits(key_name)
        requests = own.requests_per_s if own is not None and own.requests_per_s is not None else None
        messages = own.messages_per_s if own is not None and own.messages_per_s is not None else None
        return Rate(self.rate_requests_per_s if requests is None else requests,
                    self.rate_messages_per_s if messages is None else messages, self.rate_burst_s)

    def daily_quota_for(self, key_name: str | None) -> int:
        """The key's daily message quota (0: none): its WAQ_KEY_LIMITS `daily=` where it sets one, else
        WAQ_DAILY_QUOTA. Messages without a key (the Python API, the CLI) have none."""
        if key_name is None:
            return 0
        own = self._key_limits(key_name)
        return own.daily if own is not None and own.daily is not None else self.daily_quota

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from WAQ_* variables (os.environ by default); raise ConfigError naming the variable."""
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        for field in dataclasses.fields(cls):
            var = "WAQ_" + field.name.upper()
            raw = env.get(var)
            if raw is None or raw == "" and field.name not in _EMPTY_OK:
                continue
            try:
                parser = PARSERS[field.name] if field.name in PARSERS else parser_for(field.type)
                values[field.name] = parser(raw)
            except (ValueError, TypeError) as exc:
                shown = "<hidden>" if field.name in _SECRET_FIELDS else repr(raw)  # start-up errors reach logs
                raise ConfigError(f"{var}={shown}: {exc}") from None
        settings = cls(**values)  # type: ignore[arg-type]
        return settings._with_derived()._validated()

    def _with_derived(self) -> Settings:
        data_dir = Path(self.data_dir).absolute()
        return dataclasses.replace(
            self,
            data_dir=data_dir,
            store_url=self.store_url or f"sqlite:///{data_dir / 'waq.db'}",
            fake_log=self.fake_log if str(self.fake_log) not in ("", ".") else data_dir / "fake-sent.jsonl",
            fake_control=(
                self.fake_control if str(self.fake_control) not in ("", ".") else data_dir / "fake-control.json"
            ),
        )

    def _validated(self) -> Settings:
        def bad(var: str, why: str) -> ConfigError:
            return ConfigError(f"WAQ_{var}: {why}")

        if not self.store_url.startswith(("sqlite:///", "mongodb://", "mongodb+srv://")):
            raise bad("STORE_URL", "accepts sqlite:///<path> or mongodb://host/db")
        if not self.broker_url.startswith(("redis://", "rediss://", "memory://")):
            raise bad("BROKER_URL", "accepts redis://host:port/db")
        if not self.sessions:
            raise bad("SESSIONS", "needs at least one session name")
        for name in self.sessions:
            if not _SESSION_NAME.match(name):
                raise bad("SESSIONS", f"{name!r} is not a session name (lower-case letters, digits, '-', '_')")
        if len(set(self.sessions)) != len(self.sessions):
            raise bad("SESSIONS", "names must be unique")
        if self.min_delay_s < 0 or self.max_delay_s < self.min_delay_s:
            raise bad("MAX_DELAY_S", "must be >= WAQ_MIN_DELAY_S >= 0")
        if self.max_daily_per_session < 1:
            raise bad("MAX_DAILY_PER_SESSION", "must be a whole number >= 1")
        if any(cap < 1 for cap in self.warmup_caps):
            raise bad("WARMUP_CAPS", "caps must be whole numbers >= 1 (an empty value turns warm-up off)")
        if self.warmup_days_per_step < 1:
            raise bad("WARMUP_DAYS_PER_STEP", "must be a whole number of days >= 1")
        if self.max_per_recipient_per_day < 0:
            raise bad("MAX_PER_RECIPIENT_PER_DAY", "must be a whole number >= 0 (0: no limit)")
        if any(d < 0 for d in self.retry_delays):
            raise bad("RETRY_DELAYS", "delays must be >= 0")
        if self.lease_s <= 0:
            raise bad("LEASE_S", "must be > 0 seconds")
        for kind in ("image", "video", "audio", "document"):
            value = getattr(self, f"media_max_{kind}_mb")
            if not 0 < value <= 2000:
                raise bad(f"MEDIA_MAX_{kind.upper()}_MB", "must be more than 0 and at most 2000 (WhatsApp's 2 GB)")
        for var, value in (("MEDIA_KEEP_DAYS", self.media_keep_days), ("MEDIA_UPLOAD_TTL_H", self.media_upload_ttl_h),
                           ("MEDIA_FETCH_TIMEOUT_S", self.media_fetch_timeout_s),
                           ("MEDIA_UPLOAD_KBPS", self.media_upload_kbps)):
            if not value > 0:
                raise bad(var, "must be more than 0")
        words = [w.casefold() for w in self.opt_out_words]
        if set(words) & {w.casefold() for w in self.opt_in_words}:
            raise bad("OPT_IN_WORDS", "shares a word with WAQ_OPT_OUT_WORDS")
        if self.opt_out_scope not in ("all", "marketing"):
            raise bad("OPT_OUT_SCOPE", "must be `all` or `marketing`")
        if len(self.opt_out_reply) > 4096:
            raise bad("OPT_OUT_REPLY", "must be at most 4096 characters (WhatsApp's limit for a text)")
        if self.inbound_webhook_url and not self.inbound_webhook_url.startswith(("https://", "http://")):
            raise bad("INBOUND_WEBHOOK_URL", "must be an http(s) URL")
        if self.max_schedule_days < 1:
            raise bad("MAX_SCHEDULE_DAYS", "must be a whole number of days >= 1")
        if self.default_ttl_s < 0:
            raise bad("DEFAULT_TTL_S", "must be >= 0 seconds (0: messages never expire)")
        if self.archive_after_days < 1:
            raise bad("ARCHIVE_AFTER_DAYS", "must be a whole number of days >= 1")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise bad("TIMEZONE", f"{self.timezone!r} is not an IANA time zone such as Europe/Paris") from None
        from wa_queue.transport.chrome_options import MEMORY_OPTIONS, unknown_options  # no Selenium import

        if unknown_options(self.chrome_memory_options):
            raise bad("CHROME_MEMORY_OPTIONS", f"unknown {', '.join(unknown_options(self.chrome_memory_options))} "
                      f"(known: {', '.join(MEMORY_OPTIONS)}; empty for none)")
        if self.transport not in ("selenium", "fake"):
            raise bad("TRANSPORT", "accepts selenium or fake")
        if self.worker_pool not in WORKER_POOLS:
            raise bad("WORKER_POOL", f"accepts {', '.join(WORKER_POOLS)}")
        if self.chrome_max_pss_mb < 0:
            raise bad("CHROME_MAX_PSS_MB", "must be >= 0 MiB (0: no limit)")
        if self.chrome_sandbox not in ("auto", "on", "off"):
            raise bad("CHROME_SANDBOX", "accepts auto, on or off")
        if self.store_start_timeout_s <= 0:
            raise bad("STORE_START_TIMEOUT_S", "must be > 0 seconds")
        if self.health_failed_window_s <= 0:
            raise bad("HEALTH_FAILED_WINDOW_S", "must be > 0 seconds")
        if self.reconnect_max_attempts < 1:
            raise bad("RECONNECT_MAX_ATTEMPTS", "must be >= 1")
        if self.callback_concurrency < 2:
            raise bad("CALLBACK_CONCURRENCY", "must be >= 2: one slow receiver must not hold every callback")
        if self.beat_lock_ttl_s < 1:
            raise bad("BEAT_LOCK_TTL_S", "must be >= 1 second")
        from wa_queue.simulator.profiles import MARKUPS, MAX_CLOCK_SKEW_S  # Flask-free

        if self.sim_markup not in MARKUPS:
            raise bad("SIM_MARKUP", f"accepts {', '.join(MARKUPS)}")
        if self.sim_boot_delay_s < 0:
            raise bad("SIM_BOOT_DELAY_S", "must be >= 0 seconds")
        if not math.isfinite(self.sim_clock_skew_s) or abs(self.sim_clock_skew_s) > MAX_CLOCK_SKEW_S:
            raise bad("SIM_CLOCK_SKEW_S", f"must be a number of seconds within +-{MAX_CLOCK_SKEW_S:.0f} (negative: the "
                      "page's clock is behind)")
        self._validate_keys(bad)
        self._validate_limits()
        if self.stop_grace_s <= self.send_timeout_s:
            raise bad("STOP_GRACE_S", "must be longer than WAQ_SEND_TIMEOUT_S: a stop lets the send in hand finish")
        return self


    def _validate_keys(self, bad: Callable[[str, str], ConfigError]) -> None:
        """Names unique (they own messages and scope idempotency keys), secrets long enough to be one."""
        names = [key.name for key in self.api_keys]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise bad("API_KEYS", f"key names must be unique; {', '.join(twice)} appear(s) more than once")
        values = [key.key for key in self.api_keys]
        if len(set(values)) != len(values):
            raise bad("API_KEYS", "two entries have the same key; each needs its own")
        if self.callback_secret and len(self.callback_secret) < MIN_SECRET_CHARS:
            raise bad("CALLBACK_SECRET", f"is {len(self.callback_secret)} characters; a signing secret needs at "
                      f"least {MIN_SECRET_CHARS} (empty: callbacks are not signed)")
        for key in self.api_keys:
            if key.callback_secret and len(key.callback_secret) < MIN_SECRET_CHARS:
                raise bad("API_KEYS", f"the callback secret of {key.name!r} is {len(key.callback_secret)} "
                          f"characters; a signing secret needs at least {MIN_SECRET_CHARS}")


    def _validate_limits(self) -> None:
        from wa_queue.validation import MAX_BULK  # validation loads phonenumbers: not at import (see send_window)

        bad = ConfigError
        names = {key.name for key in self.api_keys}
        seen: set[str] = set()
        for limits in self.key_limits:
            if limits.name not in names:
                raise bad(f"WAQ_KEY_LIMITS: {limits.name!r} is not the name of a key of WAQ_API_KEYS")
            if limits.name in seen:
                raise bad(f"WAQ_KEY_LIMITS: {limits.name!r} is given twice")
            seen.add(limits.name)
        if self.daily_quota < 0:
            raise bad("WAQ_DAILY_QUOTA: a daily quota cannot be negative (0: no quota)")
        for limits in self.key_limits:
            if limits.daily is not None and limits.daily < 0:
                raise bad(f"WAQ_KEY_LIMITS: the daily quota of {limits.name!r} cannot be negative (daily=0: no quota)")
        if self.rate_burst_s <= 0:
            raise bad("WAQ_RATE_BURST_S: must be more than 0 (the buckets hold this many seconds of their rate)")
        for name in [None, *sorted(names)]:
            rate = self.rate_for(name)
            where = f"the limits of {name!r} (WAQ_KEY_LIMITS)" if self._key_limits(name) else "WAQ_RATE_MESSAGES_PER_S"
            if rate.requests_per_s < 0 or rate.messages_per_s < 0:
                raise bad(f"{where}: a rate cannot be negative (0 turns it off)")
            if 0 < rate.message_capacity < MAX_BULK:
                raise bad(f"{where}: {rate.messages_per_s:g} messages/s x WAQ_RATE_BURST_S {rate.burst_s:g} s holds "
                          f"{rate.message_capacity:g} messages, fewer than a bulk request may carry ({MAX_BULK}): "
                          "such a request could never pass")


_SECRET_FIELDS = frozenset({"api_keys", "callback_secret", "metrics_token", "flower_auth"})
_EMPTY_OK: frozenset[str] = frozenset({"warmup_caps", "send_window", "chrome_memory_options"})  # empty turns them off


def setting_variables() -> frozenset[str]:
    """Every variable Settings reads."""
    return frozenset("WAQ_" + field.name.upper() for field in dataclasses.fields(Settings))


def unknown_variables(env: Mapping[str, str] | None = None) -> list[tuple[str, str | None]]:
    """(variable, closest known name or None) for each WAQ_* variable nothing reads: a misspelt one is otherwise
    silently ignored. Any case counts (waq_sessions is ignored just the same)."""
    env = os.environ if env is None else env
    known = setting_variables() | READ_ELSEWHERE
    found = []
    for name in sorted(env):
        if name.upper().startswith("WAQ_") and name not in known:
            found.append((name, _closest(name.upper(), known)))
    return found


def _closest(name: str, known: frozenset[str]) -> str | None:
    # A name cut short (its setting has a longer suffix) is the commonest slip; difflib alone prefers a stranger of
    # the same length.
    longer = sorted((k for k in known if k.startswith(name + "_")), key=len)
    if longer:
        return longer[0]
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    return close[0] if close else None


def warn_unknown_variables(env: Mapping[str, str] | None = None) -> list[str]:
    """Log one warning per unknown WAQ_* variable, naming the closest known setting; returns the names."""
    unknown = unknown_variables(env)
    for name, near in unknown:
        log.warning("%s is not a wa-queue setting and is ignored%s", name, f"; did you mean {near}?" if near else "")
    return [name for name, _ in unknown]


def read_settings(env: Mapping[str, str] | None = None) -> Settings:
    """The settings of `env` (default: the process's environment), with one warning per unknown WAQ_* variable. The
    Hub reads them here when it is built (wa_queue/hub.py); nothing is cached: each Hub holds its own."""
    warn_unknown_variables(env)
    return Settings.from_env(env)
