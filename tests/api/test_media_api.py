"""Media through the REST API: POST /api/whatsapp/media stores a file (its type read from its bytes) and answers its
id; messages name it by id, or by a URL fetched before the 202 (through the outbound rule), with a caption; every
refusal is JSON naming media, and nothing half-written stays; an admin reads a message's file back."""

from __future__ import annotations

import hashlib
import http.server
import io
import threading
from collections.abc import Iterator

import pytest

from tests.api.helpers import OTHER_PRODUCER_KEY, assert_error, post
from tests.helpers import media_samples as samples
from tests.helpers.constants import ADMIN, BASE, PHONE, PRODUCER
from wa_queue.hub import default_hub

OTHER = {"X-API-Key": OTHER_PRODUCER_KEY}


def upload(client, data: bytes, name: str = "invoice.pdf", headers=PRODUCER, **form: str):  # noqa: ANN001, ANN201
    return client.post(f"{BASE}/media", headers=headers, content_type="multipart/form-data",
                       data={"file": (io.BytesIO(data), name), **form})


def test_an_upload_is_stored_and_named_in_a_message(client) -> None:  # noqa: ANN001
    data = samples.pdf(5000)
    answer = upload(client, data)
    assert answer.status_code == 201, answer.get_json()
    body = answer.get_json()
    assert body["sha256"] == hashlib.sha256(data).hexdigest() and body["size"] == 5000
    assert (body["mimetype"], body["filename"], body["kind"]) == ("application/pdf", "invoice.pdf", "document")
    assert default_hub().media_files.get(body["sha256"]) == data  # the bytes are in the store before the answer
    sent = post(client, "/messages", {"phone": PHONE, "media": {"id": body["id"]}, "caption": "Your invoice"})
    assert sent.status_code == 202, sent.get_json()
    message = client.get(f"{BASE}/messages/{sent.get_json()['id']}", headers=PRODUCER).get_json()
    assert message["text"] == "Your invoice"
    assert message["media"] == {"kind": "document", "filename": "invoice.pdf", "size": 5000,
                                "mimetype": "application/pdf", "sha256": body["sha256"]}
    # The admin reads the file back, as an attachment; a producer may not.
    got = client.get(f"{BASE}/messages/{message['id']}/media", headers=ADMIN)
    assert got.status_code == 200 and got.data == data
    assert got.headers["Content-Disposition"].startswith("attachment;")
    assert_error(client.get(f"{BASE}/messages/{message['id']}/media", headers=PRODUCER), 403)


def test_the_caption_may_come_as_text_and_an_upload_may_be_sent_as_a_document(client) -> None:  # noqa: ANN001
    photo = upload(client, samples.jpeg(30_000), "photo.jpg").get_json()
    assert photo["kind"] == "image"
    sent = post(client, "/messages", {"phone": PHONE, "text": "A photo",
                                      "media": {"id": photo["id"], "as_document": True}})
    assert sent.status_code == 202, sent.get_json()
    message = default_hub().store.get(sent.get_json()["id"])
    assert message.text == "A photo" and message.media.kind == "document" and message.media.as_document


@pytest.mark.parametrize(("data", "name", "form", "status", "words"), [
    (b"", "empty.pdf", {}, 400, "empty file"),
    (samples.png(), "invoice.pdf", {}, 400, "the bytes are image/png"),
    (samples.pdf(), "a.pdf", {"kind": "image"}, 400, "cannot be sent as image"),
    (b"\x00\x01\x02\x03", "a.bin", {}, 400, "no type accepted"),
    (samples.jpeg(70_000), "big.jpg", {}, 413, "WAQ_MEDIA_MAX_IMAGE_MB"),
], ids=["empty", "png-named-pdf", "pdf-as-image", "no-type", "too-big"])  # the bytes are random: not in the ids
def test_files_that_cannot_be_sent_are_refused_naming_media(client, monkeypatch, data: bytes, name: str,  # noqa: ANN001
                                                            form: dict, status: int, words: str) -> None:
    from dataclasses import replace

    hub = default_hub()
    monkeypatch.setattr(hub, "settings", replace(hub.settings, media_max_image_mb=0.05))
    body = assert_error(upload(client, data, name, **form), status)
    assert body["details"]["field"] == "media" and words in body["error"]
    assert not list((hub.settings.data_dir / "media").glob("??/*"))  # nothing stored for a refused file


def test_an_upload_is_multipart_with_a_file(client) -> None:  # noqa: ANN001
    assert_error(post(client, "/media", {"file": "x"}), 415)
    missing = client.post(f"{BASE}/media", headers=PRODUCER, content_type="multipart/form-data",
                          data={"kind": "image"})
    assert assert_error(missing, 400)["details"]["field"] == "file"
    assert assert_error(upload(client, samples.pdf(), extra="1"), 400)["details"]["field"] == "extra"
    assert_error(upload(client, samples.pdf(), headers={}), 401)
    # A part with no name (werkzeug gives it None) is an unknown field too, not a 500.
    body = (b'--b1\r\nContent-Disposition: form-data\r\n\r\nx\r\n--b1\r\nContent-Disposition: form-data; '
            b'name="file"; filename="a.pdf"\r\n\r\n' + samples.pdf() + b"\r\n--b1--\r\n")
    nameless = client.post(f"{BASE}/media", headers=PRODUCER, content_type="multipart/form-data; boundary=b1",
                           data=body)
    assert assert_error(nameless, 400)["details"]["unknown"] == ["(a part without a readable name)"]


def test_an_upload_is_its_keys_own(client) -> None:  # noqa: ANN001
    mine = upload(client, samples.pdf()).get_json()
    answer = post(client, "/messages", {"phone": PHONE, "media": {"id": mine["id"]}}, headers=OTHER)
    assert assert_error(answer, 404)["details"]["field"] == "media"
    unknown = post(client, "/messages", {"phone": PHONE, "media": {"id": "f" * 32}})
    assert assert_error(unknown, 404)["details"]["field"] == "media"


@pytest.mark.parametrize(("body", "field"), [
    ({"phone": PHONE}, "text"),  # neither text nor media
    ({"phone": PHONE, "text": "hi", "caption": "a caption"}, "caption"),  # a caption without media
    ({"phone": PHONE, "media": {"id": "0" * 32, "url": "https://a.example/x.pdf"}}, "media"),
    ({"phone": PHONE, "media": {}}, "media"),
    ({"phone": PHONE, "media": "invoice.pdf"}, "media"),  # never a path on the server
    ({"phone": PHONE, "media": {"url": "ftp://a.example/x.pdf"}}, "media"),
    ({"phone": PHONE, "media": {"id": "0" * 32, "kind": "audio", "as_document": True}}, "media"),
])
def test_malformed_media_requests_are_400_naming_the_field(client, body: dict, field: str) -> None:  # noqa: ANN001
    assert assert_error(post(client, "/messages", body), 400)["details"]["field"] == field


def test_the_document_says_text_or_media(client) -> None:  # noqa: ANN001
    spec = client.get("/api/swagger.json", headers=ADMIN).get_json()
    new = spec["definitions"]["NewMessage"]
    assert "text" not in new.get("required", []) and len(new["anyOf"]) == 2
    assert {"id", "url", "filename", "kind", "as_document"} <= set(spec["definitions"]["MediaInput"]["properties"])
    assert "/api/whatsapp/media" in spec["paths"]


class _Files(http.server.BaseHTTPRequestHandler):
    served: dict[str, tuple[int, bytes]] = {}

    def do_GET(self) -> None:  # noqa: N802 - the handler's name
        status, data = self.served.get(self.path, (404, b"not here"))
        self.send_response(status)
        if status in (301, 302):
            self.send_header("Location", "/elsewhere.pdf")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def file_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://localhost:{server.server_port}"
    server.shutdown()


def allow_loopback(monkeypatch) -> None:  # noqa: ANN001
    from dataclasses import replace

    from wa_queue.outbound import parse_allow

    hub = default_hub()
    monkeypatch.setattr(hub, "settings", replace(hub.settings, outbound_allow=parse_allow(["localhost"])))


def test_a_url_is_fetched_before_the_answer(client, file_server: str, monkeypatch) -> None:  # noqa: ANN001
    data = samples.pdf(40_000)
    _Files.served = {"/docs/invoice%2042.pdf": (200, data), "/moved.pdf": (302, b""), "/bad.pdf": (200, samples.png())}
    # Loopback is refused unless an operator allows it (the outbound rule): 409, nothing fetched.
    refused = post(client, "/messages", {"phone": PHONE, "media": {"url": f"{file_server}/docs/invoice%2042.pdf"}})
    assert "WAQ_OUTBOUND_ALLOW" in assert_error(refused, 409)["error"]
    allow_loopback(monkeypatch)
    sent = post(client, "/messages", {"phone": PHONE, "media": {"url": f"{file_server}/docs/invoice%2042.pdf"},
                                      "caption": "Your invoice"})
    assert sent.status_code == 202, sent.get_json()
    message = default_hub().store.get(sent.get_json()["id"])
    assert message.media.filename == "invoice 42.pdf" and message.media.size == 40_000
    assert default_hub().media_files.get(message.media.sha256) == data
    for path, words in (("/moved.pdf", "redirect"), ("/missing.pdf", "answered 404"), ("/bad.pdf", "bytes are")):
        answer = post(client, "/messages", {"phone": PHONE, "media": {"url": f"{file_server}{path}",
                                                                     "filename": "x.pdf"}})
        body = assert_error(answer, 409)
        assert body["details"]["field"] == "media" and words in body["error"], body


def test_a_bulk_names_every_bad_media_item(client) -> None:  # noqa: ANN001
    good = upload(client, samples.pdf()).get_json()
    answer = post(client, "/messages/bulk", {"messages": [
        {"phone": PHONE, "media": {"id": good["id"]}},
        {"phone": PHONE, "media": {"id": "e" * 32}},
    ]})
    body = assert_error(answer, 404)
    assert [(i["index"], i["field"]) for i in body["details"]["items"]] == [(1, "media")]
    assert default_hub().store.count_by_status().get("pending", 0) == 0  # nothing stored
