"""Chrome's sandbox choice (WAQ_CHROME_SANDBOX): whether the sender adds --no-sandbox, and why.

Debian's chromium package comes without the setuid helper (the separate chromium-sandbox package), so its sandbox
is the namespace sandbox: an unprivileged process clones itself into new user, PID and network namespaces. Root
cannot use it (Chrome refuses to start as root without --no-sandbox), and Docker's default seccomp profile refuses
clone/unshare with namespace flags to a container without CAP_SYS_ADMIN ("No usable sandbox");
deploy/chrome-seccomp.json is that profile plus them.

- on: never --no-sandbox. If Chrome cannot sandbox itself it does not start, and the sender says why
  (`unusable_reason`): fail closed, never silently unsandboxed.
- off: always --no-sandbox, for a container run without the seccomp profile (or as root).
- auto: sandboxed unless running as root or this process cannot create the namespaces (a child tries, once per
  process); the reason is logged. A Chrome with a setuid helper could sandbox itself even then: use `on` for it.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import subprocess
import sys
from collections.abc import Callable

# Said by the sender when a sandboxed Chrome did not start for a reason found here; sessions.error_hint keys on it.
UNUSABLE = "Chrome's sandbox is unusable here"

# The namespaces Chrome's zygote creates (sandbox/linux/services/namespace_sandbox.cc), in one unshare: the kernel
# makes the user namespace first, which then owns the other two. The same seccomp rules govern clone and unshare.
_PROBE = """
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.unshare(0x10000000 | 0x20000000 | 0x40000000) != 0:  # CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET
    sys.exit("unshare(CLONE_NEWUSER|CLONE_NEWPID|CLONE_NEWNET): " + os.strerror(ctypes.get_errno()))
"""
PROBE_TIMEOUT_S = 10.0


@dataclasses.dataclass(frozen=True)
class SandboxChoice:
    """Whether Chrome runs sandboxed, under which WAQ_CHROME_SANDBOX mode, and why (for the log)."""

    mode: str
    sandboxed: bool
    reason: str
    fallback: bool = False  # auto chose no sandbox for want of user namespaces: worth a warning

    @property
    def args(self) -> tuple[str, ...]:
        return () if self.sandboxed else ("--no-sandbox",)

    def describe(self) -> str:
        state = "on" if self.sandboxed else "off (--no-sandbox)"
        return f"Chrome sandbox {state}: WAQ_CHROME_SANDBOX={self.mode}, {self.reason}"


@functools.lru_cache(maxsize=1)
def userns_problem() -> str | None:
    """Why this process cannot create the namespaces Chrome's sandbox needs, or None when it can.

    A child process tries (the namespaces it makes die with it; -I -S: no site packages, a fast start). Cached: the
    kernel setting and the seccomp filter a process runs under do not change during its life."""
    try:
        done = subprocess.run([sys.executable, "-I", "-S", "-c", _PROBE], capture_output=True, text=True,
                              timeout=PROBE_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"the user-namespace probe did not run: {exc}"
    if done.returncode == 0:
        return None
    lines = done.stderr.strip().splitlines()
    return lines[-1] if lines else f"the user-namespace probe exited with {done.returncode}"


Probe = Callable[[], str | None]  # userns_problem, or a stand-in in tests


def sandbox_choice(mode: str, *, euid: int | None = None, probe: Probe = userns_problem) -> SandboxChoice:
    """The sandbox decision for WAQ_CHROME_SANDBOX=`mode` in this process (`euid` and `probe` for tests)."""
    euid = os.geteuid() if euid is None else euid
    if mode == "on":
        return SandboxChoice(mode, True, "required by the operator")
    if mode == "off":
        return SandboxChoice(mode, False, "turned off by the operator")
    if mode != "auto":
        raise ValueError(f"WAQ_CHROME_SANDBOX={mode!r}: accepts auto, on or off")
    if euid == 0:
        return SandboxChoice(mode, False, "running as root (Chrome refuses its sandbox to root)")
    problem = probe()
    if problem:
        return SandboxChoice(mode, False, f"user namespaces unavailable ({problem}); in Docker, run with "
                                          "security_opt seccomp=deploy/chrome-seccomp.json", fallback=True)
    return SandboxChoice(mode, True, "user namespaces available")


def unusable_reason(choice: SandboxChoice, *, euid: int | None = None, probe: Probe = userns_problem) -> str | None:
    """Why a sandboxed Chrome cannot start in this process, if a reason is found (said after 'did not start')."""
    if not choice.sandboxed:
        return None
    euid = os.geteuid() if euid is None else euid
    if euid == 0:
        return f"{UNUSABLE}: running as root (WAQ_CHROME_SANDBOX={choice.mode})"
    problem = probe()
    if problem:
        return f"{UNUSABLE}: user namespaces unavailable, {problem} (WAQ_CHROME_SANDBOX={choice.mode})"
    return None
