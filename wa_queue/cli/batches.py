"""`waq cancel` and `waq batches`: stop a message, follow and steer the batches of bulk and CSV enqueues. An
operator's commands: every owner's messages, and the history names the OS user who acted."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from wa_queue.cli.output import current_hub, echo_json, os_user, table, with_errors

if TYPE_CHECKING:
    from wa_queue.batches import BatchAction


@click.command()
@click.argument("message_id")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@with_errors
def cancel(message_id: str, as_json: bool) -> None:
    """Cancel a pending or scheduled message: it is never sent. Exit 1, saying why, when it is being sent, sent,
    in doubt, failed or expired."""
    from wa_queue import operations

    message = operations.cancel(current_hub(), message_id, actor=os_user())
    if as_json:
        echo_json(message.to_dict())
    else:
        click.echo(f"{message.id} {message.status.value}")


@click.group()
def batches() -> None:
    """Batches: list, show, pause, resume, cancel."""


@batches.command("list")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@with_errors
def batches_list(limit: int, as_json: bool) -> None:
    """The most recently started batches with their counts."""
    from wa_queue import operations

    rows = operations.list_batches(current_hub(), owner=None, limit=limit)
    if as_json:
        echo_json(rows)
        return
    click.echo(table([[r["name"], r["started_at"], r["total"], r["counts"]["sent"],
                       r["counts"]["pending"] + r["counts"]["processing"] + r["counts"]["paused"],
                       r["counts"]["failed"] + r["counts"]["expired"] + r["counts"]["cancelled"]] for r in rows],
                     ["batch", "started", "total", "sent", "unsent", "failed/expired/cancelled"]))


@batches.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@with_errors
def batches_show(name: str, as_json: bool) -> None:
    """A batch's counts by status, when it started and sent, and its expected end at the current pace."""
    from wa_queue import operations

    report = operations.batch_report(current_hub(), name, owner=None).to_dict()
    if as_json:
        echo_json(report)
        return
    for key in ("name", "total", "started_at", "first_sent_at", "last_sent_at", "expected_end_at", "paused"):
        click.echo(f"{key:16} {report[key]}")
    click.echo(table([[status, n] for status, n in report["counts"].items() if n], ["status", "messages"]))


def _echo_action(name: str, verb: str, result: dict[str, object], as_json: bool) -> None:
    if as_json:
        echo_json(result)
        return
    left = ", ".join(f"{n} {status}" for status, n in sorted(result["left"].items())) or "none"  # type: ignore
    click.echo(f"batch {name}: {verb} changed {result['changed']} message(s); left as they were: {left}")


def batch_action(verb: str) -> Callable[[Callable[[str], BatchAction]], click.Command]:
    """A `waq batches VERB NAME [--json]` command from the function that acts on the batch named."""
    def decorate(act: Callable[[str], BatchAction]) -> click.Command:
        @click.argument("name")
        @click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
        @with_errors
        def command(name: str, as_json: bool) -> None:
            _echo_action(name, verb, act(name).to_dict(), as_json)

        command.__doc__ = act.__doc__
        return batches.command(verb)(command)

    return decorate


@batch_action("pause")
def batches_pause(name: str) -> BatchAction:
    """Pause a batch's pending messages: none is sent until it resumes (one a worker holds finishes)."""
    from wa_queue import operations

    return operations.pause_batch(current_hub(), name, owner=None, actor=os_user())


@batch_action("resume")
def batches_resume(name: str) -> BatchAction:
    """Resume a batch's paused messages: each is published again when due."""
    from wa_queue import operations

    return operations.resume_batch(current_hub(), name, owner=None, actor=os_user())


@batch_action("cancel")
def batches_cancel(name: str) -> BatchAction:
    """Cancel a batch's pending and paused messages (those in doubt, or held by a worker, are left)."""
    from wa_queue import operations

    return operations.cancel_batch(current_hub(), name, owner=None, actor=os_user())


COMMANDS = [cancel, batches]
