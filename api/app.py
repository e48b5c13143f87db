"""The API application: create_app() builds Flask + Flask-RESTX with one namespace per module.

    gunicorn 'api.app:create_app()'

OpenAPI (Swagger 2.0) at /api/swagger.json, Swagger UI at /api/docs (both need a key, like everything but /healthz;
a browser may give it as the password of HTTP basic auth, see auth.protect_docs). Swagger UI's Authorize button takes
the key for the calls it tries.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from flask import Flask
from flask_restx import Api

from api import (
    archive,
    auth,
    batches,
    context,
    dashboard,
    errors,
    failed,  # noqa: F401 - adds the failed-message routes to health.ns (the "monitoring" namespace)
    health,
    inbound,
    media,
    messages,
    metrics,
    openapi,
    sessions,
    suppressions,
)
from wa_queue.hub import Hub


class JsonApi(Api):
    """Flask-RESTX with the project's error shape instead of RESTX's {"message": ...}."""

    def handle_error(self, e: Exception):  # noqa: ANN201 - returns a Flask response, like the parent
        return errors.error_response(e)

    @cached_property
    def __schema__(self) -> dict[str, Any]:  # the document, with this app's sessions and gunicorn's refusals
        settings = self.app.extensions[context.EXTENSION].settings
        document = openapi.filled_schema(Api.__schema__.fget(self), settings.sessions, settings.outbound_allow)
        return openapi.with_message_shapes(openapi.with_server_refusals(document))


def create_app(hub: Hub | None = None) -> Flask:
    """Build the API app over `hub` (default: a Hub of its own, from the WAQ_* variables), kept in
    app.extensions["waq"] (api/context.py), where every request finds it."""
    hub = hub or Hub.build()
    settings = hub.settings
    # Answer once committed and publish in the background (wa_queue/broker/relay.py): requests do not wait for the
    # broker, and concurrent ones share a publish.
    hub.publish_in_background()
    app = Flask("wa_queue_api")
    app.extensions[context.EXTENSION] = hub
    app.url_map.converters["message_id"] = openapi.MessageIdConverter  # before the routes that use it
    app.config.update(
        MAX_CONTENT_LENGTH=settings.max_request_bytes,  # werkzeug answers 413 (JSON, see errors.py) past this
        RESTX_MASK_SWAGGER=False,  # no X-Fields parameter: responses are never masked
        RESTX_ERROR_404_HELP=False,
        ERROR_INCLUDE_MESSAGE=False,
        RESTX_JSON={"ensure_ascii": False},
        SWAGGER_UI_DOC_EXPANSION="list",  # Swagger UI opens with every operation listed, ready to try
    )
    errors.register(app)
    api = JsonApi(
        app, version="1.0", title="wa-queue API",
        description="Queue WhatsApp messages that are never lost, and operate the queue. "
                    f"Every operation but /healthz needs the {auth.HEADER} header.",
        doc="/api/docs", default_swagger_filename="api/swagger.json",
        authorizations=auth.AUTHORIZATIONS, security=auth.SCHEME,
    )
    for namespace in (messages.ns, media.ns, batches.ns, health.ns, archive.ns, sessions.ns, inbound.ns,
                      suppressions.ns, health.ops):
        api.add_namespace(namespace)
    # The hot path: enqueue without RESTX's per-request layers (the resource stays for the OpenAPI document).
    app.view_functions[messages.Messages.endpoint] = messages.enqueue_view
    auth.protect_docs(app)
    dashboard.register(app)
    metrics.register(app, hub)
    return app
