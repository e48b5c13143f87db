"""`waq enqueue`, `waq status`, `waq failed` and `waq archive`: the messages, as an operator sees them."""

from __future__ import annotations

import csv
import dataclasses
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from wa_queue.cli.output import BadInput, current_hub, echo_json, handled, os_user, settings, table, with_errors
from wa_queue.cli.sessions import sessions_table
from wa_queue.errors import ValidationError
from wa_queue.models import Message, NewMessage

BATCH_SIZE = 500  # one store transaction and one broker round trip per batch
FAILED_PAGE_SIZE = 50
CSV_REQUIRED = ("phone", "text")
CSV_OPTIONAL = ("session", "idempotency_key", "callback_url", "metadata", "send_window", "send_at", "expires_at",
                "ttl_s", "priority", "batch", "media", "category")
CSV_HEADER = ("phone,text[,session][,idempotency_key][,callback_url][,metadata][,send_window][,send_at][,expires_at]"
              "[,ttl_s][,priority][,batch][,media][,category]")
WHEN_HELP = "an ISO 8601 date and time with seconds and its UTC offset (2026-12-24T09:30:00+01:00)"


# ---- enqueue ---------------------------------------------------------------------------------------------------
@click.command()
@click.argument("phone", required=False)
@click.argument("text", required=False)
@click.option("--session", help="Preferred session (any available session is used when it cannot send).")
@click.option("--idempotency-key", help="Enqueueing again with this key returns the first message.")
@click.option("--callback-url", help="http(s) URL told about the message's status changes.")
@click.option("--metadata", help="A JSON object stored with the message and returned as is.")
@click.option("--send-window", metavar="HH:MM-HH:MM",
              help="Quiet hours: send only between these local times of the recipient (08:00-21:00; 22:00-06:00 "
                   "runs past midnight). Default: WAQ_SEND_WINDOW, if set.")
@click.option("--send-at", help=f"Not sent before this time: {WHEN_HELP}.")
@click.option("--expires-at", help=f"Never sent from this time on (it ends expired): {WHEN_HELP}.")
@click.option("--ttl", "ttl", help="Never sent after this long from now: seconds, or 90s, 15m, 2h.")
@click.option("--priority", help="high, normal (the default) or low: what the session sends first.")
@click.option("--category", type=click.Choice(["transactional", "marketing"]),
              help="transactional (the default) or marketing: what an opt-out blocks (WAQ_OPT_OUT_SCOPE).")
@click.option("--batch", help="The batch it joins (with --file: every row without its own; default: a new one).")
@click.option("--file", "file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="With PHONE: the file to send (a media message; TEXT or --caption is its caption). Without PHONE: "
                   "a CSV of messages, as --csv.")
@click.option("--caption", help="A media message's caption (at most 1,024 characters; none on audio).")
@click.option("--kind", type=click.Choice(["image", "document", "audio", "video"]),
              help="How the file is sent (default: from its type, read from its bytes).")
@click.option("--as-document", is_flag=True, help="Send a photo or video as a file, uncompressed.")
@click.option("--filename", help="The name the recipient sees (default: the file's own).")
@click.option("--csv", "csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help=f"CSV with a header: {CSV_HEADER} (metadata as JSON, send_window as HH:MM-HH:MM, ttl_s in "
                   "seconds, media a file's path (from the CSV's folder) or an http(s) URL, text then its caption; "
                   "an empty cell is none).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@with_errors
def enqueue(phone: str | None, text: str | None, session: str | None, idempotency_key: str | None,
            callback_url: str | None, metadata: str | None, send_window: str | None, send_at: str | None,
            expires_at: str | None, ttl: str | None, priority: str | None, category: str | None, batch: str | None,
            file: Path | None,
            caption: str | None, kind: str | None, as_document: bool, filename: str | None, csv_file: Path | None,
            as_json: bool) -> None:
    """Queue one message (PHONE TEXT, or PHONE --file invoice.pdf [--caption ...]) or every row of a CSV file
    (--csv messages.csv).

    One message prints its id once it is committed to the store (with its file, for a media message). With --csv
    every row is validated first, the good rows are queued in batches of 500 and the rejected ones are listed with
    their row number (the header is row 1, as a spreadsheet numbers them). Exit codes: 0 all queued; 1 some rows
    rejected (the good rows ARE queued) or a service failed; 2 bad usage or an invalid message.
    """
    if file is not None and phone is None and csv_file is None:
        csv_file, file = file, None  # --file without PHONE: the CSV of messages, as before --csv
    if csv_file is not None:
        if (phone or text or idempotency_key or callback_url is not None or metadata is not None
                or send_window is not None or send_at or expires_at or ttl or priority or category or file or caption
                or kind or as_document or filename):
            raise click.UsageError("give either PHONE TEXT or --csv, not both (put idempotency keys, callback URLs, "
                                   "metadata, send windows, times, priorities and files in the CSV)")
        _enqueue_csv(csv_file, session, batch, as_json)
        return
    if phone is None or (text is None and file is None):
        raise click.UsageError("give PHONE and TEXT, PHONE --file FILE, or --csv messages.csv")
    from wa_queue import operations
    from wa_queue.validation import metadata_from_json

    new = operations.build_message(current_hub(), phone, text, session=session, idempotency_key=idempotency_key,
                                callback_url=callback_url, metadata=metadata_from_json(metadata),
                                send_window=send_window, send_at=send_at, expires_at=expires_at,
                                ttl_s=ttl_seconds(ttl), priority=priority, batch=batch, media=file, caption=caption,
                                kind=kind, as_document=as_document, filename=filename, local_files=True,
                                category=category)
    message, created = operations.submit(current_hub(), [new])[0]
    if as_json:
        echo_json({"id": message.id, "status": message.status.value, "phone": message.phone, "created": created,
                   "media": message.media.to_dict() if message.media is not None else None})
    else:
        click.echo(message.id)
        if not created:
            click.echo(f"(idempotency key {idempotency_key!r} already used: this is the existing message)", err=True)


def ttl_seconds(text: str | None) -> int | str | None:
    """--ttl and a CSV's ttl_s as validation.validate_expiry takes it: whole seconds (a duration such as 15m read by
    the settings' rule); anything else is passed on as it is, for that rule to refuse with its message."""
    from wa_queue.setting_values import parse_duration

    if text is None or not text.strip():
        return None
    try:
        seconds = parse_duration(text.strip())
    except ValueError:
        return text
    return int(seconds) if seconds == int(seconds) else text


@dataclasses.dataclass
class _Rejected:
    row: int
    field: str | None
    reason: str


def _read_csv(path: Path, default_session: str | None, default_batch: str
              ) -> tuple[list[tuple[int, NewMessage]], list[_Rejected]]:
    """Validate every row; returns ([(row, message to submit)], rejected). A row without a batch joins
    `default_batch`."""
    from wa_queue import operations
    from wa_queue.validation import metadata_from_json

    good: list[tuple[int, NewMessage]] = []
    rejected: list[_Rejected] = []
    with path.open(newline="", encoding="utf-8-sig") as handle:  # -sig: spreadsheets often write a BOM
        reader = csv.DictReader(handle)
        columns = [c.strip() for c in reader.fieldnames or []]
        missing = [c for c in CSV_REQUIRED if c not in columns]
        unknown = [c for c in columns if c not in CSV_REQUIRED + CSV_OPTIONAL]
        if missing or unknown:
            raise BadInput(f"{path}: the header must be {CSV_HEADER}; "
                           + "; ".join(filter(None, [missing and f"missing {', '.join(missing)}",
                                                     unknown and f"unknown {', '.join(unknown)}"])))
        reader.fieldnames = columns
        with click.progressbar(reader, label="validating", file=sys.stderr) as rows:
            for record in rows:
                row = reader.line_num  # the line where the record ends; equals the row for one-line records
                if None in record:
                    rejected.append(_Rejected(row, None, f"{len(record[None])} cell(s) more than the header"))
                    continue
                item = {
                    "phone": record.get("phone") or "",
                    "text": record.get("text") or "",
                    "session": (record.get("session") or "").strip() or default_session,
                    "idempotency_key": (record.get("idempotency_key") or "").strip() or None,
                    "callback_url": (record.get("callback_url") or "").strip() or None,
                    "send_window": (record.get("send_window") or "").strip() or None,
                    "send_at": (record.get("send_at") or "").strip() or None,
                    "expires_at": (record.get("expires_at") or "").strip() or None,
                    "ttl_s": ttl_seconds(record.get("ttl_s")),
                    "priority": (record.get("priority") or "").strip() or None,
                    "category": (record.get("category") or "").strip() or None,
                    "batch": (record.get("batch") or "").strip() or default_batch,
                }
                media = (record.get("media") or "").strip()
                if media:  # a URL is fetched at once; a path is read from the CSV's folder
                    item["media"] = {"url": media} if media.lower().startswith(("http://", "https://")) else \
                        path.parent / media
                    item["text"] = item["text"] or None
                try:
                    # an empty cell is no metadata; the parsed object is what enqueue_many stores
                    item["metadata"] = metadata_from_json((record.get("metadata") or "").strip() or None)
                    new = operations.build_message(current_hub(), **item, local_files=True)
                except ValidationError as exc:
                    rejected.append(_Rejected(row, exc.field, str(exc)))
                    continue
                if new.media is not None and new.media_bytes is not None:
                    # Checked (a URL fetched) once, and put in the media files now: a file many rows name is kept
                    # once, and the rows do not hold the bytes. Rows that fail later leave a file the collector takes.
                    current_hub().media_files.put(new.media.sha256, new.media_bytes)
                    new = dataclasses.replace(new, media_bytes=None)
                good.append((row, new))
    return good, rejected


def _enqueue_csv(path: Path, session: str | None, batch_name: str | None, as_json: bool) -> None:
    from wa_queue import operations
    from wa_queue.validation import validate_batch

    default_batch = validate_batch(batch_name) or operations.new_batch_name()
    good, rejected = _read_csv(path, session, default_batch)
    ids: list[str] = []
    with click.progressbar(length=len(good), label="enqueueing", file=sys.stderr) as bar:
        for start in range(0, len(good), BATCH_SIZE):
            batch = good[start:start + BATCH_SIZE]
            try:
                with handled():
                    ids += [m.id for m, _ in operations.submit(current_hub(), [new for _, new in batch])]
            except click.ClickException as exc:
                # Batches before this one are committed; say exactly where to resume.
                exc.message = (f"{exc.message} (rows before row {batch[0][0]} were queued: {len(ids)} "
                               f"message(s); re-running the file queues them again unless it has idempotency keys)")
                raise
            bar.update(len(batch))
    if as_json:
        echo_json({"enqueued": len(ids), "ids": ids, "batch": default_batch,
                   "rejected": [dataclasses.asdict(r) for r in rejected]})
    else:
        click.echo(f"queued {len(ids)} message(s) from {path} in batch {default_batch}; rejected {len(rejected)} "
                   "row(s)")
        for r in rejected:
            click.echo(f"  row {r.row}: {r.reason}")
    if rejected:
        sys.exit(1)


# ---- status ----------------------------------------------------------------------------------------------------
@click.command()
@click.argument("message_id", required=False)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@with_errors
def status(message_id: str | None, as_json: bool) -> None:
    """Without ID: message counts by status and the sessions. With ID: that message and its history."""
    from wa_queue import operations

    settings()
    if message_id:
        echo_message(operations.get_message(current_hub(), message_id).to_dict(), as_json)
        return
    counts, sessions = operations.queue_counts(current_hub()), operations.sessions_overview(current_hub())
    if as_json:
        echo_json({"counts": counts, "sessions": sessions})
        return
    click.echo(table([[k, v] for k, v in counts.items()], ["status", "messages"]))
    click.echo()
    click.echo(sessions_table(sessions))


def echo_message(message: dict[str, Any], as_json: bool) -> None:
    """One message and its history (`waq status ID`, `waq archive show ID`)."""
    if as_json:
        echo_json(message)
        return
    window = message.get("send_window")
    if window:
        message = {**message, "send_window": f"{window['start']}-{window['end']}"}
    media = message.get("media")
    if media:
        message = {**message, "media": f"{media['kind']} {media['filename']} ({media['size']:,} bytes, "
                                       f"{media['mimetype']}, sha256 {media['sha256'][:12]}...)"}
    for key in ("id", "status", "phone", "media", "text", "session", "priority", "category", "batch", "send_window",
                "send_at",
                "expires_at",
                "attempts", "created_at", "updated_at", "next_attempt_at", "claimed_by", "sent_at", "sent_by", "wa_id",
                "delivered_at", "read_at", "failed_at", "expired_at", "cancelled_at", "last_error_class",
                "last_error_text"):
        if message.get(key) not in (None, ""):
            click.echo(f"{key:17} {message[key]}")
    click.echo("history:")
    for entry in message["history"]:
        error = f"  {entry['error_class']}: {entry['error_text']}" if entry["error_class"] else ""
        click.echo(f"  {entry['at']}  {entry['event']:10} {entry['session'] or '-'}{error}")


# ---- failed ----------------------------------------------------------------------------------------------------
@click.group()
def failed() -> None:
    """Failed messages: list, retry, mark as sent, delete."""


def failed_page_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The options of a page of failed messages (`waq failed list`, `waq archive list`), declared once."""
    for option in reversed((
        click.option("--session", help="Only messages claimed or sent by this session."),
        click.option("--error", help="Error class or a piece of the error text."),
        click.option("--page", default=1, show_default=True, type=click.IntRange(min=1)),
        click.option("--page-size", default=FAILED_PAGE_SIZE, show_default=True, type=click.IntRange(1, 1000)),
        click.option("--json", "as_json", is_flag=True, help="Machine-readable output."),
    )):
        fn = option(fn)
    return fn


@failed.command("list")
@failed_page_options
@with_errors
def failed_list(session: str | None, error: str | None, page: int, page_size: int, as_json: bool) -> None:
    """Failed messages, newest first."""
    from wa_queue import operations

    echo_page(operations.list_failed, "failed", session, error, page, page_size, as_json)


def echo_page(fetch: Callable[..., tuple[list[Message], int]], noun: str, session: str | None, error: str | None,
              page: int, page_size: int, as_json: bool) -> None:
    """One page of `fetch` (operations.list_failed or list_archived), filtered and shown as `waq failed list` does."""
    messages, total = fetch(current_hub(), offset=(page - 1) * page_size, limit=page_size, session=session, error=error)
    echo_failed_page(messages, total, page, page_size, as_json, noun)


def echo_failed_page(messages: list[Message], total: int, page: int, page_size: int, as_json: bool, noun: str
                     ) -> None:
    """A page of failed (or archived) messages: `waq failed list`, `waq archive list`."""
    pages = max(1, -(-total // page_size))
    if as_json:
        echo_json({"total": total, "page": page, "pages": pages, "messages": [m.to_dict() for m in messages]})
        return
    rows = [[m.id, m.phone, m.claimed_by or m.session or "-", m.attempts,
             m.failed_at.isoformat(timespec="seconds") if m.failed_at else "-",
             f"{m.last_error_class}: {(m.last_error_text or '')[:60]}"] for m in messages]
    click.echo(table(rows, ["id", "phone", "session", "attempts", "failed_at", "error"]))
    click.echo(f"page {page} of {pages} ({total} {noun})")


@failed.command("retry")
@click.argument("message_id")
@with_errors
def failed_retry(message_id: str) -> None:
    """Put one failed message back to pending with its attempts reset."""
    from wa_queue import operations

    message = operations.retry_failed(current_hub(), message_id)
    click.echo(f"requeued {message.id} ({message.status.value})")


@failed.command("mark-sent")
@click.argument("message_id")
@click.option("--note", help="Why, kept in the message's history (at most 500 characters).")
@with_errors
def failed_mark_sent(message_id: str, note: str | None) -> None:
    """Record a failed message as sent, once you have seen it in the phone's chat with that number.

    It is never sent again, and its callback_url hears 'sent'. Not in the chat? Use `waq failed retry ID`."""
    from wa_queue import operations

    message = operations.mark_sent(current_hub(), message_id, actor=f"cli:{os_user()}", note=note)
    click.echo(f"marked {message.id} as sent (sent_by {message.sent_by or '-'})")


@failed.command("retry-all")
@click.option("--session", help="Only the failed messages of this session.")
@with_errors
def failed_retry_all(session: str | None) -> None:
    """Put every failed message (optionally of one session) back to pending."""
    from wa_queue import operations
    from wa_queue.validation import validate_session

    validate_session(session, settings().sessions)
    click.echo(f"requeued {operations.retry_all_failed(current_hub(), session)} message(s)")


@failed.command("delete")
@click.argument("message_id")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@with_errors
def failed_delete(message_id: str, yes: bool) -> None:
    """Delete one failed message for good (the only way a message is ever removed)."""
    from wa_queue import operations
    from wa_queue.errors import InvalidTransition
    from wa_queue.models import MessageStatus

    message = operations.get_message(current_hub(), message_id)
    if message.status is not MessageStatus.FAILED:
        raise InvalidTransition(f"message {message_id} is {message.status.value}: only failed messages can be deleted")
    if not yes:
        click.confirm(f"Delete failed message {message_id} to {message.phone} ({message.last_error_class})?",
                      abort=True)
    operations.delete_failed(current_hub(), message_id)
    click.echo(f"deleted {message_id}")


# ---- archive ---------------------------------------------------------------------------------------------------
@click.group()
def archive() -> None:
    """Archived failed messages (read-only): list, show."""


@archive.command("list")
@failed_page_options
@with_errors
def archive_list(session: str | None, error: str | None, page: int, page_size: int, as_json: bool) -> None:
    """Archived messages, newest failure first (filtered like `waq failed list`)."""
    from wa_queue import operations

    echo_page(operations.list_archived, "archived", session, error, page, page_size, as_json)


@archive.command("show")
@click.argument("message_id")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@with_errors
def archive_show(message_id: str, as_json: bool) -> None:
    """One archived message and its history; exit 1 when the archive has no such id."""
    from wa_queue import operations

    echo_message(operations.get_archived(current_hub(), message_id).to_dict(), as_json)


COMMANDS = [enqueue, status, failed, archive]
