"""Access control: an `X-API-Key` header, keys and roles from settings (WAQ_API_KEYS=name:role:key,...).

Roles: `producer` enqueues and reads messages; `admin` may do everything. 401 when the key is missing or unknown,
403 when the key's role is not allowed. Every request compares its key with *all* configured keys using
hmac.compare_digest and no early exit, so timing says nothing about which key (or how much of one) matched.
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, g, request
from flask_restx import Namespace

from api.context import current_hub
from api.errors import ApiError, responses
from wa_queue.settings import ApiKey

HEADER = "X-API-Key"
PRODUCER = "producer"
ADMIN = "admin"
SCHEME = "apiKey"
AUTHORIZATIONS = {SCHEME: {"type": "apiKey", "in": "header", "name": HEADER,
                           "description": "A key from WAQ_API_KEYS; role producer or admin"}}
# Endpoints registered by Flask-RESTX itself (the spec and Swagger UI): only /healthz answers without a key.
DOC_ENDPOINTS = frozenset({"specs", "doc", "restx_doc.static"})

F = TypeVar("F", bound=Callable[..., Any])


def identify(presented: str | None) -> ApiKey | None:
    """The configured key equal to `presented`, compared in constant time against every key."""
    if not presented:
        return None
    given = presented.encode("utf-8", "surrogateescape")
    found: ApiKey | None = None
    for key in current_hub().settings.api_keys:
        if hmac.compare_digest(given, key.key.encode("utf-8")) and found is None:
            found = key
    return found


def authenticate(*roles: str) -> ApiKey:
    """The caller's key when its role is one of `roles` (admin is always allowed); ApiError 401/403 otherwise."""
    presented = request.headers.get(HEADER)
    key = identify(presented)
    if key is None:
        why = "is missing" if not presented else "is not a known key"
        raise ApiError(401, f"The {HEADER} header {why}.", {"header": HEADER})
    if key.role != ADMIN and key.role not in roles:
        raise ApiError(403, f"The key {key.name!r} has role {key.role!r}; this operation needs "
                            f"{' or '.join(sorted({*roles, ADMIN}))}.", {"role": key.role})
    g.api_key = key
    return key


def requires(*roles: str) -> Callable[[F], F]:
    """Decorate a resource method: only keys of these roles (and admin) may call it."""
    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            authenticate(*roles)
            return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def admin_only(namespace: Namespace) -> Callable[[F], F]:
    """Enforce the admin role and document it (security scheme, 401, 403)."""
    def decorate(func: F) -> F:
        func = responses(namespace, 403, 401)(requires(ADMIN)(func))  # 401 first in the document, as it always was
        return namespace.doc(security=SCHEME)(func)

    return decorate


DOCS_REALM = "wa-queue API docs"


def protect_docs(app: Flask) -> None:
    """The OpenAPI spec and Swagger UI need a key of any role, like every other route but /healthz.

    A browser cannot add an X-API-Key header to a page it opens, so here (and only here) the key may also come as
    the password of HTTP basic auth (any user name): the 401 asks the browser for it, which then sends it with the
    page, its scripts and the spec. Swagger UI's own calls still need the key in X-API-Key (its Authorize button);
    the API's other routes never read basic auth.
    """
    @app.before_request
    def _check_docs_key() -> None:
        if request.endpoint not in DOC_ENDPOINTS:
            return
        auth = request.authorization
        password = auth.password if auth is not None and auth.type == "basic" else None
        key = identify(request.headers.get(HEADER) or password)
        if key is None:
            raise ApiError(401, f"The API documentation needs a key: the {HEADER} header, or the key as the "
                                "password of HTTP basic auth.", {"header": HEADER},
                           {"WWW-Authenticate": f'Basic realm="{DOCS_REALM}", charset="UTF-8"'})
        g.api_key = key
