"""The `waq` command line (`waq`, `python -m wa_queue.cli`). Exit codes: 0 done, 1 failed, 2 bad usage.

The group is here; the commands live by kind: processes (worker, beat, callbacks, api, simulator, flower, up), messages
(enqueue, status, failed, archive), batches (cancel, batches), sessions (sessions, selectors, selftest),
replies (inbound, suppressions) and doctor."""

from __future__ import annotations

import click

from wa_queue.cli import batches, doctor, messages, processes, replies, sessions
from wa_queue.cli.output import LazyHub


@click.group()
@click.version_option(package_name="wa-queue")
@click.pass_context
def main(ctx: click.Context) -> None:
    """wa-queue: a WhatsApp message queue that does not lose messages."""
    ctx.ensure_object(LazyHub)  # the Hub of the command, built when it first needs it (a caller may pass its own)
    ctx.call_on_close(ctx.obj.close)


for _module in (processes, messages, batches, sessions, replies, doctor):
    for _command in _module.COMMANDS:
        main.add_command(_command)
