"""`waq inbound` (the replies the sessions read) and `waq suppressions` (the numbers nothing is sent to: list, add,
remove, import an existing opt-out list). An operator's commands; each entry made here records the OS user
(`cli:<user>`)."""

from __future__ import annotations

import csv
from pathlib import Path

import click

from wa_queue.cli.output import current_hub, echo_json, os_user, table, with_errors
from wa_queue.errors import ValidationError

MAX_IMPORT_ROWS = 1_000_000


@click.group()
def suppressions() -> None:
    """The suppression list: list, log, add, remove, import FILE.csv."""


@suppressions.command("list")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@click.option("--offset", type=click.IntRange(0), default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@with_errors
def suppressions_list(limit: int, offset: int, as_json: bool) -> None:
    """The list, newest first."""
    from wa_queue import operations

    entries, total = operations.list_suppressions(current_hub(), limit=limit, offset=offset)
    if as_json:
        echo_json({"items": [e.to_dict() for e in entries], "total": total})
        return
    rows = [(e.phone, e.since.isoformat(timespec="seconds"), e.by, e.session or "-", e.word or "-") for e in entries]
    click.echo(table(rows, ["phone", "since", "by", "session", "word"]))
    click.echo(f"{len(entries)} of {total}")


@suppressions.command("log")
@click.option("--phone", default=None, help="Only this number's changes.")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@click.option("--offset", type=click.IntRange(0), default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@with_errors
def suppressions_log(phone: str | None, limit: int, offset: int, as_json: bool) -> None:
    """Who put numbers on the list or took them off, and when, newest first (entries removed since included)."""
    from wa_queue import operations

    changes, total = operations.suppression_log(current_hub(), phone=phone, limit=limit, offset=offset)
    if as_json:
        echo_json({"items": [c.to_dict() for c in changes], "total": total})
        return
    rows = [(c.at.isoformat(timespec="seconds"), c.phone, c.change.value, c.by, c.session or "-", c.word or "-")
            for c in changes]
    click.echo(table(rows, ["at", "phone", "change", "by", "session", "word"]))
    click.echo(f"{len(changes)} of {total}")


@suppressions.command("add")
@click.argument("phone")
@with_errors
def suppressions_add(phone: str) -> None:
    """Put PHONE on the list: refused at enqueue from now on, and queued messages to it are cancelled unsent."""
    from wa_queue import operations

    added = operations.add_suppression(current_hub(), phone, by=f"cli:{os_user()}")
    click.echo(f"{phone}: {'added' if added else 'already on the list'}")


@suppressions.command("remove")
@click.argument("phone")
@with_errors
def suppressions_remove(phone: str) -> None:
    """Take PHONE off the list (exit 1 when it was not on it)."""
    from wa_queue import operations

    if not operations.remove_suppression(current_hub(), phone, by=f"cli:{os_user()}"):
        raise click.ClickException(f"{phone} is not on the suppression list")
    click.echo(f"{phone}: removed")


@suppressions.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@with_errors
def suppressions_import(path: Path) -> None:
    """Add every number of a CSV file with a `phone` column (other columns are ignored). Every row is checked
    first: one bad number, and nothing is added, each bad row named with its line."""
    from wa_queue import operations
    from wa_queue.validation import validate_phone

    hub = current_hub()
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or "phone" not in [f.strip().lower() for f in reader.fieldnames]:
            raise ValidationError(f"{path.name}: the first row must name the columns, one of them `phone`", "phone")
        column = next(f for f in reader.fieldnames if f.strip().lower() == "phone")
        phones: list[str] = []
        problems: list[str] = []
        for row in reader:
            if len(phones) + len(problems) >= MAX_IMPORT_ROWS:
                raise ValidationError(f"{path.name}: more than {MAX_IMPORT_ROWS} rows", "phone")
            try:
                phones.append(validate_phone(row.get(column) or "", hub.settings.default_region))
            except ValidationError as exc:
                problems.append(f"line {reader.line_num}: {exc}")
    if problems:
        listed = "; ".join(problems[:20]) + (f"; and {len(problems) - 20} more" if len(problems) > 20 else "")
        raise ValidationError(f"{path.name}: nothing imported, {len(problems)} bad row(s): {listed}", "phone")
    by = f"cli:{os_user()} import {path.name}"[:200]
    added = sum(operations.add_suppression(hub, phone, by=by) for phone in dict.fromkeys(phones))
    click.echo(f"{added} added, {len(phones) - added} already on the list ({len(phones)} rows)")


@click.group()
def inbound() -> None:
    """Replies read in the sessions' chats."""


@inbound.command("list")
@click.option("--phone", help="Only this number's replies.")
@click.option("--session", help="Only this session's.")
@click.option("--since", help="Only replies read at or after this time (ISO 8601).")
@click.option("--until", help="Only replies read before this time (ISO 8601).")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--offset", type=click.IntRange(0), default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@with_errors
def inbound_list(phone: str | None, session: str | None, since: str | None, until: str | None, limit: int,
                 offset: int, as_json: bool) -> None:
    """Replies, newest first."""
    from wa_queue import operations

    found, total = operations.list_inbound(current_hub(), phone=phone, session=session, since=since, until=until,
                                           limit=limit, offset=offset)
    if as_json:
        echo_json({"items": [r.to_dict() for r in found], "total": total})
        return
    rows = [(r.received_at.isoformat(timespec="seconds"), r.session, r.phone or f"{r.chat} (no number)",
             r.opt.value if r.opt else "-", r.text.replace("\n", " ")[:60]) for r in found]
    click.echo(table(rows, ["read at", "session", "from", "opt", "text"]))
    click.echo(f"{len(found)} of {total}")


COMMANDS = [inbound, suppressions]
