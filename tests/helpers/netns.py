"""Hosts that really are apart, on one machine: network namespaces joined by veth pairs to one bridge.

Each host is a namespace (`ip netns`) with its own loopback and one interface, `eth0`, on a private /24; the bridge
lives in the test's own namespace and carries the subnet's first address, so the test process is one more machine
on the network (the simulator, standing for WhatsApp's servers, listens there). Processes run in a host through
`ip netns exec`, which execs the program in place: the pid the test holds is the program's.

A cut between two hosts drops, silently and in both directions, every packet between them, the way a partition
does: no reset, no ICMP, only silence. Connections the hosts hold stay open and stall; new ones time out. Every other
path stays up (a worker cut off from the infra host still reaches the simulator and the app host). It is made with
the neighbour table alone: each of the two hosts is told, permanently, that the other's address lives at a MAC no
interface has, so their frames go nowhere (the bridge floods an unknown unicast address, and every port's host drops
a frame that is not for it). Neither netfilter nor tc actions are needed (machines like this one lack both modules);
healing deletes the two entries and ARP finds the real addresses again.

Names derive from a tag (the test's pid), so parallel runs do not collide: namespaces `waq<tag>-<host>`, links
`wq<tag><n>` (IFNAMSIZ allows 15 characters), a subnet 10.<a>.<b>.0/24. `Network.remove()` deletes them all and
kills whatever still runs in the namespaces; `setup()` first removes what a killed earlier run with the same tag
left behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

NOWHERE_MAC = "02:00:00:00:de:ad"  # locally administered, unicast, on no interface: frames sent to it are lost


class NetnsUnavailable(RuntimeError):
    """This machine cannot make namespaces, veths or a bridge (not root, no `ip`, a container without
    CAP_NET_ADMIN): the test is skipped with this text."""


def _ip(*args: str, ns: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    argv = ["ip", *(("netns", "exec", ns, "ip") if ns else ()), *args]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip() or done.returncode}")
    return done


def subnet_for(tag: int) -> str:
    """A /24 in 10.100.0.0-10.199.255.0 picked by the tag: two runs collide only if their pids match mod 25600."""
    return f"10.{100 + (tag // 256) % 100}.{tag % 256}"


@dataclass
class Host:
    name: str  # short: infra, app, w1, ...
    ns: str  # the namespace's name
    address: str  # its eth0 address on the bridge
    port_link: str  # the veth end on the bridge, in the test's namespace

    def argv(self, argv: list[str]) -> list[str]:
        """`argv` run inside this host, under the host's own name (a UTS namespace: lease owners and the beat lock
        name the host). ip netns exec, unshare and sh each exec the next: the pid the caller gets is the program's."""
        return ["ip", "netns", "exec", self.ns, "unshare", "--uts", "sh", "-c", 'hostname "$0" && exec "$@"',
                self.ns, *argv]


@dataclass
class Network:
    tag: int
    hosts: dict[str, Host] = field(default_factory=dict)
    cuts: set[frozenset[str]] = field(default_factory=set)

    @property
    def prefix(self) -> str:
        return subnet_for(self.tag)

    @property
    def bridge(self) -> str:
        return f"wq{self.tag}br"

    @property
    def gateway(self) -> str:
        """The bridge's address: the test's own namespace on the hosts' network."""
        return f"{self.prefix}.1"

    def setup(self, names: list[str]) -> Network:
        """Make the bridge and one host per name. Raises NetnsUnavailable where the machine does not allow it."""
        problem = unavailable_reason()
        if problem:
            raise NetnsUnavailable(problem)
        planned = {name: Host(name, f"waq{self.tag}-{name}", f"{self.prefix}.{10 + n}", f"wq{self.tag}h{n}")
                   for n, name in enumerate(names)}
        self.hosts = planned
        self.remove()  # what a killed earlier run with this tag left
        self.hosts = planned
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.gateway}/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        for host in planned.values():
            self._add_host(host)
        return self

    def _add_host(self, host: Host) -> None:
        inner = host.port_link + "p"
        _ip("netns", "add", host.ns)
        _ip("link", "set", "lo", "up", ns=host.ns)  # chromedriver, Chrome's DevTools and local probes use 127.0.0.1
        _ip("link", "add", host.port_link, "type", "veth", "peer", "name", inner)
        _ip("link", "set", inner, "netns", host.ns)
        _ip("link", "set", inner, "name", "eth0", ns=host.ns)
        _ip("addr", "add", f"{host.address}/24", "dev", "eth0", ns=host.ns)
        _ip("link", "set", "eth0", "up", ns=host.ns)
        _ip("link", "set", host.port_link, "master", self.bridge)
        _ip("link", "set", host.port_link, "up")

    # ---- partitions ------------------------------------------------------------------------------------------
    def cut(self, a: str, b: str) -> None:
        """Lose every frame between hosts a and b, both ways: each one's neighbour entry for the other is nowhere."""
        self.cuts.add(frozenset((a, b)))
        for here, there in ((a, b), (b, a)):
            _ip("neigh", "replace", self.hosts[there].address, "lladdr", NOWHERE_MAC, "dev", "eth0", "nud", "permanent",
                ns=self.hosts[here].ns)

    def heal(self, a: str, b: str) -> None:
        self.cuts.discard(frozenset((a, b)))
        for here, there in ((a, b), (b, a)):
            _ip("neigh", "del", self.hosts[there].address, "dev", "eth0", ns=self.hosts[here].ns, check=False)

    def reachable(self, src: str, address: str, port: int, timeout_s: float = 1.0) -> bool:
        """Can host `src` open a TCP connection to address:port (bash's /dev/tcp, bounded by timeout)?"""
        probe = f"exec 3<>/dev/tcp/{address}/{port}"
        argv = ["ip", "netns", "exec", self.hosts[src].ns, "timeout", str(timeout_s), "bash", "-c", probe]
        done = subprocess.run(argv, capture_output=True, timeout=timeout_s + 10, check=False)
        return done.returncode == 0

    # ---- teardown --------------------------------------------------------------------------------------------
    def remove(self) -> list[int]:
        """Kill what still runs in the hosts, delete them, their links and the bridge; tolerate any part missing.
        Returns the pids that had to be killed here."""
        killed: list[int] = []
        for host in self.hosts.values():
            killed += _kill_namespace(host.ns)
            _ip("netns", "del", host.ns, check=False)
            _ip("link", "del", host.port_link, check=False)  # gone with the namespace, unless the move failed
        _ip("link", "del", self.bridge, check=False)
        self.cuts.clear()
        return killed


def _kill_namespace(ns: str) -> list[int]:
    if not Path(f"/run/netns/{ns}").exists():
        return []
    done = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True, timeout=20, check=False)
    pids = [int(p) for p in done.stdout.split() if p.isdigit()]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return pids


def unavailable_reason() -> str | None:
    """Why this machine cannot run the namespace test, or None. Tries a namespace, a bridge and a veth pair."""
    if os.geteuid() != 0:
        return "network namespaces need root (ip netns add)"
    if subprocess.run(["which", "ip"], capture_output=True, check=False).returncode != 0:
        return "no `ip` on PATH (iproute2)"
    probe = f"wqprobe{os.getpid() % 10**7}"
    try:
        _ip("netns", "add", probe)
        _ip("link", "add", f"{probe}b", "type", "bridge")
        _ip("link", "add", f"{probe}v", "type", "veth", "peer", "name", f"{probe}p")
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        return f"this machine does not allow network namespaces, bridges or veth pairs: {exc}"
    finally:
        _ip("link", "del", f"{probe}v", check=False)
        _ip("link", "del", f"{probe}b", check=False)
        _ip("netns", "del", probe, check=False)
    return None
