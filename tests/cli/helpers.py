"""What the CLI tests share: `waq` in-process (CliRunner) and as a subprocess, and a failed message made as a
worker makes one."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

from click.testing import CliRunner, Result

from tests.helpers.constants import PHONE, ROOT
from wa_queue.cli import main
from wa_queue.hub import default_hub
from wa_queue.models import NewMessage, utcnow

ID = re.compile(r"^[0-9a-f]{32}$")


def waq(*args: str, input: str | None = None) -> Result:  # noqa: A002 - click's name
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


def waq_proc(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "wa_queue.cli", *args], env={**os.environ, **env}, cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout, check=False)


def make_failed(session: str = "primary", error_class: str = "InvalidNumber", phone: str = PHONE) -> str:
    """A failed message made the way a worker makes one: insert, claim, record_failed."""
    store, now = default_hub().store, utcnow()
    message, _ = store.insert(NewMessage(phone=phone, text="hello"), now)
    assert store.claim(message.id, owner="test/1", session=session, now=now, lease_s=60)
    assert store.record_failed(message.id, owner="test/1", now=now, error_class=error_class,
                               error_text="not on WhatsApp")
    return message.id


def assert_lists_filter_and_page(command: str, first: str, second: str) -> None:
    """`waq <command> list` (failed or archive) over two messages, `first` on primary with InvalidNumber and `second`
    on secondary with TransientSendError: all of them, by session, by error, and a page of one."""
    listing = json.loads(waq(command, "list", "--json").stdout)
    assert listing["total"] == 2 and {m["id"] for m in listing["messages"]} == {first, second}
    by_session = json.loads(waq(command, "list", "--session", "primary", "--json").stdout)
    assert [m["id"] for m in by_session["messages"]] == [first]
    by_error = json.loads(waq(command, "list", "--error", "Transient", "--json").stdout)
    assert [m["id"] for m in by_error["messages"]] == [second]
    page2 = json.loads(waq(command, "list", "--page", "2", "--page-size", "1", "--json").stdout)
    assert page2["pages"] == 2 and len(page2["messages"]) == 1
