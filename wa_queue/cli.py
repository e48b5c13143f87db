"""The `waq` command line. Exit codes: 0 done, 1 failed, 2 bad usage.

This module is the entry point (`waq`, `python -m wa_queue.cli`) and holds the process commands (worker, beat, api,
simulator); the operator commands live in cli_ops.py and cli_infra.py and are registered at the bottom."""

from __future__ import annotations

import os
import sys

import click

from wa_queue import names
from wa_queue.errors import ConfigError
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
def worker(session: str, loglevel: str) -> None:
    """Run the Celery worker of one session: its own queue and wa.default, one message at a time."""
    settings = _settings()
    if session not in settings.sessions:
        raise click.UsageError(f"unknown session {session!r}; WAQ_SESSIONS has: {', '.join(settings.sessions)}")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    queues = f"{names.session_queue(session)},{names.DEFAULT_QUEUE}"
    _exec(
        [sys.executable, "-m", "celery", "-A", "wa_queue.celery_app:app", "worker", "-Q", queues,
         "-n", f"{session}@%h", "--concurrency", "1", "--pool", "prefork", "--loglevel", loglevel,
         "--without-gossip", "--without-mingle"],
        {"WAQ_WORKER_SESSION": session},
    )


@main.command()
@click.option("--loglevel", default="INFO", show_default=True)
def beat(loglevel: str) -> None:
    """Run beat (the periodic jobs) inside a worker for wa.maintenance and wa.callbacks. Start as many as you like:
    one holds the beat lock and sends the jobs, the others wait for it (wa_queue/beat_lock.py)."""
    settings = _settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
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
