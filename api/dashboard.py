"""The operator dashboard at /admin/settings/whatsapp-monitoring: static HTML, CSS and JS, no build step.

The page itself holds no data and needs no key; its script asks the operator for an admin key once (kept in the
tab's sessionStorage) and reads everything from the admin API with that key in X-API-Key. So the page adds no
new way in: whoever lacks a key sees an empty shell. A strict Content-Security-Policy allows only this origin's
scripts and styles (no inline code) and blob: images (the session QR codes, fetched with the key).
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Flask, Response, send_from_directory

PATH = "/admin/settings/whatsapp-monitoring"
STATIC_DIR = Path(__file__).resolve().parent / "static"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; connect-src 'self'; "
       "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")

blueprint = Blueprint("waq_dashboard", __name__, static_folder=str(STATIC_DIR), static_url_path=PATH + "/static")


@blueprint.route(PATH, strict_slashes=False)
def page() -> Response:
    response = send_from_directory(STATIC_DIR, "dashboard.html", mimetype="text/html", max_age=0)
    response.headers["Cache-Control"] = "no-cache"
    return response


@blueprint.after_request
def _security_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    return response


def register(app: Flask) -> None:
    """Serve the dashboard page and its static files."""
    app.register_blueprint(blueprint)
