"""Fetching a media message's file from its URL, before the enqueue answers: through the outbound rule
(wa_queue/outbound.py: no loopback, private or link-local address unless WAQ_OUTBOUND_ALLOW names it, the checked
address pinned, no redirect followed), bounded in time (WAQ_MEDIA_FETCH_TIMEOUT_S, resolution included) and in size
(the largest kind's cap: a longer body is cut there and refused)."""

from __future__ import annotations

import http.client
from urllib.parse import quote, unquote, urlsplit

from wa_queue import outbound
from wa_queue.errors import MediaTooLarge, MediaUnavailable, OutboundRefused, ValidationError
from wa_queue.outbound import AllowList

USER_AGENT = "wa-queue media fetch"


def fetch(url: object, *, allow: AllowList, limit_bytes: int, timeout_s: float,
          resolve: outbound.Resolver | None = None) -> tuple[bytes, str | None]:
    """The body of a 200 answer to GET url, and the file name its path ends with (None when it ends with '/').
    ValidationError naming media for anything else: a refused address, a redirect, another status, a time-out, a
    body over `limit_bytes` (MediaTooLarge)."""
    if not isinstance(url, str) or not url:
        raise ValidationError("media.url must be an http or https URL", "media")
    # As a browser sends it: characters beyond ASCII in the path and query percent-encoded (the request line is ASCII).
    url = quote(url, safe=":/?#[]@!$&'()*+,;=%~")
    try:
        target = outbound.check_url(url, allow, resolve=resolve, deadline_s=timeout_s)
        answer = outbound.request(target, "GET", None, {"User-Agent": USER_AGENT, "Accept": "*/*"},
                                  deadline_s=timeout_s, max_body=limit_bytes + 1)
    except OutboundRefused as exc:
        raise MediaUnavailable(f"media.url is refused: {exc}", "media") from None
    except outbound.DeadlineExceeded:
        raise MediaUnavailable(f"media.url did not answer with its file within {timeout_s:g} s "
                              "(WAQ_MEDIA_FETCH_TIMEOUT_S)", "media") from None
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise MediaUnavailable(f"media.url could not be fetched: {type(exc).__name__}: {exc}", "media") from None
    if outbound.is_redirect(answer.status):
        raise MediaUnavailable(f"media.url answered {answer.status} (a redirect, not followed: give the final URL)",
                              "media")
    if answer.status != 200:
        raise MediaUnavailable(f"media.url answered {answer.status}, not 200", "media")
    if len(answer.body) > limit_bytes:
        raise MediaTooLarge(f"media.url's file is over {limit_bytes:,} bytes, the largest accepted", limit_bytes)
    declared = answer.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) != len(answer.body):
        raise MediaUnavailable(f"media.url's answer ended after {len(answer.body):,} of its {int(declared):,} bytes",
                              "media")
    name = unquote(urlsplit(url).path.rsplit("/", 1)[-1]) or None
    return answer.body, name
