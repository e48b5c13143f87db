"""A local stand-in for WhatsApp Web for demos and tests; see README.md.

The app is imported lazily so that `wa_queue.simulator.profiles` (read by settings.py) does not pull in Flask.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SimServer", "create_app", "serve"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from wa_queue.simulator import app

        return getattr(app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
