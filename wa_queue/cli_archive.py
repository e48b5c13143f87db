"""`waq archive`: read the archive, where failed messages go after 30 days. Registered in wa_queue/cli.py."""

from __future__ import annotations

import click

from wa_queue.cli_common import settings, with_errors
from wa_queue.cli_ops import echo_failed_page, echo_message, failed_page_options


@click.group()
def archive() -> None:
    """Archived failed messages (read-only): list, show."""


@archive.command("list")
@failed_page_options
@with_errors
def archive_list(session: str | None, error: str | None, page: int, page_size: int, as_json: bool) -> None:
    """Archived messages, newest failure first (filtered like `waq failed list`)."""
    from wa_queue import runtime

    settings()
    messages, total = runtime.store().list_archived(offset=(page - 1) * page_size, limit=page_size, session=session,
                                                    error=error)
    echo_failed_page(messages, total, page, page_size, as_json, "archived")


@archive.command("show")
@click.argument("message_id")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@with_errors
def archive_show(message_id: str, as_json: bool) -> None:
    """One archived message and its history; exit 1 when the archive has no such id."""
    from wa_queue import runtime

    settings()
    echo_message(runtime.store().get_archived(message_id).to_dict(), as_json)


COMMANDS = [archive]
