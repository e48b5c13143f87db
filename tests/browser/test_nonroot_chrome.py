"""Chrome as a non-root user (issue 17): a real `waq worker` runs as an unprivileged user (the image's uid-10001
case) with a real redis-server, SQLite file and Chromium against the simulator, and sends.

The container's cases are reproduced without Docker by running the worker under a Docker-format seccomp profile
(tests/helpers/seccomp.py): deploy/chrome-seccomp.json with WAQ_CHROME_SANDBOX=on must send with Chrome sandboxed;
Docker's default profile (that file minus its wa-queue entry) refuses user namespaces, so `on` must fail closed with
the reason and hint recorded on the session, while `auto` falls back to --no-sandbox and says so in the log.
Root with `on` must refuse to start Chrome (Chrome has no sandbox for root).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.helpers import nonroot
from tests.helpers.browser import Sim, make_settings
from tests.helpers.constants import ROOT
from tests.helpers.processes import Proc
from tests.helpers.seccomp import without_comment
from tests.helpers.stack import ACCOUNTS, Stack
from tests.helpers.waiting import wait_for
from wa_queue import operations, procs
from wa_queue.devstack.redis_server import RedisServer
from wa_queue.hub import default_hub
from wa_queue.models import MessageStatus
from wa_queue.sessions import error_hint
from wa_queue.transport.base import SessionState
from wa_queue.transport.sandbox import UNUSABLE
from wa_queue.transport.selenium import SeleniumSender

pytestmark = [pytest.mark.timeout(240),
              pytest.mark.skipif(nonroot.unavailable() is not None, reason=str(nonroot.unavailable()))]

PROFILE = ROOT / "deploy" / "chrome-seccomp.json"
OURS = "wa-queue:"  # how our addition to Docker's default profile is marked (its comment)


@pytest.fixture
def base() -> Iterator[Path]:
    """A folder the user can reach (pytest's tmp_path sits under a root-only folder)."""
    folder = Path(tempfile.mkdtemp(prefix="waq-nonroot-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def user(base: Path) -> tuple[int, int]:
    uid, gid = nonroot.ensure_user()
    for name in ("data", "home"):
        nonroot.own(base / name, uid, gid)
    return uid, gid


def _profile(base: Path, which: str | None) -> Path | None:
    """None, or a readable copy of our profile ('chrome') or of Docker's default ('docker-default')."""
    if which is None:
        return None
    profile = json.loads(PROFILE.read_text())
    path = base / f"{which}.json"
    path.write_text(json.dumps(profile if which == "chrome" else without_comment(profile, OURS)))
    return path


def _start(stack: Stack, base: Path, user: tuple[int, int], name: str, profile: Path | None = None) -> Proc:
    """`waq worker --session primary` or `waq beat` as the user (under `profile`, if given)."""
    argv = [sys.executable, "-m", "wa_queue.cli", *(["worker", "--session", "primary"] if name == "primary"
                                                      else [name])]
    if profile is not None:
        argv = [sys.executable, "-m", "tests.helpers.seccomp", str(profile), *argv]
    proc = Proc(nonroot.as_user(argv, *user, base / "stash"), stack.env, base / f"{name}.log")
    stack.procs[name] = proc
    if name == "primary":
        # The worker makes the SQLite files: were this (root) process first, they would be root's and read-only
        # to the worker. Its open connection keeps them (WAL and shared memory) until it stops.
        made = base / "data" / "waq.db.wlock"
        wait_for(lambda: made.exists() or not proc.alive(), 60, 0.1, "the worker to open the store")
        assert proc.alive(), proc.log.read_text()[-3000:]
        assert made.stat().st_uid == user[0]
    return proc


def _log_in(stack: Stack, proc: Proc) -> None:
    """Scan the worker's QR as the phone would (Stack.start_worker's steps, for a worker started here); beat's
    health checks notice the scan."""
    wait_for(lambda: not proc.alive() or any(not d["linked"] for d in stack.devices()), 60, 0.2, "the worker's QR")
    assert proc.alive(), proc.log.read_text()[-3000:]
    response = requests.post(f"{stack.sim.url}/__sim__/sessions/{ACCOUNTS['primary']}/scan", timeout=5)
    assert response.ok, response.text

    def connected() -> bool:
        assert proc.alive(), proc.log.read_text()[-3000:]
        record = stack.session("primary")
        return record is not None and record.status == "connected"

    wait_for(connected, 90, 0.2, "primary connected")


def _chrome(profile_dir: Path) -> dict[int, dict[str, str]]:
    """The session's Chrome processes: pid -> uid, type ('browser' for the main one), user namespace, seccomp."""
    found = {}
    for pid in procs.pids_with_arg(f"--user-data-dir={profile_dir}"):
        try:
            status = dict(line.split(":\t", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                          if ":\t" in line)
            userns = os.readlink(f"/proc/{pid}/ns/user")
        except OSError:
            continue  # exited meanwhile
        args = procs.cmdline(pid)
        kind = next((a.split("=", 1)[1] for a in args.split() if a.startswith("--type=")), "browser")
        found[pid] = {"uid": status["Uid"].split()[0], "type": kind, "userns": userns,
                      "seccomp": status.get("Seccomp", "?"), "no_sandbox": str("--no-sandbox" in args.split())}
    return found


def _send_one(stack: Stack, text: str) -> None:
    mid = operations.enqueue(default_hub(), "+14155550170", text)
    stack.wait_done([mid], 90)
    message = default_hub().store.get(mid)
    assert message.status is MessageStatus.SENT, (message.status, message.last_error)
    stack.assert_exactly_once([("+14155550170", text)])


@pytest.mark.parametrize(("seccomp", "mode", "sandboxed"), [
    ("chrome", "on", True),  # the container as shipped: deploy/chrome-seccomp.json, sandbox required
    # No profile: auto sandboxes a non-root Chrome where the kernel allows user namespaces (it does here).
    pytest.param(None, "auto", True, marks=pytest.mark.long),
    pytest.param("docker-default", "auto", False, marks=pytest.mark.long),  # no profile: auto falls back
])
def test_non_root_worker_sends(base: Path, user: tuple[int, int], redis_server: RedisServer, seccomp: str | None,
                               mode: str, sandboxed: bool) -> None:
    problem = nonroot.userns_problem(*user, base / "stash")
    if problem and mode == "on":
        pytest.skip(f"this kernel refuses user namespaces to {nonroot.USER} ({problem}): no sandbox to turn on")
    sandboxed = sandboxed and problem is None  # auto without user namespaces falls back (checked below)
    redis_server.client().flushall()
    home = base / "home"
    stack = Stack(base, redis_server, sessions=("primary",),
                  extra_env={"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
                             "XDG_CACHE_HOME": str(home / ".cache"), "WAQ_CHROME_SANDBOX": mode})
    try:
        proc = _start(stack, base, user, "primary", _profile(base, seccomp))
        _start(stack, base, user, "beat")  # the user's too; it boots while Chrome does
        _log_in(stack, proc)
        chrome = _chrome(base / "data" / "profiles" / "primary")
        browser = [p for p in chrome.values() if p["type"] == "browser"]
        renderers = [p for p in chrome.values() if p["type"] == "renderer"]
        assert len(browser) == 1 and renderers, chrome
        assert {p["uid"] for p in chrome.values()} == {str(user[0])}, chrome  # every Chrome process is the user's
        assert browser[0]["no_sandbox"] == str(not sandboxed), browser
        if sandboxed:  # the namespace sandbox at work: renderers in their own user namespace, under seccomp-bpf
            assert all(r["userns"] != browser[0]["userns"] and r["seccomp"] == "2" for r in renderers), chrome
        _send_one(stack, f"sent by a non-root worker ({seccomp or 'no'} seccomp profile, sandbox {mode})")
        worker_log = proc.log.read_text()
        said = "Chrome sandbox on: WAQ_CHROME_SANDBOX=" if sandboxed else "Chrome sandbox off (--no-sandbox)"
        assert said in worker_log, worker_log[-3000:]
        if not sandboxed:
            assert "user namespaces unavailable" in worker_log and "WARNING" in worker_log, worker_log[-3000:]
        for path in (base / "data" / "waq.db", base / "data" / "profiles" / "primary"):
            assert path.stat().st_uid == user[0], path  # the worker made its own files
    finally:
        leftover = stack.stop()
    assert not leftover, f"Chrome outlived its worker: {leftover}"


def test_sandbox_on_without_user_namespaces_fails_closed(base: Path, user: tuple[int, int],
                                                         redis_server: RedisServer) -> None:
    """Docker's default profile and WAQ_CHROME_SANDBOX=on: no Chrome, never an unsandboxed one, and the session
    says why with the hint."""
    redis_server.client().flushall()
    home = base / "home"
    stack = Stack(base, redis_server, sessions=("primary",),
                  extra_env={"HOME": str(home), "WAQ_CHROME_SANDBOX": "on"})
    try:
        proc = _start(stack, base, user, "primary", _profile(base, "docker-default"))

        def recorded() -> str | None:
            record = stack.session("primary")
            return record.last_error if record is not None else None

        reason = wait_for(recorded, 90, 0.3, "the session's last error")
        record = stack.session("primary")
        assert record.status != "connected"
        assert UNUSABLE in reason and "Operation not permitted" in reason, reason
        assert "deploy/chrome-seccomp.json" in record.last_error_hint, record.last_error_hint
        assert not _chrome(base / "data" / "profiles" / "primary")
        assert "--no-sandbox" not in proc.log.read_text()
    finally:
        leftover = stack.stop()
    assert not leftover, f"Chrome outlived its worker: {leftover}"


def test_root_with_sandbox_on_does_not_start_chrome(tmp_path: Path) -> None:
    """As root (these tests' own user) Chrome has no sandbox: `on` must not start it unsandboxed."""
    sim = Sim()
    try:
        sender = SeleniumSender("primary", make_settings(tmp_path, sim, WAQ_CHROME_SANDBOX="on"))
        try:
            assert sender.connect() is SessionState.CLOSED
            problem = sender.last_problem() or ""
            assert problem.startswith(f"Chrome did not start: {UNUSABLE}: running as root"), problem
            assert "WAQ_CHROME_SANDBOX" in error_hint(problem, url=sim.url)
            assert not procs.pids_with_arg(f"--user-data-dir={sender.chrome.profile_dir}")
        finally:
            sender.close()
    finally:
        sim.server.shutdown()
        sim.server.server_close()
