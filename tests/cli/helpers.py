"""What the CLI tests share: `waq` in-process (CliRunner) and as a subprocess, and a failed message made as a
worker makes one."""

from __future__ import annotations

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
