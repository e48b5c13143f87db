"""The App (wa_queue/app.py) of the Flask app serving the request: create_app() keeps it in app.extensions."""

from __future__ import annotations

from flask import current_app

from wa_queue.app import App

EXTENSION = "waq"


def waq() -> App:
    return current_app.extensions[EXTENSION]
