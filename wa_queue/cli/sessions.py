"""`waq sessions`, `waq selectors` and `waq selftest`: the WhatsApp sessions and the page their browsers get."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from wa_queue.cli.output import current_hub, echo_json, settings, table, with_errors
from wa_queue.models import plain
from wa_queue.settings import Settings


# ---- sessions --------------------------------------------------------------------------------------------------
@click.group()
def sessions() -> None:
    """WhatsApp sessions: list, restart, QR code, warm-up."""


def warmup_text(ramp: dict[str, Any]) -> str:
    """Where a session stands in the warm-up ramp, in a few words ("step 2/5, day 1/3, 12 days left")."""
    if ramp["state"] == "ramp":
        return (f"step {ramp['step']}/{ramp['steps']}, day {ramp['day_in_step']}/{ramp['days_per_step']}, "
                f"{ramp['days_left']} day{'s' if ramp['days_left'] != 1 else ''} left")
    return {"off": "off", "skipped": "skipped", "done": "done",
            "new": f"new: starts at the first send ({ramp['steps']} steps of {ramp['days_per_step']} days)"
            }.get(ramp["state"], ramp["state"])


def sessions_table(overview: dict[str, dict[str, Any]]) -> str:
    rows = [[v["name"], v["status"], "yes" if v["connected"] else "no", "YES" if v["needs_operator"] else "no",
             v["number"] or "-", f"{v['sends_today']}/{v['daily_cap']}", warmup_text(v["warmup"]),
             v["heartbeat_at"] or "never"]
            for v in overview.values()]
    lines = [table(rows, ["session", "status", "connected", "needs_operator", "number", "sent_today", "warmup",
                          "heartbeat"])]
    # Why a session is down, under the table: the reason is too long for a column.
    lines += [f"{v['name']}: {v['last_error']} (since {v['last_error_at'] or '?'}): {v['hint']}"
              for v in overview.values() if v.get("last_error")]
    return "\n".join(lines)


@sessions.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@with_errors
def sessions_list(as_json: bool) -> None:
    """Every configured session with its state, today's sends and cap, its warm-up ramp and its last heartbeat."""
    from wa_queue import operations

    settings()
    overview = operations.sessions_overview(current_hub())
    if as_json:
        echo_json(overview)
    else:
        click.echo(sessions_table(overview))


@sessions.command("restart")
@click.argument("name")
@with_errors
def sessions_restart(name: str) -> None:
    """Ask the session's worker to reconnect at its next health check, with a fresh reconnect counter."""
    from wa_queue import operations

    settings()
    view = operations.restart_session(current_hub(), name)
    click.echo(f"restart requested for {view['name']} (status {view['status']}); its worker reconnects at the next "
               "health check")


@sessions.command("warmup")
@click.argument("name")
@click.option("--reset", "action", flag_value="reset",
              help="Start the ramp again from the session's next send (a re-registered number, or one that lost its "
                   "reputation).")
@click.option("--skip", "action", flag_value="skip",
              help="The normal daily cap at once (a number warmed up elsewhere).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@with_errors
def sessions_warmup(name: str, action: str | None, as_json: bool) -> None:
    """Reset or skip a session's warm-up ramp (WAQ_WARMUP_CAPS); prints its cap for today."""
    from wa_queue import operations

    if action is None:
        raise click.UsageError("give --reset or --skip")
    settings()
    view = operations.warmup_action(current_hub(), name, action)
    if as_json:
        echo_json(view)
    else:
        click.echo(f"warm-up of {name}: {action}; cap today {view['daily_cap']} ({warmup_text(view['warmup'])})")


@sessions.command("qr")
@click.argument("name")
@click.option("--out", type=click.Path(dir_okay=False, writable=True, path_type=Path),
              help="Write the PNG here instead of drawing it in the terminal.")
@with_errors
def sessions_qr(name: str, out: Path | None) -> None:
    """The QR code a session waits to have scanned (WhatsApp > Linked devices). Exit 1 when it is not waiting."""
    from wa_queue import operations
    from wa_queue.validation import validate_session

    validate_session(name, settings().sessions)
    png = operations.session_qr(current_hub(), name)
    if not png:
        state = plain(operations.get_session(current_hub(), name).status)
        raise click.ClickException(f"session {name} is not waiting for a QR scan (status: {state})")
    if out is not None:
        out.write_bytes(png)
        click.echo(f"wrote {out} ({len(png)} bytes); scan it in WhatsApp > Linked devices")
        return
    drawn = qr_text(png)
    if drawn is None:
        raise click.ClickException("the QR image cannot be drawn in a terminal: use --out qr.png")
    click.echo(drawn)
    click.echo(f"scan it in WhatsApp > Linked devices for session {name}")


def qr_text(png: bytes) -> str | None:
    """Redraw a QR PNG as terminal text (two characters a module), or None when its module grid is not found.

    The finder pattern in the top-left corner is 7 modules wide: its first dark run gives the module size."""
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(png)).convert("L")
    except (UnidentifiedImageError, OSError):
        return None
    bw = image.point(lambda p: 255 if p < 128 else 0)  # dark pixels -> set, for getbbox()
    box = bw.getbbox()
    if box is None:
        return None
    left, top, right, bottom = box
    run = 0
    while left + run < right and bw.getpixel((left + run, top)):
        run += 1
    module = run / 7
    if module < 1:
        return None
    count = round((right - left) / module)
    if count < 21 or abs(count * module - (right - left)) > module / 2 or abs((bottom - top) - (right - left)) > module:
        return None
    rows = []
    for y in range(-2, count + 2):  # a two-module quiet zone so phones find the code
        line = []
        for x in range(-2, count + 2):
            inside = 0 <= x < count and 0 <= y < count
            dark = inside and bw.getpixel((int(left + (x + 0.5) * module), int(top + (y + 0.5) * module)))
            line.append("  " if dark else "\u2588\u2588")  # light modules drawn solid: works on dark terminals
        rows.append("".join(line))
    return "\n".join(rows)


# ---- selectors, selftest -------------------------------------------------------------------------------------
@click.group()
def selectors() -> None:
    """WhatsApp Web page selectors."""


def _idle_session_sender(session: str, s: Settings) -> Any:
    """A SeleniumSender on the session's profile, refused while a browser holds it: starting one would kill it."""
    from wa_queue.transport.selenium import SeleniumSender

    sender = SeleniumSender(session, s)
    holders = sender.chrome.browser_pids()
    if holders:
        raise click.ClickException(f"a browser already uses the profile of session {session} (pids "
                                   f"{', '.join(map(str, holders))}): stop `waq worker --session {session}` first")
    return sender


@selectors.command("check")
@click.option("--session", required=True, help="The session whose browser profile is used.")
@click.option("--open-phone", help="Open the chat with this number first, to count the compose box and messages.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@with_errors
def selectors_check(session: str, open_phone: str | None, as_json: bool) -> None:
    """Open WhatsApp Web in the session's browser and count what each selector matches.

    Which selectors should match depends on the page (the QR page, the chat list, a chat): "missing" is a hint,
    not an error. Exit 1 when a selector is invalid CSS. Refuses to run while a browser holds the session's
    profile (its worker is running): starting here would kill that browser."""
    from wa_queue.validation import normalize_phone, validate_session

    s = settings()
    validate_session(session, s.sessions)
    phone = normalize_phone(open_phone, s.default_region).lstrip("+") if open_phone else None
    from wa_queue.transport.selectors_check import check_selectors, format_report

    sender = _idle_session_sender(session, s)
    try:
        state = sender.connect()
        counts = check_selectors(sender, open_phone=phone)
    finally:
        sender.close()  # never leave a Chromium behind holding the profile
    invalid = [name for name, value in counts.items() if value is False and not name.startswith("text.")]
    if as_json:
        echo_json({"session": session, "state": getattr(state, "value", str(state)), "selectors": counts,
                   "invalid": invalid})
    else:
        click.echo(f"session {session}: page state {getattr(state, 'value', state)}")
        click.echo(format_report(counts))
    if invalid:
        sys.exit(1)


@click.command()
@click.option("--session", required=True, help="The session whose browser profile is used (logged in).")
@click.option("--send", "do_send", is_flag=True,
              help="Also send two canaries (short, 1,500 characters) to the account's own number and find them.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@with_errors
def selftest(session: str, do_send: bool, as_json: bool) -> None:
    """Check a logged-in session against the page it gets, in the chat with its own number; exit 1 on a failure.

    Reports the user agent, the page language, the account's number, the compose boxes, the form of the message
    rows, and types, reads back and clears a canary without sending it. With --send, two canaries are sent to the
    account itself and each must show up as one new recognised row that find_sent finds. A failed step names the
    selectors to override in WAQ_SELECTORS_FILE. Refuses to run while the session's worker holds its profile."""
    from wa_queue.validation import validate_session

    s = settings()
    validate_session(session, s.sessions)
    from wa_queue.transport.selftest import format_step, format_summary, run_selftest

    sender = _idle_session_sender(session, s)
    try:
        # Each step is printed as it ends: on a real session a step takes seconds.
        report = run_selftest(sender, send=do_send,
                                    echo=None if as_json else lambda step: click.echo(format_step(step)))
    finally:
        sender.close()  # never leave a Chromium behind holding the profile
    if as_json:
        echo_json(report.as_dict())
    else:
        click.echo(format_summary(report))
    sys.exit(0 if report.ok else 1)


COMMANDS = [sessions, selectors, selftest]
