"""Flower (the Celery monitoring UI and API): the command line that starts it, with basic auth.

    argv = flower_argv(settings, port)             # exec it (the `waq flower` command)
    env  = flower_env(settings)                    # add to the environment of that process

Decisions:
  - Basic auth comes from WAQ_FLOWER_AUTH=user:password and is required: flower_argv() raises ConfigError when it
    is missing or malformed. Flower shows task arguments (phone numbers) and can revoke tasks and shut workers
    down, so an open Flower is refused unless the caller passes unauthenticated=True (the CLI's explicit
    `--unauthenticated` flag, for a laptop). Flower's own API is disabled without auth anyway.
  - By default the credentials are on the command line (`--basic-auth=user:pass`), so the argv alone always
    starts a protected Flower. Any local user can read a command line in `ps`, so the CLI should prefer
    auth_in_env=True, which leaves them out of argv, and merge flower_env() (FLOWER_BASIC_AUTH) into the
    environment of the process it execs.
  - Flower binds 127.0.0.1 by default; put a TLS proxy in front to expose it (basic auth is cleartext).
  - Flower splits FLOWER_BASIC_AUTH/--basic-auth on commas, so a password may not contain one.
  - Flower lists workers from `inspect` replies, refreshed when it starts and on `GET /api/workers?refresh=1`,
    and follows tasks through worker events. Workers start with task events off (they are costly for a session
    worker); Flower turns them on with the enable_events control command every 5 s while it runs.
  - Flower serves /metrics without its own auth (its Metrics handler is not @authenticated), and those metrics name
    the workers, tasks and queues. So the argv runs `python -m wa_queue.devstack.flower` (main() below): Celery's own
    command line after protect_metrics() has put /metrics behind the same check as every other page (Prometheus
    scrapes it with basic_auth). /healthcheck ("OK") stays open for the container probe. A Flower whose /metrics
    is routed elsewhere refuses to start rather than serve it open.
"""

from __future__ import annotations

import sys

from wa_queue.errors import ConfigError
from wa_queue.settings import Settings

APP = "wa_queue.celery_app:app"
DEFAULT_ADDRESS = "127.0.0.1"
AUTH_ENV = "FLOWER_BASIC_AUTH"


def parse_flower_auth(raw: str) -> tuple[str, str]:
    """'user:password' -> (user, password); ConfigError naming WAQ_FLOWER_AUTH otherwise."""
    user, sep, password = raw.partition(":")
    if not sep or not user or not password:
        raise ConfigError("WAQ_FLOWER_AUTH: accepts user:password (both non-empty)")
    if "," in raw:
        raise ConfigError("WAQ_FLOWER_AUTH: may not contain ',' (Flower reads a comma as a list separator)")
    if len(password) < 8:
        raise ConfigError("WAQ_FLOWER_AUTH: the password must be at least 8 characters")
    return user, password


def flower_argv(settings: Settings, port: int, *, address: str = DEFAULT_ADDRESS, unauthenticated: bool = False,
                auth_in_env: bool = False) -> list[str]:
    """`python -m wa_queue.devstack.flower -A wa_queue.celery_app:app flower --port=N --address=A
    [--basic-auth=user:pass]`
    (Celery's command line, with /metrics protected: see main())."""
    if not 0 < int(port) < 65536:
        raise ConfigError(f"flower port {port!r} is not a TCP port")
    argv = [sys.executable, "-m", "wa_queue.devstack.flower", "-A", APP, "flower", f"--port={int(port)}",
            f"--address={address}",
            # Flower's default inspect timeout (1 s) is short for a worker busy driving Chrome.
            "--inspect_timeout=5000", "--purge_offline_workers=3600"]
    if settings.flower_auth:
        parse_flower_auth(settings.flower_auth)
        if not auth_in_env:
            argv.append(f"--basic-auth={settings.flower_auth}")
    elif not unauthenticated:
        raise ConfigError("WAQ_FLOWER_AUTH is not set: Flower would be open to anyone who reaches its port. Set "
                          "WAQ_FLOWER_AUTH=user:password, or start it explicitly unauthenticated.")
    return argv


def flower_env(settings: Settings) -> dict[str, str]:
    """Environment additions for the Flower process (the basic-auth credentials, kept out of argv)."""
    if not settings.flower_auth:
        return {}
    parse_flower_auth(settings.flower_auth)
    return {AUTH_ENV: settings.flower_auth}


def protect_metrics() -> None:
    """Make Flower's /metrics ask for the same credentials as its other pages (idempotent).

    tornado's @authenticated runs Flower's BaseHandler.get_current_user, which answers 401 to a missing or wrong
    basic-auth header, lets everyone in when Flower runs without auth, and checks the cookie under OAuth."""
    import tornado.web
    from flower import urls
    from flower.views import monitor
    from tornado.routing import URLSpec

    routes = [(spec.regex.pattern, spec.target) if isinstance(spec, URLSpec) else tuple(spec[:2])
              for spec in urls.handlers]
    routed = [handler for pattern, handler in routes if pattern.rstrip("$") == "/metrics"]
    if routed != [monitor.Metrics]:
        # Fail closed: a Flower that serves /metrics from another handler would serve it open.
        raise ConfigError(f"this Flower routes /metrics to {routed!r}, not flower.views.monitor.Metrics: "
                          "wa_queue.devstack.flower.protect_metrics must be updated for it")
    if getattr(monitor.Metrics.get, "_waq_protected", False):
        return
    protected = tornado.web.authenticated(monitor.Metrics.get)
    protected._waq_protected = True  # type: ignore[attr-defined]
    monitor.Metrics.get = protected


def main() -> None:
    """`python -m wa_queue.devstack.flower <celery arguments>`: Celery's command line, with Flower's /metrics
    protected."""
    protect_metrics()
    from celery.__main__ import main as celery_main

    celery_main()


if __name__ == "__main__":
    main()
