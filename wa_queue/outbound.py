"""The outbound rule: what every URL this system posts to (status callbacks, the admin webhook) or will fetch (media,
reply webhooks) must pass, and the one way to connect to it.

Why: producers choose callback URLs. Without the rule a producer could make a worker POST, with a path and query of
its choice, to anything the worker can reach: Redis, MongoDB, a cloud metadata service (169.254.169.254), an admin
port on loopback. So:

- `check_url(url, allow)` resolves the host once and refuses loopback, private, link-local, CGNAT (100.64.0.0/10),
  multicast, reserved, unspecified and IPv4-mapped IPv6 addresses (and 6to4, Teredo or NAT64 forms of them) unless
  `WAQ_OUTBOUND_ALLOW` names the host or a network holding the address. It returns a `Target` holding the address
  that was checked.
- `request(target, ...)` connects to exactly that address (never resolving the name again, which a DNS answer that
  changes between check and connect, "DNS rebinding", would exploit), sends the original Host header and, for
  https, the original name as TLS SNI and as the name the certificate must carry. It never follows a redirect: the
  caller decides what a 3xx means (`is_redirect`).
- The whole call, name resolution included, has a wall-clock deadline: a watchdog shuts the socket when it passes,
  so a receiver that drips one byte at a time cannot hold a worker longer than the deadline (a per-read timeout
  alone restarts at every byte).

Enqueue-time form checks (IPv4 only as dotted quads, IDNA) live in wa_queue/validation.py, the one home of input
rules; `host_form_problem` below is what it calls, so the form rule has one owner too.
"""

from __future__ import annotations

import dataclasses
import functools
import http.client
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from wa_queue.errors import OutboundRefused

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[..., list[Any]]  # socket.getaddrinfo's signature

DEFAULT_DEADLINE_S = 10.0  # the whole call: resolve, connect, TLS, send, status line, headers, body
CONNECT_TIMEOUT_S = 5.0
MAX_BODY_BYTES = 64 * 1024  # a callback's answer is not used; read a little so the connection ends cleanly
CGNAT = ipaddress.ip_network("100.64.0.0/10")  # RFC 6598; `ipaddress` calls it neither private nor global
NAT64 = ipaddress.ip_network("64:ff9b::/96")
_DIGITS = frozenset("0123456789")


class DeadlineExceeded(TimeoutError):
    """The call outlived its deadline (an OSError, as a timeout is: the receiver may answer in time later)."""


@dataclasses.dataclass(frozen=True)
class AllowList:
    """Hosts (exact names, any case) and networks an operator lets the system reach despite the rule."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()

    def allows_host(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.hosts

    def allows_address(self, address: IPAddress) -> bool:
        return any(address.version == net.version and address in net for net in self.networks)

    def __bool__(self) -> bool:
        return bool(self.hosts or self.networks)


NOTHING_ALLOWED = AllowList()


def parse_allow(entries: Iterable[str]) -> AllowList:
    """WAQ_OUTBOUND_ALLOW's entries -> AllowList. An entry is a host name, an IP address or a CIDR network; anything
    else (a URL, a port, a network with host bits set) raises ValueError naming it."""
    hosts: set[str] = set()
    networks: list[IPNetwork] = []
    for raw in entries:
        entry = raw.strip()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=True))
            continue
        except ValueError as exc:
            if "/" in entry and entry.rsplit("/", 1)[1].isdigit():
                raise ValueError(f"{entry!r} is not a CIDR network ({exc})") from None
        name = entry.lower().rstrip(".")
        if host_form_problem(name) or not name or any(c in name for c in ":/@ "):
            raise ValueError(f"{entry!r} is neither a host name, an IP address nor a CIDR network such as 10.0.0.0/8")
        hosts.add(name)
    return AllowList(frozenset(hosts), tuple(networks))


# ---- the rule ----------------------------------------------------------------------------------------------------
def host_form_problem(host: str) -> str | None:
    """Why a URL's host is written in a refused form, or None. An IPv4 address must be a dotted quad of decimal
    numbers 0-255 without leading zeros: 2130706433, 0x7f000001, 127.1, 0 and 0177.0.0.1 all reach 127.0.0.1 through
    inet_aton, and a form check that does not know them is easily passed. A name must encode to IDNA (labels of
    1-63 characters, 253 in all)."""
    name = host.rstrip(".")
    labels = name.split(".")
    last = labels[-1].lower()
    if last and (set(last) <= _DIGITS or (last.startswith("0x") and all(c in "0123456789abcdef" for c in last[2:]))):
        # WHATWG's rule: a host whose last label is a number is an IPv4 address, in whichever form.
        quad = len(labels) == 4 and all(
            label and set(label) <= _DIGITS and (label == "0" or not label.startswith("0")) and int(label) <= 255
            for label in labels)
        if not quad or name != host:
            return f"{host!r} is an IPv4 address not written as four decimal numbers 0-255 (such as 192.0.2.10)"
        return None
    try:
        encoded = name.encode("idna")
    except UnicodeError as exc:
        return f"the host {host[:100]!r} cannot be encoded (IDNA: {exc})"
    if not encoded or len(encoded) > 253:
        return f"the host {host[:100]!r} cannot be encoded (IDNA: empty or longer than 253 characters)"
    return None


def literal_problem(host: str, allow: AllowList = NOTHING_ALLOWED) -> str | None:
    """Why the rule refuses a host written as an IP address, or None (a public address, one WAQ_OUTBOUND_ALLOW
    names, or a host name: a name is judged by what it resolves to, at delivery). What the enqueue applies, so a
    literal such as 127.0.0.1 or 169.254.169.254 is refused before it is stored; check_url applies it again."""
    literal = _literal(host.lower())
    if literal is None or allow.allows_host(host) or allow.allows_address(literal):
        return None
    why = refusal_reason(literal)
    return f"{host} is {why}; WAQ_OUTBOUND_ALLOW does not name it" if why else None


# IANA's IPv4 special-purpose and multicast blocks (RFC 6890 and after): every edge where refusal_reason may change.
# Only reachable_ipv4 reads them, to cut the address space at those edges; refusal_reason alone decides each piece.
_IPV4_EDGES = tuple(ipaddress.IPv4Network(net) for net in (
    "0.0.0.0/8", "0.0.0.0/32", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
    "192.0.0.0/24", "192.0.0.0/29", "192.0.0.8/32", "192.0.0.9/32", "192.0.0.10/32", "192.0.0.170/31",
    "192.0.2.0/24", "192.31.196.0/24", "192.52.193.0/24", "192.88.99.0/24", "192.168.0.0/16", "192.175.48.0/24",
    "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4", "255.255.255.255/32"))


@functools.lru_cache(maxsize=16)
def reachable_ipv4(allow: AllowList = NOTHING_ALLOWED) -> tuple[ipaddress.IPv4Network, ...]:
    """The IPv4 networks a URL may name as a literal: the public ones and those `allow` names, collapsed. What the
    published callback_url pattern admits as a dotted quad (wa_queue/validation.py)."""
    edges = _IPV4_EDGES + tuple(net for net in allow.networks if net.version == 4)
    found: list[ipaddress.IPv4Network] = []

    def walk(network: ipaddress.IPv4Network) -> None:
        if all(edge.supernet_of(network) or not edge.overlaps(network) for edge in edges):  # no edge inside
            if literal_problem(str(network.network_address), allow) is None:
                found.append(network)
            return
        for half in network.subnets():
            walk(half)

    walk(ipaddress.IPv4Network("0.0.0.0/0"))
    return tuple(ipaddress.collapse_addresses(found))


def refusal_reason(address: IPAddress) -> str | None:
    """Why the rule refuses this address, or None for a public one."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return "an IPv4-mapped IPv6 address"
        embedded = address.sixtofour or (address.teredo[1] if address.teredo else None)
        if embedded is None and address in NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None and refusal_reason(embedded):
            return f"an IPv6 form of {embedded} ({refusal_reason(embedded)})"
    for test, why in ((lambda a: a.is_unspecified, "unspecified"), (lambda a: a.is_loopback, "loopback"),
                      (lambda a: a.version == 4 and a in CGNAT, "CGNAT (100.64.0.0/10)"),
                      (lambda a: a.is_link_local, "link-local"), (lambda a: a.is_multicast, "multicast"),
                      (lambda a: a.is_private, "private"), (lambda a: a.is_reserved, "reserved"),
                      (lambda a: not a.is_global, "not a public address")):
        if test(address):
            return why
    return None


@dataclasses.dataclass(frozen=True)
class Target:
    """A URL that passed the rule, with the address it was checked at: connect there and nowhere else."""

    url: str
    scheme: str
    host: str  # as the URL gives it, lower case: the Host header, TLS SNI and the certificate's name
    port: int
    address: str  # the checked IP address
    path: str  # path and query, as sent in the request line

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        name = f"[{self.host}]" if ":" in self.host else self.host
        return name if self.port == default else f"{name}:{self.port}"


def check_url(url: str, allow: AllowList = NOTHING_ALLOWED, *, resolve: Resolver | None = None,
              deadline_s: float = DEFAULT_DEADLINE_S) -> Target:
    """Resolve the URL's host once and apply the rule; raise OutboundRefused (final) or OSError (resolution failed or
    timed out: may work later). Every address the name resolves to must pass, so that which one a connection would
    pick cannot matter."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise OutboundRefused(f"{url[:100]!r} is not a URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or any(ord(c) < 33 or ord(c) == 127 for c in url):
        raise OutboundRefused(f"{url[:100]!r} is not an http or https URL")
    if parts.username is not None or parts.password is not None:
        raise OutboundRefused("URLs with a user name or password are refused")
    host = parts.hostname.lower()
    literal = _literal(host)
    problem = None if literal is not None else host_form_problem(host)
    if problem and not allow.allows_host(host):
        raise OutboundRefused(problem)
    addresses = [literal] if literal is not None else _resolve(host, port, resolve or socket.getaddrinfo, deadline_s)
    if literal is not None:
        problem = literal_problem(host, allow)
        if problem:
            raise OutboundRefused(problem)
    elif not allow.allows_host(host):
        for address in addresses:
            why = None if allow.allows_address(address) else refusal_reason(address)
            if why:
                raise OutboundRefused(f"{host} resolves to {address}, which is {why}; WAQ_OUTBOUND_ALLOW does not "
                                      "name it")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(url, parts.scheme, host, port, str(addresses[0]), path)


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None


def _resolve(host: str, port: int, resolve: Resolver, deadline_s: float) -> list[IPAddress]:
    """getaddrinfo in a helper thread, waited for at most the deadline: the C resolver cannot be interrupted."""
    found: list[Any] = []
    failed: list[BaseException] = []

    def run() -> None:
        try:
            found.extend(resolve(host.encode("idna").decode("ascii"), port, type=socket.SOCK_STREAM))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            failed.append(exc)

    thread = threading.Thread(target=run, name="waq-resolve", daemon=True)
    thread.start()
    thread.join(max(0.1, deadline_s))
    if thread.is_alive():
        raise DeadlineExceeded(f"resolving {host} took longer than {deadline_s:g} s")
    if failed:
        exc = failed[0]
        raise exc if isinstance(exc, OSError) else OSError(f"resolving {host}: {exc}")
    addresses = list(dict.fromkeys(_literal(str(info[4][0])) for info in found))
    if not addresses or None in addresses:
        raise OSError(f"{host} resolved to no usable address")
    return addresses  # type: ignore[return-value]


# ---- connecting to the checked address -----------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]
    body: bytes


def is_redirect(status: int) -> bool:
    return 300 <= status < 400


class _PinnedHTTP(http.client.HTTPConnection):
    """HTTP to the checked address; `host` stays the URL's name, which http.client puts in the Host header."""

    def __init__(self, target: Target, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self._address = target.address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), min(CONNECT_TIMEOUT_S, self.timeout))
        self.sock.settimeout(self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPS(_PinnedHTTP):
    """HTTPS to the checked address, with the URL's name as SNI and as the name the certificate must carry."""

    default_port = 443

    def __init__(self, target: Target, timeout: float, context: ssl.SSLContext) -> None:
        super().__init__(target, timeout)
        self._context = context

    def connect(self) -> None:
        super().connect()
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self.host)


def request(target: Target, method: str, body: bytes | None, headers: Mapping[str, str], *,
            deadline_s: float = DEFAULT_DEADLINE_S, max_body: int = MAX_BODY_BYTES,
            tls: ssl.SSLContext | None = None) -> Response:
    """One request to the checked address, bounded by `deadline_s` in all. Redirects are returned, never followed.
    Raises DeadlineExceeded past the deadline and OSError / http.client.HTTPException on a failed exchange."""
    started = time.monotonic()
    read_timeout = max(0.1, deadline_s)
    if target.scheme == "https":
        conn: _PinnedHTTP = _PinnedHTTPS(target, read_timeout, tls or ssl.create_default_context())
    else:
        conn = _PinnedHTTP(target, read_timeout)
    expired = threading.Event()

    def cut() -> None:
        # Whatever the connection is blocked in (connect, TLS, a read of one more dripped byte) returns now.
        expired.set()
        sock = conn.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    watchdog = threading.Timer(max(0.0, deadline_s - (time.monotonic() - started)), cut)
    watchdog.daemon = True
    watchdog.start()
    try:
        conn.putrequest(method, target.path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", target.host_header)
        for name, value in headers.items():
            conn.putheader(name, value)
        conn.putheader("Content-Length", str(len(body or b"")))
        conn.putheader("Connection", "close")
        conn.endheaders(body)
        answer = conn.getresponse()
        data = answer.read(max_body)
        if expired.is_set():
            raise DeadlineExceeded(f"{target.host} did not answer within {deadline_s:g} s")
        return Response(answer.status, {k.lower(): v for k, v in answer.getheaders()}, data)
    except (OSError, http.client.HTTPException, ValueError) as exc:
        if expired.is_set():
            raise DeadlineExceeded(f"{target.host} did not answer within {deadline_s:g} s") from None
        raise exc
    finally:
        watchdog.cancel()
        conn.close()
