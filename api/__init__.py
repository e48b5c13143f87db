"""The REST API (Flask-RESTX): enqueue, look-up, monitoring and admin endpoints. Build it with create_app()."""

from __future__ import annotations


def create_app(hub=None):  # noqa: ANN001, ANN201 - lazy import keeps `import api` cheap
    from api.app import create_app as build

    return build(hub)


__all__ = ["create_app"]
