"""Run a command under a Docker-format seccomp profile without Docker: libseccomp (ctypes) builds the filter the way
Docker does for a container with Docker's default capabilities on this architecture, loads it, and execs.

    python -m tests.helpers.seccomp PROFILE.json COMMAND [ARG...]

Only what Docker's profiles use is implemented: defaultAction/defaultErrnoRet, per-syscall ALLOW/ERRNO actions,
includes/excludes by caps, arches and minKernel, and argument comparisons (one rule per entry, all its args ANDed).
"""

from __future__ import annotations

import ctypes
import json
import os
import platform
import sys
from pathlib import Path

# Docker's default capability set (moby oci/caps/defaults.go): what includes/excludes "caps" are judged against.
DOCKER_CAPS = frozenset({
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
    "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL",
    "CAP_AUDIT_WRITE",
})
_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
_OPS = {"SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4, "SCMP_CMP_GE": 5, "SCMP_CMP_GT": 6,
        "SCMP_CMP_MASKED_EQ": 7}
_ALLOW = 0x7FFF0000


class _ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("datum_a", ctypes.c_uint64),
                ("datum_b", ctypes.c_uint64)]


def _action(name: str, errno_ret: int | None, default_errno: int) -> int:
    if name == "SCMP_ACT_ALLOW":
        return _ALLOW
    if name == "SCMP_ACT_ERRNO":
        return 0x00050000 | ((default_errno if errno_ret is None else errno_ret) & 0xFFFF)
    raise ValueError(f"action {name} is not supported here")


def _kernel() -> tuple[int, ...]:
    return tuple(int(p) for p in platform.release().split("-")[0].split(".")[:2])


def _applies(entry: dict, caps: frozenset[str]) -> bool:
    inc, exc = entry.get("includes", {}), entry.get("excludes", {})
    if inc.get("caps") and not set(inc["caps"]) <= caps:
        return False
    if inc.get("arches") and _ARCH not in inc["arches"]:
        return False
    if inc.get("minKernel") and _kernel() < tuple(int(p) for p in inc["minKernel"].split(".")):
        return False
    if exc.get("caps") and set(exc["caps"]) & caps:
        return False
    return not (exc.get("arches") and _ARCH in exc["arches"])


def load(profile: dict, caps: frozenset[str] = DOCKER_CAPS) -> None:
    """Install the profile's filter on this process (inherited by everything it execs and forks)."""
    lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint,
                                           ctypes.POINTER(_ArgCmp)]
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    default_errno = profile.get("defaultErrnoRet", 1)
    ctx = lib.seccomp_init(_action(profile["defaultAction"], None, default_errno))
    if not ctx:
        raise OSError("seccomp_init failed")
    default = _action(profile["defaultAction"], None, default_errno)
    for entry in profile["syscalls"]:
        if not _applies(entry, caps):
            continue
        action = _action(entry["action"], entry.get("errnoRet"), default_errno)
        if action == default:
            continue  # libseccomp refuses a rule that repeats the default (so does Docker's runtime)
        args = entry.get("args") or []
        cmps = (_ArgCmp * max(len(args), 1))(*[
            _ArgCmp(a["index"], _OPS[a["op"]], a["value"], a.get("valueTwo", 0)) for a in args])
        for name in entry["names"]:
            number = lib.seccomp_syscall_resolve_name(name.encode())
            if number < 0:
                continue  # not a syscall on this architecture
            rc = lib.seccomp_rule_add_array(ctx, action, number, len(args), cmps)
            if rc != 0:
                raise OSError(-rc, f"seccomp rule for {name}: {os.strerror(-rc)}")
    rc = lib.seccomp_load(ctx)
    if rc != 0:
        raise OSError(-rc, f"seccomp_load: {os.strerror(-rc)}")


def without_comment(profile: dict, marker: str) -> dict:
    """The profile minus the entries whose comment contains `marker` (e.g. back to Docker's default)."""
    return {**profile, "syscalls": [e for e in profile["syscalls"] if marker not in e.get("comment", "")]}


if __name__ == "__main__":
    load(json.loads(Path(sys.argv[1]).read_text()))
    os.execvp(sys.argv[2], sys.argv[2:])
