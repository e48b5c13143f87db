"""The Hub (wa_queue/hub.py) of the Flask app serving the request: create_app() keeps it in app.extensions."""

from __future__ import annotations

from flask import current_app

from wa_queue.hub import Hub

EXTENSION = "waq"


def current_hub() -> Hub:
    return current_app.extensions[EXTENSION]
