"""The outbound rule (wa_queue/outbound.py) against real listeners on loopback: every SSRF form of issue 24 is
refused, and the listener it would reach sees no connection; the same receiver is reached once WAQ_OUTBOUND_ALLOW
names it; a redirect to loopback is refused; a name that resolves inward is refused; at enqueue, IPv4 in any form
but dotted quads, unencodable hosts and internal IP literals (unless WAQ_OUTBOUND_ALLOW names them) are refused with a
JSON error naming callback_url, through every door."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from api.app import create_app
from tests.helpers.constants import ADMIN_KEY
from wa_queue import names, operations, outbound
from wa_queue.callbacks import deliver_callback
from wa_queue.errors import OutboundRefused, ValidationError
from wa_queue.hub import close_default_hub, default_hub
from wa_queue.models import HistoryEvent, NewMessage, utcnow
from wa_queue.outbound import NOTHING_ALLOWED, parse_allow

PAYLOAD = {"id": "m1", "event": "sent", "status": "sent"}
# Each reaches 127.0.0.1 through inet_aton or the resolver; {port} is the listener's.
SSRF_FORMS = ["http://2130706433:{port}/cb", "http://0x7f000001:{port}/", "http://127.1:{port}/", "http://0:{port}/",
              "http://0177.0.0.1:{port}/", "http://127.0.0.1:{port}/", "http://localhost:{port}/",
              "http://[::ffff:127.0.0.1]:{port}/", "http://[::1]:{port}/", "http://127.0.0.1.:{port}/"]
NON_DOTTED = ["http://2130706433:8080/cb", "http://0x7f000001/", "http://127.1/", "http://0/", "http://0177.0.0.1/",
              "http://127.0.0.01/", "http://0x7f.0.0.1/", "http://1.2.3.4.5/", "http://example.123/",
              "http://" + "a" * 64 + ".example/"]
# Dotted quads (and an IPv6 literal) the rule refuses: refused at enqueue too, before anything is stored.
INTERNAL_LITERALS = ["http://127.0.0.1/cb", "http://10.0.0.1/", "http://169.254.169.254/latest/meta-data",
                     "http://192.168.1.1:8080/", "http://100.64.0.1/", "http://0.0.0.0/", "http://192.0.2.10/",
                     "http://[::1]/", "http://[::ffff:127.0.0.1]/"]


class Listener:
    """A plain HTTP server on 127.0.0.1 (and ::1 where it can) that counts every connection made to it."""

    def __init__(self, host: str = "127.0.0.1", status: int = 204, headers: dict[str, str] | None = None) -> None:
        self.connections = 0
        self.requests: list[dict[str, str]] = []
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def setup(self) -> None:
                listener.connections += 1
                super().setup()

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                listener.requests.append(dict(self.headers))
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.port = self.server.server_address[1]
        self.v6 = _v6_server(self.port, Handler)
        for server in (self.server, self.v6):
            if server is not None:
                # A short poll: shutdown() waits for the loop's next poll, at teardown of every test.
                threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        for server in (self.server, self.v6):
            if server is not None:
                server.shutdown()
                server.server_close()


def _v6_server(port: int, handler: type) -> ThreadingHTTPServer | None:
    class V6(ThreadingHTTPServer):
        address_family = socket.AF_INET6

    try:
        return V6(("::1", port), handler)
    except OSError:
        return None  # no IPv6 loopback here: the ::1 form is still refused before any connection


@pytest.fixture
def listener() -> Iterator[Listener]:
    found = Listener()
    yield found
    found.close()


# ---- at delivery ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("form", SSRF_FORMS)
def test_every_ssrf_form_is_refused_and_the_listener_sees_nothing(listener: Listener, form: str) -> None:
    url = form.format(port=listener.port)
    with pytest.raises(OutboundRefused):
        deliver_callback(url, PAYLOAD, "", allow=NOTHING_ALLOWED)
    assert listener.connections == 0


def test_the_same_listener_is_reached_once_the_allow_list_names_it(listener: Listener) -> None:
    """What makes the test above matter: with the rule opened, the same URLs reach the listener."""
    allow = parse_allow(["127.0.0.1", "localhost", "::1"])
    assert deliver_callback(f"http://127.0.0.1:{listener.port}/cb", PAYLOAD, "", allow=allow) == 204
    assert deliver_callback(f"http://localhost:{listener.port}/cb", PAYLOAD, "", allow=allow) == 204
    assert listener.connections == 2
    networks = parse_allow(["127.0.0.0/8"])
    assert deliver_callback(f"http://127.0.0.1:{listener.port}/cb", PAYLOAD, "", allow=networks) == 204
    assert listener.connections == 3


@pytest.mark.parametrize("url", ["http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/", "http://192.168.1.1/",
                                 "http://172.16.0.1/", "http://100.64.0.1/", "http://224.0.0.1/", "http://0.0.0.0/",
                                 "http://240.0.0.1/", "http://[fe80::1]/", "http://[fc00::1]/", "http://[::]/",
                                 "http://[64:ff9b::7f00:1]/", "http://[2002:7f00:1::]/"])
def test_internal_literals_are_refused_without_a_connection(url: str) -> None:
    with pytest.raises(OutboundRefused, match="WAQ_OUTBOUND_ALLOW"):
        outbound.check_url(url, NOTHING_ALLOWED, resolve=_no_resolver)


def test_a_name_resolving_to_a_private_address_is_refused(listener: Listener) -> None:
    def resolver(host: str, port: int, **_: Any) -> list[Any]:
        assert host == "receiver.example"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]  # one inward answer is enough

    with pytest.raises(OutboundRefused, match="resolves to 127.0.0.1, which is loopback"):
        deliver_callback(f"http://receiver.example:{listener.port}/cb", PAYLOAD, "", resolve=resolver)
    assert listener.connections == 0


def test_the_connection_goes_to_the_checked_address_with_the_original_host_header(listener: Listener) -> None:
    """Resolved once: the request reaches the address the rule checked, carrying the URL's name as Host."""
    calls = []

    def resolver(host: str, port: int, **_: Any) -> list[Any]:
        calls.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    allow = parse_allow(["127.0.0.1/32"])
    url = f"http://receiver.example:{listener.port}/cb?token=x"
    assert deliver_callback(url, PAYLOAD, "", allow=allow, resolve=resolver) == 204
    assert calls == ["receiver.example"]
    assert listener.requests[0]["Host"] == f"receiver.example:{listener.port}"


def test_a_redirect_to_loopback_is_refused_and_not_followed(listener: Listener) -> None:
    """The receiver (allowed, on 127.0.0.2) answers 307 towards the listener on 127.0.0.1, which is not allowed."""
    redirector = Listener("127.0.0.2", 307, {"Location": f"http://127.0.0.1:{listener.port}/admin"})
    try:
        with pytest.raises(OutboundRefused, match="redirects are not followed"):
            deliver_callback(f"http://127.0.0.2:{redirector.port}/cb", PAYLOAD, "", allow=parse_allow(["127.0.0.2"]))
        assert redirector.connections == 1
    finally:
        redirector.close()
    assert listener.connections == 0


def _no_resolver(*_: Any, **__: Any) -> list[Any]:
    raise AssertionError("an address literal is never resolved")


# ---- the task: final, recorded, counted --------------------------------------------------------------------------
def test_a_refused_callback_is_final_recorded_on_the_message_and_counted(waq_env: dict[str, str], redis_server,  # noqa: ANN001
                                                                         listener: Listener) -> None:
    from workers.callback_tasks import status_callback

    url = f"http://2130706433:{listener.port}/cb"  # stored before this rule, or through an old door
    message, _ = default_hub().store.insert(NewMessage(phone="+14155550123", text="hi", callback_url=url), utcnow())
    assert status_callback.apply(args=[url, {**PAYLOAD, "id": message.id}]).get() == "outbound refused"
    assert listener.connections == 0
    client = redis_server.client()
    assert client.llen(names.CALLBACK_QUEUE) == 0  # no retry
    assert client.hget(names.METRICS_CALLBACKS_KEY, "refused") == b"1"
    entry = default_hub().store.get(message.id).history[-1]
    assert entry.event is HistoryEvent.CALLBACK_REFUSED and entry.error_class == "OutboundRefused"
    assert "2130706433" in entry.error_text


# ---- at enqueue: every door --------------------------------------------------------------------------------------
@pytest.mark.parametrize("url", NON_DOTTED + INTERNAL_LITERALS)
def test_enqueue_refuses_non_dotted_ipv4_unencodable_hosts_and_internal_literals(url: str, waq_env: dict[str, str],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError) as caught:  # the Python API
        operations.build_message(default_hub(), phone="+14155550123", text="hi", callback_url=url)
    assert caught.value.field == "callback_url"
    monkeypatch.setenv("WAQ_API_KEYS", f"ops:admin:{ADMIN_KEY}")
    close_default_hub()
    client = create_app(default_hub()).test_client()  # the REST API
    response = client.post("/api/whatsapp/messages", data=json.dumps({"phone": "+14155550123", "text": "hi",
                                                                      "callback_url": url}),
                           headers={"X-API-Key": ADMIN_KEY, "Content-Type": "application/json"})
    assert response.status_code == 400, response.get_data(as_text=True)
    assert "callback_url" in json.dumps(response.get_json())
    from click.testing import CliRunner

    from wa_queue.cli.main import main as cli

    result = CliRunner().invoke(cli, ["enqueue", "+14155550123", "hi", "--callback-url", url])  # the CLI
    assert result.exit_code != 0 and "callback_url" in result.output, result.output


def test_public_quads_and_names_are_still_accepted_at_enqueue(waq_env: dict[str, str]) -> None:
    # localhost is a name: where it resolves is decided at delivery (test_every_ssrf_form_is_refused...).
    for url in ("http://93.184.215.14:8080/cb", "https://hooks.example.com/x?y=1", "http://localhost/cb"):
        assert operations.build_message(default_hub(), phone="+14155550123", text="hi", callback_url=url).callback_url


def test_an_internal_literal_the_allow_list_names_is_accepted_at_enqueue(waq_env: dict[str, str],
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAQ_OUTBOUND_ALLOW", "127.0.0.1,10.0.0.0/8")
    close_default_hub()
    for url in ("http://127.0.0.1:8080/cb", "http://10.1.2.3/hook"):
        assert operations.build_message(default_hub(), phone="+14155550123", text="hi", callback_url=url).callback_url
    with pytest.raises(ValidationError, match="169.254.169.254 is link-local"):
        operations.build_message(default_hub(), phone="+14155550123", text="hi", callback_url="http://169.254.169.254/")
