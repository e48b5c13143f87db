"""A free TCP port on the loopback, for a process started here (the launcher's Redis, the tests', the benches')."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A port nothing listens on now. The kernel may hand it out again once released, so bind it soon."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
