"""The page's clock: how far WhatsApp Web's clock is from this machine's, estimated from the sends' own rows.

Each send's row shows the minute it was sent by the page's clock (chat.clock_offset_ms turns that into one sample);
the estimate is the median of the last OFFSET_SAMPLES, which find_sent uses to place rows in time when it has no
picture, and which the worker writes to the session record (SessionRecord.page_clock_offset_s).
"""

from __future__ import annotations

import logging
import statistics
from collections import deque
from typing import Any

from wa_queue.transport.chat import PAGE_CLOCK_WARN_S, clock_offset_ms

log = logging.getLogger(__name__)

# The estimate is the median of this many recent sends' samples: one misread row cannot move it.
OFFSET_SAMPLES = 15


class PageClock:
    def __init__(self, session: str) -> None:
        self.session = session
        self._offsets: deque[float] = deque(maxlen=OFFSET_SAMPLES)  # page clock minus ours, ms, one a send

    def offset_ms(self) -> float | None:
        """The page's clock minus ours, in ms; None before the first sample."""
        return statistics.median(self._offsets) if self._offsets else None

    def note(self, row: dict[str, Any], chat: dict[str, Any], clicked_ms: float, now_ms: float) -> None:
        """One sample, from the time the click's own row shows; a warning when the estimate is far off (at the third
        sample and once the window is full, not at every send)."""
        sample = clock_offset_ms(row, chat.get("zone"), clicked_ms, now_ms)
        if sample is None:
            return
        self._offsets.append(sample)
        offset = self.offset_ms() or 0.0
        if abs(offset) > PAGE_CLOCK_WARN_S * 1000 and len(self._offsets) in (3, OFFSET_SAMPLES):
            log.warning("session %s: the page's clock is %.0f s %s this machine's: check this machine's clock (NTP)",
                        self.session, abs(offset) / 1000, "ahead of" if offset > 0 else "behind")
