"""Media files: a producer stores a file once (POST /api/whatsapp/media) and names it by id in any number of messages;
an admin reads a message's file back (the dashboard's link). The rules are wa_queue/media/rules.py's, the same for
a file given by URL or through the Python API and the CLI."""

from __future__ import annotations

from typing import Any

from flask import Response, g, request
from flask_restx import Namespace, Resource, fields
from werkzeug.datastructures import FileStorage

from api import auth
from api.context import current_hub
from api.errors import ApiError, bad_request, error_model, responses
from api.messages import load
from api.openapi import MESSAGE_ID_PATTERN
from wa_queue import operations
from wa_queue.media.rules import KINDS, MAX_FILENAME_CHARS, max_bytes
from wa_queue.models import MediaKind

ns = Namespace("media", path="/api/whatsapp", description="Store files for media messages")
ns.add_model(error_model.name, error_model)
FORM_OVERHEAD = 64 * 1024  # a multipart body's boundaries and headers, beyond the file itself

upload_out = ns.model("MediaUpload", {
    "id": fields.String(required=True, description="Name it in a message: {\"media\": {\"id\": ...}}"),
    "sha256": fields.String(required=True, description="SHA-256 of the bytes stored"),
    "size": fields.Integer(required=True, description="Bytes"),
    "mimetype": fields.String(required=True, description="The type sniffed from the bytes"),
    "filename": fields.String(required=True, description="The name the recipient sees"),
    "kind": fields.String(required=True, enum=list(KINDS), description="How it is sent"),
    "created_at": fields.DateTime(required=True, description="Refused in messages after WAQ_MEDIA_UPLOAD_TTL_H"),
})

upload_parser = ns.parser()
upload_parser.add_argument("file", location="files", type=FileStorage, required=True,
                           help="The file. Its type is read from its bytes (PDF, Office, text, CSV, JPEG, PNG, MP4, "
                                "3GP, MP3, AAC, M4A, OGG, AMR, ...) and must suit its kind; an empty file, a type "
                                "its bytes do not have, or a name claiming another type: 400 naming media; over the "
                                "kind's cap (WAQ_MEDIA_MAX_*_MB): 413")
upload_parser.add_argument("kind", location="form", choices=list(KINDS), required=False,
                           help="image, document, audio or video; from the type when not given")
upload_parser.add_argument("as_document", location="form", choices=["true", "false"], required=False,
                           help="true: a photo or video sent as a file, uncompressed")
upload_parser.add_argument("filename", location="form", required=False,
                           help=f"The name the recipient sees (at most {MAX_FILENAME_CHARS} characters, no folders); "
                                "default: the uploaded file's name")


@ns.route("/media")
class Media(Resource):
    @ns.doc(security=auth.SCHEME, consumes=["multipart/form-data"])
    @ns.expect(upload_parser, validate=False)
    @ns.response(201, "Stored (durably); name it by id in messages", upload_out)
    @responses(ns, (400, "Not a file that can be sent (details.field: media)"), 401, 403,
               (413, "Over the kind's size cap (details.limit_bytes)"), 415, 429,
               (503, "The store is unavailable; nothing was stored"))
    @auth.requires(auth.PRODUCER)
    def post(self) -> tuple[dict[str, Any], int]:
        """Store a file for media messages."""
        hub = current_hub()
        request.max_content_length = max(max_bytes(k, hub.settings) for k in MediaKind) + FORM_OVERHEAD
        if request.mimetype != "multipart/form-data":
            raise ApiError(415, "Send the file as multipart/form-data, in a part named file.",
                           {"content_type": request.content_type or ""})
        # A part whose name cannot be parsed comes with None for its name: named so, not compared with the others.
        names = [*(set(request.form) - {"kind", "as_document", "filename"}), *(set(request.files) - {"file"})]
        unknown = sorted("(a part without a readable name)" if name is None else name for name in names)
        if unknown:
            raise bad_request(f"Unknown field(s): {', '.join(unknown)}.", field=unknown[0], unknown=unknown)
        part = request.files.get("file")
        if part is None:
            raise bad_request("file is required: the file, as a multipart part named file.", field="file")
        as_document = request.form.get("as_document", "false")
        if as_document not in ("true", "false"):
            raise bad_request("as_document must be true or false.", field="as_document")
        hub.rate_limiter.admit(g.api_key.name, 1, hub.settings.rate_for(g.api_key.name))
        upload = operations.store_upload(hub, part.read(), filename=request.form.get("filename") or part.filename,
                                         kind=request.form.get("kind"), as_document=as_document == "true",
                                         owner=g.api_key.name)
        return upload.to_dict(), 201


@ns.route("/messages/<message_id:message_id>/media")
@ns.param("message_id", "A media message's id", pattern=MESSAGE_ID_PATTERN)
class MessageMedia(Resource):
    @ns.doc(security=auth.SCHEME)
    @ns.produces(["application/octet-stream", "application/json"])
    @ns.response(200, "The file's bytes, as an attachment", schema={"type": "file"})
    @responses(ns, 401, 403, (404, "No such message, or its file is gone from the media store"),
               (409, "The message is a text message: it has no file"), (503, "The store is unavailable"))
    @auth.requires(auth.ADMIN)
    def get(self, message_id: str) -> Response:
        """The file a media message sends (admin)."""
        message = load(message_id)
        if message.media is None:
            raise ApiError(409, f"Message {message.id} is a text message: it has no file.", {"id": message.id})
        data = operations.media_bytes(current_hub(), message)
        # Always an attachment, never shown inline: a file is a producer's bytes, not this site's content.
        name = message.media.filename.replace('"', "")
        return Response(data, 200, mimetype="application/octet-stream", headers={
            "Content-Disposition": f'attachment; filename="{name.encode("ascii", "replace").decode()}"',
            "X-Content-Type-Options": "nosniff", "X-Media-Type": message.media.mimetype})

