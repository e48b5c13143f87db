"""Markup profiles: which of the 2026 forms of WhatsApp Web's message rows the simulator renders.

Flask-free so settings.py can validate WAQ_SIM_MARKUP without importing the app. The page (sim-render.js) holds
what each profile looks like; README.md next to this file documents it.
"""

from __future__ import annotations

MARKUPS = ("2026-03", "2026-05", "2026-08", "2026-11", "unknown")
DEFAULT_MARKUP = "2026-11"
MAX_CLOCK_SKEW_S = 366 * 24 * 3600.0  # WAQ_SIM_CLOCK_SKEW_S: a year either way; past that it is a typo, not a drift


def check_markup(name: str) -> str:
    """`name` if it is a known profile, else ValueError naming the known ones."""
    if name not in MARKUPS:
        raise ValueError(f"unknown markup profile {name!r}; known: {', '.join(MARKUPS)}")
    return name
