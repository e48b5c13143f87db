"""Where the simulator may listen. Its control API (/__sim__/...: scan, faults, bans, state) has no authentication,
so by default it serves loopback only; another address needs an explicit `unsafe_listen` (`waq simulator
--unsafe-listen`), e.g. a test that puts it on a network namespace's bridge. Flask-free (the CLI imports it)."""

from __future__ import annotations

import ipaddress
import socket


class UnsafeListen(ValueError):
    """A non-loopback host without unsafe_listen."""


def is_loopback(host: str) -> bool:
    """Every address `host` names is a loopback one (127.0.0.0/8, ::1); a name is resolved. The unspecified
    addresses (0.0.0.0, ::) listen on every interface: not loopback."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        found = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except (OSError, UnicodeError):
        return False
    return bool(found) and all(ipaddress.ip_address(a.split("%", 1)[0]).is_loopback for a in found)


def check_listen_host(host: str, unsafe_listen: bool = False) -> str:
    """`host`, or UnsafeListen when it is not loopback and `unsafe_listen` is not given."""
    if not unsafe_listen and not is_loopback(host):
        raise UnsafeListen(f"the simulator's control API has no authentication: it listens on loopback only, not on "
                           f"{host!r}, unless --unsafe-listen (SimServer(unsafe_listen=True)) is given")
    return host
