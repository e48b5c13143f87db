"""Helpers shared by the `waq` command modules (wa_queue/cli/): settings, error mapping to exit codes, output."""

from __future__ import annotations

import functools
import getpass
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import click

from wa_queue.errors import ConfigError, IdempotencyConflict, NotFound, StoreError, ValidationError, WaQueueError
from wa_queue.settings import Settings, read_settings

if TYPE_CHECKING:
    from wa_queue.hub import Hub

F = TypeVar("F", bound=Callable[..., Any])


class BadInput(click.ClickException):
    """Input the user must correct: exit 2, like click's own usage errors, but without the usage banner."""

    exit_code = 2


def settings() -> Settings:
    """The running command's settings: its LazyHub's (read once per command), or the environment's outside one."""
    ctx = click.get_current_context(silent=True)
    holder = ctx.find_object(LazyHub) if ctx is not None else None
    try:
        return holder.settings() if holder is not None else read_settings()
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None


class LazyHub:
    """The click context's object: the command's settings and Hub, both made on first use (so `waq --help` and the
    commands that need no store build none) and closed with the context. `settings` replaces the WAQ_* variables
    (a test invoking the command in its own process)."""

    def __init__(self, settings: Settings | None = None) -> None:
        self._settings = settings
        self._hub: Hub | None = None

    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = read_settings()
        return self._settings

    def get(self) -> Hub:
        if self._hub is None:
            from wa_queue.hub import Hub

            self._hub = Hub.build(settings())
        return self._hub

    def close(self) -> None:
        if self._hub is not None:
            self._hub.close()
            self._hub = None


def current_hub() -> Hub:
    """The Hub of the running command (wa_queue/cli/main.py puts a LazyHub on the root context)."""
    ctx = click.get_current_context()
    holder = ctx.find_object(LazyHub)
    if holder is None:  # a command invoked without the `waq` group
        holder = ctx.find_root().ensure_object(LazyHub)
        ctx.find_root().call_on_close(holder.close)
    return holder.get()


def _connection_errors() -> tuple[type[BaseException], ...]:
    """Driver errors that mean 'a service did not answer': exit 1, not a traceback."""
    errors: list[type[BaseException]] = [ConnectionError, TimeoutError, OSError]
    try:
        import redis

        errors.append(redis.exceptions.RedisError)
    except ImportError:  # pragma: no cover - redis is a dependency
        pass
    try:
        import pymongo.errors

        errors.append(pymongo.errors.PyMongoError)
    except ImportError:  # pragma: no cover
        pass
    return tuple(errors)


@contextmanager
def handled() -> Iterator[None]:
    """Map the package's errors to exit codes: bad input 2, everything that failed 1."""
    try:
        yield
    except ValidationError as exc:
        text = str(exc)
        raise BadInput(f"{exc.field}: {text}" if exc.field and not text.startswith(exc.field) else text) from None
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    except IdempotencyConflict as exc:
        raise click.ClickException(str(exc)) from None
    except NotFound as exc:  # the stores raise it with the bare id
        raise click.ClickException(f"no message with id {exc}" if " " not in str(exc) else str(exc)) from None
    except StoreError as exc:  # InvalidTransition and store outages
        raise click.ClickException(str(exc) or type(exc).__name__) from None
    except WaQueueError as exc:
        raise click.ClickException(f"{type(exc).__name__}: {exc}") from None
    except _connection_errors() as exc:
        raise click.ClickException(f"cannot reach a service ({type(exc).__name__}): {exc}") from None


def with_errors(func: F) -> F:
    """Decorator form of handled() for command functions."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with handled():
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def os_user() -> str:
    """Who ran the command, for the message's history."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name and no passwd entry (some containers)
        return f"uid{os.getuid()}"


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    """A plain left-aligned text table (no dependency, pipes well into grep/awk)."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def exec_argv(argv: list[str], env: dict[str, str] | None = None) -> None:
    """Replace this process, so signals (Ctrl-C, SIGTERM) reach the real program."""
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execvpe(argv[0], argv, {**os.environ, **(env or {})})
    except FileNotFoundError:
        raise click.ClickException(f"{argv[0]}: not found on PATH") from None
