"""The commands the deployment files run (services' commands and probes, the image's HEALTHCHECK), checked against
the package without running them: `waq` arguments parse with the real click commands, app specs import."""

from __future__ import annotations

import importlib

import click

from wa_queue.cli import main


def check_waq(args: list[str]) -> None:
    """Parse `waq ...` arguments with the real click commands, without running them: unknown commands or options
    fail here as they would in the container."""
    command: click.Command = main
    ctx = main.make_context("waq", list(args), resilient_parsing=False)
    while isinstance(command, click.Group):
        name, command, rest = command.resolve_command(ctx, ctx.protected_args + ctx.args)
        assert command is not None, f"waq has no command {name!r}"
        ctx = command.make_context(name, rest, parent=ctx)


def check_app_spec(spec: str) -> None:
    """'module:callable()' or 'module:attr' (gunicorn and celery -A) must import."""
    module_name, _, attr = spec.partition(":")
    target = getattr(importlib.import_module(module_name), attr.removesuffix("()"))
    if attr.endswith("()"):
        assert callable(target), f"{spec}: {attr} is not callable"


def check_command(args: list[str]) -> None:
    program = args[0].rsplit("/", 1)[-1]
    if program == "waq":
        check_waq(args[1:])
    elif program == "gunicorn":
        check_app_spec(args[-1])  # gunicorn takes the app as its last argument
    elif program == "celery":
        check_app_spec(args[args.index("-A") + 1])
        assert args[args.index("-A") + 2:][:2] == ["inspect", "ping"], args
    elif program == "python":
        compile(args[args.index("-c") + 1], "<healthcheck>", "exec")
    else:
        raise AssertionError(f"unexpected program {program!r} in {args}")
