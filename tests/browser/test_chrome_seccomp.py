"""deploy/chrome-seccomp.json: Docker's default seccomp profile plus one marked entry for Chromium's namespace sandbox.

Without Docker, the profile is applied with libseccomp (tests/helpers/seccomp.py) to a bare `chromium --headless` run
as an unprivileged user: under Docker's default (the file minus its entry) Chrome reproduces the issue's "No usable
sandbox"; under the file it starts, and its renderers run in their own user namespace under seccomp-bpf.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import nonroot
from tests.helpers.constants import ROOT
from tests.helpers.seccomp import without_comment

PROFILE = ROOT / "deploy" / "chrome-seccomp.json"
OURS = "wa-queue:"


def test_profile_is_dockers_default_plus_one_entry() -> None:
    profile = json.loads(PROFILE.read_text())
    assert profile["defaultAction"] == "SCMP_ACT_ERRNO"  # deny by default, like Docker's
    ours = [e for e in profile["syscalls"] if OURS in e.get("comment", "")]
    assert len(ours) == 1, ours
    entry = ours[0]
    assert sorted(entry["names"]) == ["chroot", "clone", "unshare"]
    assert entry["action"] == "SCMP_ACT_ALLOW" and not {"args", "includes", "excludes"} & set(entry)
    # Docker's own rules are still there: namespaces only with CAP_SYS_ADMIN, clone3 answered ENOSYS.
    default = without_comment(profile, OURS)["syscalls"]
    admin = next(e for e in default if e.get("includes", {}).get("caps") == ["CAP_SYS_ADMIN"] and "mount" in e["names"])
    assert {"clone", "unshare", "setns"} <= set(admin["names"])
    assert any(e["names"] == ["clone3"] and e.get("errnoRet") == 38 for e in default)
    assert not {"setns", "mount", "pivot_root"} & set(entry["names"])  # nothing beyond the sandbox's needs


@pytest.fixture
def base() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="waq-seccomp-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _chromium(base: Path, profile: dict, what: str) -> subprocess.Popen:
    """A headless chromium as the unprivileged user under `profile`, printing the DOM of a page that stays open
    for a second (so its renderer can be inspected)."""
    uid, gid = nonroot.ensure_user()
    home = base / f"home-{what}"
    nonroot.own(home, uid, gid)
    path = base / f"{what}.json"
    path.write_text(json.dumps(profile))
    argv = [sys.executable, "-m", "tests.helpers.seccomp", str(path), "/usr/bin/chromium", "--headless=new",
            "--disable-gpu", "--disable-dev-shm-usage", f"--user-data-dir={home / 'profile'}",
            "--virtual-time-budget=1000", "--dump-dom", "data:text/html,<p>sandboxed</p>"]
    return subprocess.Popen(nonroot.as_user(argv, uid, gid, base / "stash"), cwd=ROOT, text=True,
                            env={**os.environ, "HOME": str(home)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _renderers(profile_dir: Path) -> list[int]:
    from wa_queue import procs

    return [p for p in procs.pids_with_arg(f"--user-data-dir={profile_dir}") if "--type=renderer" in procs.cmdline(p)]


@pytest.mark.skipif(nonroot.unavailable() is not None or not Path("/usr/bin/chromium").exists(),
                    reason=f"{nonroot.unavailable() or '/usr/bin/chromium is missing'}")
@pytest.mark.timeout(120)
def test_chromium_as_non_root_needs_the_profile(base: Path) -> None:
    problem = nonroot.userns_problem(*nonroot.ensure_user(), base / "stash")
    if problem:
        pytest.skip(f"this kernel refuses user namespaces to {nonroot.USER} ({problem}): no profile can help")
    profile = json.loads(PROFILE.read_text())
    refused = _chromium(base, without_comment(profile, OURS), "docker-default")
    out, err = refused.communicate(timeout=60)
    assert refused.returncode != 0 and "No usable sandbox" in err, (refused.returncode, out, err[-2000:])

    allowed = _chromium(base, profile, "chrome")
    seen: dict[int, tuple[str, str]] = {}
    deadline = time.monotonic() + 60
    while allowed.poll() is None and time.monotonic() < deadline:
        for pid in _renderers(base / "home-chrome" / "profile"):
            try:
                status = Path(f"/proc/{pid}/status").read_text()
                seen[pid] = (os.readlink(f"/proc/{pid}/ns/user"), status.split("Seccomp:")[1].split()[0])
            except (OSError, IndexError):
                continue
        time.sleep(0.05)
    out, err = allowed.communicate(timeout=60)
    assert allowed.returncode == 0 and "<p>sandboxed</p>" in out, (allowed.returncode, err[-2000:])
    assert seen, "no renderer was seen"
    assert all(ns != os.readlink("/proc/self/ns/user") and mode == "2" for ns, mode in seen.values()), seen
