"""Regular expressions for sets of numbers and of IPv4 networks, in the syntax Python and OpenAPI (ECMA-262) read
alike: what lets a published pattern say "a public IPv4 address, or one WAQ_OUTBOUND_ALLOW names" exactly, so that
a client checking the document and the API checking the request agree.

Numbers are decimal without leading zeros (an address's octets as a dotted quad writes them, a port).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable


def number_range(low: int, high: int) -> str:
    """A regex (no anchors, one group) matching the decimal numbers low..high, written without leading zeros."""
    if not 0 <= low <= high:
        raise ValueError(f"not a range of natural numbers: {low}..{high}")
    parts = []
    for digits in range(1, len(str(high)) + 1):  # one part per length: 0-9, 10-99, 100-999, ...
        first, last = max(low, 10 ** (digits - 1) if digits > 1 else 0), min(high, 10 ** digits - 1)
        if first <= last:
            parts.append(_same_length(str(first), str(last)))
    return "(?:" + "|".join(parts) + ")"


def _same_length(low: str, high: str) -> str:
    """Numbers between low and high, both strings of the same length (the first digit of a longer one is not 0)."""
    if len(low) == 1:
        return low if low == high else f"[{low}-{high}]"
    if low[0] == high[0]:
        return low[0] + _same_length(low[1:], high[1:])
    rest = len(low) - 1
    parts = []
    if low[1:] == "0" * rest:
        first = low[0]
    else:
        parts.append(low[0] + _group(_same_length(low[1:], "9" * rest)))
        first = str(int(low[0]) + 1)
    last = high[0] if high[1:] == "9" * rest else str(int(high[0]) - 1)
    if first <= last:
        parts.append((first if first == last else f"[{first}-{last}]") + f"[0-9]{{{rest}}}")
    if high[1:] != "9" * rest:
        parts.append(high[0] + _group(_same_length("0" * rest, high[1:])))
    return "(?:" + "|".join(parts) + ")"


def _group(regex: str) -> str:
    return regex if regex.startswith("(?:") or len(regex) == 1 or regex.startswith("[") and regex.endswith("]") \
        else f"(?:{regex})"


def ipv4_networks(networks: Iterable[ipaddress.IPv4Network]) -> str:
    """A regex (no anchors, one group) matching exactly the dotted quads (octets 0-255 without leading zeros) of the
    addresses in `networks`. Octet by octet: runs of first octets that share what may follow them share one part, so
    "every public address" stays a few kilobytes."""
    spans = [(int(net.network_address), int(net.broadcast_address)) for net in ipaddress.collapse_addresses(networks)]
    return _octets(spans, 4) if spans else "(?!)"


def _octets(spans: list[tuple[int, int]], count: int) -> str:
    """The regex of `count` dotted octets whose value (as one number) lies in one of the sorted, disjoint spans."""
    size = 256 ** (count - 1)  # the addresses under one value of the first octet
    if spans == [(0, 256 * size - 1)]:
        return r"\.".join([number_range(0, 255)] * count)
    by_first: list[tuple[int, str]] = []
    for first in range(256):
        low, high = first * size, first * size + size - 1
        inside = [(max(a, low) - low, min(b, high) - low) for a, b in spans if a <= high and b >= low]
        if inside:
            by_first.append((first, _octets(inside, count - 1) if count > 1 else ""))
    parts = []
    run_start = 0
    for i in range(1, len(by_first) + 1):  # consecutive first octets with the same rest: one range
        if i == len(by_first) or by_first[i][1] != by_first[run_start][1] or by_first[i][0] != by_first[i - 1][0] + 1:
            first, rest = by_first[run_start][0], by_first[run_start][1]
            head = number_range(first, by_first[i - 1][0])
            parts.append(head + (r"\." + rest if rest else ""))
            run_start = i
    return "(?:" + "|".join(parts) + ")"
