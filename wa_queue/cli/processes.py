"""The process commands of `waq`: worker, beat, api, simulator, flower and up. Each replaces itself with the real
program (exec), so signals (Ctrl-C, SIGTERM) reach it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from wa_queue import names
from wa_queue.cli.output import current_hub, exec_argv, handled
from wa_queue.cli.output import settings as load_settings
from wa_queue.errors import StoreError
from wa_queue.private import private_dir
from wa_queue.settings import Settings

if TYPE_CHECKING:
    from wa_queue.hub import Hub


@click.command()
@click.option("--session", "session", required=True, help="The WhatsApp session this worker drives.")
@click.option("--loglevel", default="INFO", show_default=True)
@click.option("--check", is_flag=True,
              help="Do not start: exit 0 if the session's worker is healthy (fresh heartbeat, browser connected), "
                   "1 if not, with one line saying why. For container health checks.")
def worker(session: str, loglevel: str, check: bool) -> None:
    """Run the Celery worker of one session: its own queue and wa.default, one message at a time, in Celery's pool
    WAQ_WORKER_POOL (threads: one process). It starts only once the store answers (for up to
    WAQ_STORE_START_TIMEOUT_S), and exits 1 otherwise."""
    settings = load_settings()
    if session not in settings.sessions:
        raise click.UsageError(f"unknown session {session!r}; WAQ_SESSIONS has: {', '.join(settings.sessions)}")
    if check:
        healthy, line = _worker_health(current_hub(), session)
        click.echo(line)
        sys.exit(0 if healthy else 1)
    private_dir(settings.data_dir)
    _store_or_exit(settings, f"worker {session}")
    queues = f"{names.session_queue(session)},{names.DEFAULT_QUEUE}"
    exec_argv(
        [sys.executable, "-m", "celery", "-A", "wa_queue.celery_app:app", "worker", "-Q", queues,
         "-n", f"{session}@%h", "--concurrency", "1", "--pool", settings.worker_pool, "--loglevel", loglevel,
         "--without-gossip", "--without-mingle"],
        {"WAQ_WORKER_SESSION": session},
    )


def _store_or_exit(settings: Settings, what: str) -> None:
    """Celery is started only with a store that answers; otherwise exit 1 naming the setting. A worker or beat
    without its store would consume tasks it can only fail, while its Celery process looks healthy."""
    from wa_queue.cli.doctor import redact
    from workers.runtime import wait_for_store

    def retrying(attempt: int, exc: Exception) -> None:
        if attempt == 1:  # one line, not one per second
            click.echo(f"{what}: the store does not answer yet ({type(exc).__name__}: {exc}); retrying "
                       f"for up to {settings.store_start_timeout_s:g} s (WAQ_STORE_START_TIMEOUT_S)", err=True)

    try:
        wait_for_store(settings, on_retry=retrying)
    except StoreError as exc:
        click.echo(f"{what} not started: {exc}. Check WAQ_STORE_URL={redact(settings.store_url)}",
                   err=True)
        sys.exit(1)


def _worker_health(hub: Hub, session: str) -> tuple[bool, str]:
    """The session as its worker last recorded it: heartbeat age (fresh within three health intervals) and the
    browser's state. Judged by cli.doctor.check_sessions, as `waq doctor` does; a Celery ping cannot tell this (the
    parent process answers it while Chrome is dead)."""
    from wa_queue.cli.doctor import check_sessions

    found = [c for c in check_sessions(hub) if c.name in (f"session {session}", "sessions")]
    if not found:
        return False, f"session {session}: no record"
    result = found[0]
    line = f"{result.name} {result.status}: {result.detail}" + (f"; fix: {result.fix}" if result.fix else "")
    return result.status == "ok", line


@click.command()
@click.option("--loglevel", default="INFO", show_default=True)
def beat(loglevel: str) -> None:
    """Run beat (the periodic jobs) inside a worker for wa.maintenance (status callbacks: `waq callbacks`). Start as
    many as you like:
    one holds the beat lock and sends the jobs, the others wait for it (wa_queue/beat_lock.py). Like a session
    worker, it starts only once the store answers (for up to WAQ_STORE_START_TIMEOUT_S), and exits 1 otherwise."""
    settings = load_settings()
    private_dir(settings.data_dir)
    _store_or_exit(settings, "beat")
    from wa_queue import operations

    # Stuck work comes back at start too, not only after the first interval.
    try:
        operations.recover_stuck(current_hub())
    except Exception as exc:  # noqa: BLE001 - the scheduled job retries; beat must still start
        click.echo(f"start-up recovery failed: {exc}", err=True)
    click.get_current_context().find_root().close()  # this process becomes Celery: nothing of it may be inherited
    exec_argv(
        [sys.executable, "-m", "celery", "-A", "wa_queue.celery_app:app", "worker", "-B",
         "-Q", names.MAINTENANCE_QUEUE, "-n", "beat@%h", "--concurrency", "1",
         "-s", str(settings.data_dir / "celerybeat-schedule"), "--scheduler", "wa_queue.beat_lock:LockedScheduler",
         "--loglevel", loglevel,
         "--without-gossip", "--without-mingle"],
    )


@click.command()
@click.option("--loglevel", default="INFO", show_default=True)
def callbacks(loglevel: str) -> None:
    """Deliver status callbacks: a worker for wa.callbacks alone, WAQ_CALLBACK_CONCURRENCY processes (prefork, so
    that the task's time limit can end a stuck delivery). Apart from beat, whose jobs must never wait behind a slow
    receiver. Start as many as you like (one per app host)."""
    settings = load_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    _store_or_exit(settings, "callbacks")  # a refused callback is recorded on its message
    click.get_current_context().find_root().close()
    exec_argv(
        [sys.executable, "-m", "celery", "-A", "wa_queue.celery_app:app", "worker", "-Q", names.CALLBACK_QUEUE,
         "-n", "callbacks@%h", "--concurrency", str(settings.callback_concurrency), "--pool", "prefork",
         "--loglevel", loglevel, "--without-gossip", "--without-mingle"],
    )


@click.command()
@click.option("--port", default=8000, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
def api(port: int, host: str) -> None:
    """Run the REST API with Flask's development server (gunicorn in production: see the Procfile)."""
    load_settings()
    from api.app import create_app

    create_app(current_hub()).run(host=host, port=port, threaded=True)


@click.command()
@click.option("--port", default=8090, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--auto-scan", is_flag=True, help="Log every browser in by itself (demos and tests).")
@click.option("--markup", default=None, help="Markup profile of the message rows (default: WAQ_SIM_MARKUP).")
@click.option("--lenient", is_flag=True, help="The old immediate page instead of the strict one (WAQ_SIM_STRICT).")
@click.option("--clock-skew-s", type=float, default=None,
              help="Shift every time the page shows, in seconds, negative: behind (default: WAQ_SIM_CLOCK_SKEW_S).")
@click.option("--unsafe-listen", is_flag=True,
              help="Allow a --host that is not loopback: the control API has no authentication.")
def simulator(port: int, host: str, auto_scan: bool, markup: str | None, lenient: bool,
              clock_skew_s: float | None, unsafe_listen: bool) -> None:
    """Run the local WhatsApp Web simulator (on loopback unless --unsafe-listen)."""
    from wa_queue.simulator.listen import UnsafeListen, check_listen_host

    try:
        check_listen_host(host, unsafe_listen)  # before Flask is imported: a refusal is quick
    except UnsafeListen as exc:
        raise click.BadParameter(str(exc), param_hint="--host") from None
    from wa_queue.simulator.app import serve
    from wa_queue.simulator.profiles import check_markup
    from wa_queue.simulator.state import SimError, check_clock_skew

    settings = load_settings()
    try:
        markup = check_markup(markup or settings.sim_markup)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--markup") from None
    try:
        skew = check_clock_skew(settings.sim_clock_skew_s if clock_skew_s is None else clock_skew_s)
    except SimError as exc:
        raise click.BadParameter(str(exc), param_hint="--clock-skew-s") from None
    serve(port, host=host, auto_scan=auto_scan, markup=markup, strict=settings.sim_strict and not lenient,
          config={"boot_delay_s": settings.sim_boot_delay_s}, clock_skew_s=skew, unsafe_listen=unsafe_listen)


@click.command()
@click.option("--port", default=5555, show_default=True, type=click.IntRange(1, 65535))
@click.option("--address", default="127.0.0.1", show_default=True,
              help="Interface to listen on (0.0.0.0 in a container; put a TLS proxy in front).")
@click.option("--unauthenticated", is_flag=True, help="Start without WAQ_FLOWER_AUTH (a laptop only).")
def flower(port: int, address: str, unauthenticated: bool) -> None:
    """Run Flower (the Celery monitoring UI) on the broker, with WAQ_FLOWER_AUTH (user:password) as basic auth."""
    from wa_queue.devstack import flower as module

    s = load_settings()
    with handled():  # a missing or malformed WAQ_FLOWER_AUTH is a ConfigError: exit 2
        # The credentials go in the environment, not argv: any local user can read a command line in `ps`.
        argv = module.flower_argv(s, port, address=address, unauthenticated=unauthenticated, auth_in_env=True)
        env = module.flower_env(s)
    exec_argv(argv, env)


@click.command()
@click.option("--procfile", default="Procfile", show_default=True,
              type=click.Path(dir_okay=False, path_type=Path), help="The Procfile to run.")
def up(procfile: Path) -> None:
    """Run every process of the Procfile (api, workers, beat, flower) through honcho; Ctrl-C stops them all."""
    s = load_settings()
    if not procfile.is_file():
        raise click.UsageError(f"{procfile} not found: run `waq up` in the project folder or pass --procfile")
    with handled():
        private_dir(s.data_dir)  # the SQLite store, Chrome profiles and beat's schedule
    exec_argv([sys.executable, "-m", "honcho", "-f", str(procfile), "start"])


COMMANDS = [worker, beat, callbacks, api, simulator, flower, up]
