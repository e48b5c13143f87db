"""The `waq` command line. Exit codes: 0 done, 1 failed, 2 bad usage.

This module is the entry point (`waq`, `python -m wa_queue.cli`) and holds the process commands (worker, beat, api,
simulator); the operator commands live in cli_ops.py and cli_infra.py and are registered at the bottom."""

from __future__ import annotations

import os
import sys

import click

from wa_queue import names
from wa_queue.errors import ConfigError, StoreError
from wa_queue.settings import Settings, get_settings


def _settings() -> Settings:
    try:
        return get_settings()
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None


def _exec(argv: list[str], env: dict[str, str] | None = None) -> None:
    """Replace this process, so signals (Ctrl-C, SIGTERM) reach the real program."""
    sys.stdout.flush()
    os.execvpe(argv[0], argv, {**os.environ, **(env or {})})


@click.group()
@click.version_option(package_name="wa-queue")
def main() -> None:
    """wa-queue: a WhatsApp message queue that does not lose messages."""


@main.command()
@click.option("--session", "session", required=True, help="The WhatsApp session this worker drives.")
@click.option("--loglevel", default="INFO", show_default=True)
@click.option("--check", is_flag=True,
              help="Do not start: exit 0 if the session's worker is healthy (fresh heartbeat, browser connected), "
                   "1 if not, with one line saying why. For container health checks.")
def worker(session: str, loglevel: str, check: bool) -> None:
    """Run the Celery worker of one session: its own queue and wa.default, one message at a time. It starts only
    once the store answers (for up to WAQ_STORE_START_TIMEOUT_S), and exits 1 otherwise."""
    settings = _settings()
    if session not in settings.sessions:
        raise click.UsageError(f"unknown session {session!r}; WAQ_SESSIONS has: {', '.join(settings.sessions)}")
    if check:
        healthy, line = _worker_health(settings, session)
        click.echo(line)
        sys.exit(0 if healthy else 1)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    _store_or_exit(settings, f"worker {session}")
    queues = f"{names.session_queue(session)},{names.DEFAULT_QUEUE}"
    _exec(
        [sys.executable, "-m", "celery", "-A", "wa_queue.celery_app:app", "worker", "-Q", queues,
         "-n", f"{session}@%h", "--concurrency", "1", "--pool", "prefork", "--loglevel", loglevel,
         "--without-gossip", "--without-mingle"],
        {"WAQ_WORKER_SESSION": session},
    )


def _store_or_exit(settings: Settings, what: str) -> None:
    """Celery is started only with a store that answers; otherwise exit 1 naming the setting. A worker or beat
    without its store would consume tasks it can only fail, while its Celery process looks healthy."""
    from wa_queue.cli_infra import redact
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


def _worker_health(settings: Settings, session: str) -> tuple[bool, str]:
    """The session as its worker last recorded it: heartbeat age (fresh within three health intervals) and the
    browser's state. Judged by cli_infra.check_sessions, as `waq doctor` does; a Celery ping cannot tell this (the
    parent process answers it while Chrome is dead)."""
    from wa_queue.cli_infra import check_sessions

    found = [c for c in check_sessions(settings) if c.name in (f"session {session}", "sessions")]
    if not found:
        return False, f"session {session}: no record"
    result = found[0]
    line = f"{result.name} {result.status}: {result.detail}" + (f"; fix: {result.fix}" if result.fix else "")
    return result.status == "ok", line


@main.command()
@click.option("--loglevel", default="INFO", show_default=True)
def beat(loglevel: str) -> None:
    """Run beat (the periodic jobs) inside a worker for wa.maintenance and wa.callbacks. Start as many as you like:
    one holds the beat lock and sends the jobs, the others wait for it (wa_queue/beat_lock.py). Like a session
    worker, it starts only once the store answers (for up to WAQ_STORE_START_TIMEOUT_S), and exits 1 otherwise."""
    settings = _settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    _store_or_exit(settings, "beat")
    from wa_queue import recovery, runtime
    from wa_queue.models import utcnow

    # Stuck work comes back at start too, not only after the first interval.
    try:
        recovery.recover_stuck(runtime.store(), settings, utcnow())
    except Exception as exc:  # noqa: BLE001 - the scheduled job retries; beat must still start
        click.echo(f"start-up recovery failed: {exc}", err=True)
    runtime.reset()
    _exec(
        [sys.executable, "-m", "celery", "-A", "wa_queue.celery_app:app", "worker", "-B",
         "-Q", f"{names.MAINTENANCE_QUEUE},{names.CALLBACK_QUEUE}", "-n", "beat@%h", "--concurrency", "1",
         "-s", str(settings.data_dir / "celerybeat-schedule"), "--scheduler", "wa_queue.beat_lock:LockedScheduler",
         "--loglevel", loglevel,
         "--without-gossip", "--without-mingle"],
    )


@main.command()
@click.option("--port", default=8000, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
def api(port: int, host: str) -> None:
    """Run the REST API with Flask's development server (gunicorn in production: see the Procfile)."""
    _settings()
    from api.app import create_app

    create_app().run(host=host, port=port, threaded=True)


@main.command()
@click.option("--port", default=8090, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--auto-scan", is_flag=True, help="Log every browser in by itself (demos and tests).")
@click.option("--markup", default=None, help="Markup profile of the message rows (default: WAQ_SIM_MARKUP).")
@click.option("--lenient", is_flag=True, help="The old immediate page instead of the strict one (WAQ_SIM_STRICT).")
def simulator(port: int, host: str, auto_scan: bool, markup: str | None, lenient: bool) -> None:
    """Run the local WhatsApp Web simulator."""
    from wa_queue.simulator.app import serve
    from wa_queue.simulator.profiles import check_markup

    settings = _settings()
    try:
        markup = check_markup(markup or settings.sim_markup)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--markup") from None
    serve(port, host=host, auto_scan=auto_scan, markup=markup, strict=settings.sim_strict and not lenient,
          config={"boot_delay_s": settings.sim_boot_delay_s})


def _register() -> None:
    from wa_queue import cli_archive, cli_infra, cli_ops

    for command in [*cli_ops.COMMANDS, *cli_archive.COMMANDS, *cli_infra.COMMANDS]:
        main.add_command(command)


_register()


if __name__ == "__main__":
    main()
