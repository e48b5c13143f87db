"""`waq doctor`: check the store, the broker, Chromium, chromedriver, every session and the machine's memory
headroom, and say what to fix."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import click

from wa_queue.cli.output import current_hub, echo_json, settings
from wa_queue.cli.sessions import warmup_text
from wa_queue.settings import Settings

if TYPE_CHECKING:
    from wa_queue.headroom import Headroom
    from wa_queue.hub import Hub

CHECKS = ("store", "broker", "chromium", "chromedriver", "sessions", "headroom")
VERSION_TIMEOUT_S = 30


# ---- doctor ----------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Check:
    name: str
    status: str  # ok | warn | fail | skip (only fail makes the exit code 1)
    detail: str
    fix: str = ""


def redact(url: str) -> str:
    """A URL without its password, for output that may be pasted into a ticket."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def check_store(hub: Hub) -> Check:
    from wa_queue import operations

    s = hub.settings
    url = redact(s.store_url)
    try:
        operations.ping_store(hub)
        counts = operations.queue_counts(hub)
    except Exception as exc:  # noqa: BLE001 - any failure is the finding
        if s.store_url.startswith("sqlite:///"):
            folder = Path(s.store_url[len("sqlite:///"):]).parent
            fix = f"make sure {folder} exists and is writable, or fix WAQ_STORE_URL"
        else:
            fix = ("start MongoDB (on the infra host: docker compose -f deploy/compose.infra.yml up -d; "
                   "or systemctl start mongod) or fix WAQ_STORE_URL")
        return Check("store", "fail", f"{url}: {type(exc).__name__}: {exc}", fix)
    return Check("store", "ok", f"{url}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


def check_broker(hub: Hub) -> Check:
    s = hub.settings
    url = redact(s.broker_url)
    if s.broker_url.startswith("memory://"):
        return Check("broker", "skip", f"{url}: in-process broker, nothing to reach")
    try:
        client = hub.broker
        client.ping()
        version = client.info("server").get("redis_version", "?")
    except Exception as exc:  # noqa: BLE001
        return Check("broker", "fail", f"{url}: {type(exc).__name__}: {exc}",
                     "start Redis (apt-get install redis-server, or on the infra host docker compose -f "
                     "deploy/compose.infra.yml up -d redis) or fix WAQ_BROKER_URL")
    return Check("broker", "ok", f"{url}: Redis {version} answers")


def _version(binary: str) -> tuple[str | None, str]:
    """(version text, error): runs `binary --version`."""
    try:
        done = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=VERSION_TIMEOUT_S,
                              check=False)
    except FileNotFoundError:
        return None, f"{binary} not found"
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"{binary} --version: {type(exc).__name__}: {exc}"
    if done.returncode != 0:
        return None, f"{binary} --version exited {done.returncode}: {(done.stderr or done.stdout).strip()[:200]}"
    return done.stdout.strip(), ""


def _major(version: str | None) -> str | None:
    match = re.search(r"(\d+)\.\d+\.\d+", version or "")
    return match.group(1) if match else None


def check_browser(s: Settings) -> list[Check]:
    if s.transport == "fake":
        why = "WAQ_TRANSPORT=fake: the workers do not start a browser"
        return [Check("chromium", "skip", why), Check("chromedriver", "skip", why)]
    checks = []
    chrome, error = _version(s.chrome_binary)
    checks.append(Check("chromium", "ok", chrome) if chrome else Check(
        "chromium", "fail", error, "apt-get install chromium (or set WAQ_CHROME_BINARY to the browser's path)"))
    driver, error = _version(s.chromedriver)
    if not driver:
        checks.append(Check("chromedriver", "fail", error,
                            "apt-get install chromium-driver (or set WAQ_CHROMEDRIVER to the driver's path)"))
    elif chrome and _major(chrome) != _major(driver):
        # Selenium refuses a driver of another major version: the worker would fail at its first start.
        checks.append(Check("chromedriver", "fail", f"{driver} does not match {chrome}",
                            "install matching versions: apt-get install --only-upgrade chromium chromium-driver"))
    else:
        checks.append(Check("chromedriver", "ok", driver))
    return checks


def _session_fix(name: str, view: dict[str, Any], age_s: float | None, stale_s: float) -> str:
    if age_s is None:
        return f"no worker has reported: start `waq worker --session {name}` (and `waq beat`, which schedules checks)"
    if age_s > stale_s:
        return f"its worker stopped reporting {age_s:.0f}s ago: check `waq worker --session {name}` and `waq beat`"
    if view.get("hint"):  # the worker said why (sessions.error_hint)
        return view["hint"] + (f"; then `waq sessions restart {name}`" if view["needs_operator"] else "")
    if view["status"] in ("qr", "logged_out") or view["needs_operator"]:
        return (f"scan the QR: `waq sessions qr {name} --out qr.png`, then WhatsApp > Linked devices; "
                f"then `waq sessions restart {name}`")
    if view["status"] == "phone_disconnected":
        return "the phone is offline: connect it to the internet and keep WhatsApp open"
    return f"`waq sessions restart {name}`; if it persists, see the worker's log"


def check_sessions(hub: Hub) -> list[Check]:
    from wa_queue import operations

    s = hub.settings
    try:
        overview = operations.sessions_overview(hub)
    except Exception as exc:  # noqa: BLE001
        return [Check("sessions", "fail", f"cannot read the sessions: {type(exc).__name__}: {exc}",
                      "fix the store check first")]
    now = hub.clock()
    stale_s = 3 * s.health_interval_s + 5  # as sessions.heartbeat_fresh
    checks = []
    for name, view in overview.items():
        beat = view["heartbeat_at"]
        age_s = (now - datetime.fromisoformat(beat)).total_seconds() if beat else None
        detail = (f"{view['status']}, heartbeat " + (f"{age_s:.0f}s ago" if age_s is not None else "never")
                  + f", sent today {view['sends_today']}/{view['daily_cap']}, warm-up {warmup_text(view['warmup'])}")
        if view.get("last_error"):
            detail += f", last error: {view['last_error']}"
        offset = view.get("page_clock_offset_s")
        if offset is not None:
            detail += f", page clock {offset:+.0f}s"
        clock = view.get("clock_warning")
        if view["connected"] and clock:
            checks.append(Check(f"session {name}", "warn", detail, clock.split(": ", 1)[1]))
        elif view["connected"]:
            checks.append(Check(f"session {name}", "ok", detail))
        else:
            checks.append(Check(f"session {name}", "fail", detail, _session_fix(name, view, age_s, stale_s)))
    return checks


def check_headroom(measured: Headroom | None = None) -> Check:
    """This machine's memory (wa_queue/headroom.py): the session workers running here, each one's PSS (its Python
    process and its Chrome tree), MemAvailable and how many more sessions fit at their mean footprint. Fails when
    MemAvailable is below one mean session (the next Chrome to grow meets the OOM killer); warns when no other session
    fits with headroom.DEFAULT_RESERVE_KIB kept free, or when a dead worker's Chrome still holds memory."""
    from wa_queue import headroom

    try:
        h = measured or headroom.measure()
    except OSError as exc:  # no /proc (not Linux)
        return Check("headroom", "skip", f"cannot read the machine's memory: {exc}")
    mib = 1024
    detail = f"MemAvailable {h.mem_available_kib // mib} of {h.mem_total_kib // mib} MiB"
    fixes = []
    status = "ok"
    mean = h.mean_pss_kib
    if mean is None:
        detail = "no session worker runs here; " + detail
    else:
        each = ", ".join(f"{s.name} (pid {s.pid}) {s.pss_kib // mib} MiB" for s in h.sessions)
        detail = (f"{len(h.sessions)} session(s) here, {h.total_pss_kib // mib} MiB PSS in all: {each}; {detail}; "
                  f"about {h.more_sessions} more fit at {mean // mib} MiB each, "
                  f"keeping {h.reserve_kib // mib} MiB free")
        if h.mem_available_kib < mean:
            status = "fail"
            fixes.append("the machine is full: move a session to another host (or add memory), or set "
                         "WAQ_CHROME_MAX_PSS_MB so a grown Chrome is recycled")
        elif h.more_sessions == 0:
            status = "warn"
            fixes.append("no room for another session here: start the next one on another host")
    if h.stray_pids:
        status = "warn" if status == "ok" else status
        detail += f"; {len(h.stray_pids)} browser process(es) of no running worker, {h.stray_pss_kib // mib} MiB"
        fixes.append(f"a dead worker's Chrome: kill {' '.join(map(str, h.stray_pids))}")
    return Check("headroom", status, detail, "; ".join(fixes))


@click.command()
@click.option("--check", "only", multiple=True, type=click.Choice(CHECKS),
              help="Run only these checks (repeatable); all by default.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def doctor(only: tuple[str, ...], as_json: bool) -> None:
    """Check the store, the broker, Chromium, chromedriver, every session and this machine's memory headroom; say what
    to fix. Exit 1 on a failure."""
    s = settings()
    wanted = set(only or CHECKS)
    checks: list[Check] = []
    if "store" in wanted:
        checks.append(check_store(current_hub()))
    if "broker" in wanted:
        checks.append(check_broker(current_hub()))
    if wanted & {"chromium", "chromedriver"}:
        checks += [c for c in check_browser(s) if c.name in wanted]
    if "sessions" in wanted:
        checks += check_sessions(current_hub())
    if "headroom" in wanted:
        checks.append(check_headroom())
    ok = all(c.status != "fail" for c in checks)
    if as_json:
        echo_json({"ok": ok, "checks": [dataclasses.asdict(c) for c in checks]})
    else:
        for c in checks:
            click.echo(f"{c.status.upper():5} {c.name:18} {c.detail}")
            if c.fix:
                click.echo(f"{'':5} {'':18} fix: {c.fix}")
        click.echo("all checks passed" if ok else "some checks failed")
    sys.exit(0 if ok else 1)


COMMANDS = [doctor]
