"""A local stand-in for WhatsApp Web: a real browser page whose DOM mirrors shared/whatsapp-web-dom.md.

Pages: `/` (QR login page or the main app) and `/send?phone=&text=` (opens a chat with the text pre-filled).
Internal endpoints the page calls live under `/__sim__/api/`; the JSON control API for tests and demos lives under
`/__sim__/` (scan, faults, sent, reset, devices, config, healthz). See README.md next to this file.
"""

from __future__ import annotations

import io
import re
import secrets
import threading
import time
from pathlib import Path

from flask import Flask, Response, abort, jsonify, render_template, request, send_from_directory
from werkzeug.serving import WSGIRequestHandler, make_server

from wa_queue.simulator.state import SimError, SimState, valid_number

HERE = Path(__file__).resolve().parent
COOKIE = "wa_sim_device"
COOKIE_MAX_AGE = 10 * 365 * 24 * 3600  # long-lived: a restarted Chrome on the same profile is the same device
_DEVICE_ID = re.compile(r"^[0-9a-f]{32}$")
_MSG_ID = re.compile(r"^true_(\d+)@c\.us_[0-9A-Fa-f]{8,64}$")
STATIC_FILES = {"sim.js", "sim.css"}


def create_app(auto_scan: bool = False, state_file: str | None = None,
               config: dict[str, float | None] | None = None) -> Flask:
    """The simulator app; its state is `app.extensions["wa_sim"]` (a SimState)."""
    app = Flask(__name__, template_folder=str(HERE), static_folder=None)
    state = SimState(auto_scan=auto_scan, state_file=state_file, config=config)
    app.extensions["wa_sim"] = state

    @app.errorhandler(SimError)
    def _sim_error(exc: SimError) -> tuple[Response, int]:
        return jsonify({"ok": False, "error": str(exc)}), exc.status

    _register_pages(app, state)
    _register_page_api(app, state)
    _register_control(app, state)
    return app


def _device_id() -> str | None:
    value = request.cookies.get(COOKIE, "")
    return value if _DEVICE_ID.match(value) else None


def _with_cookie(resp: Response, device_id: str) -> Response:
    resp.set_cookie(COOKIE, device_id, max_age=COOKIE_MAX_AGE, path="/", samesite="Lax")
    return resp


def _body() -> dict[str, object]:
    data = request.get_json(silent=True)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SimError("expected a JSON object")
    return data


def _register_pages(app: Flask, state: SimState) -> None:
    def page(chat: str | None, text: str | None) -> Response:
        device_id = _device_id() or secrets.token_hex(16)
        dev = state.device(device_id)
        boot: dict[str, object] = {"device": device_id, "linked": dev.account is not None, "account": dev.account,
                                   "chat": chat, "text": text, "poll_ms": state.config["poll_ms"],
                                   "starting_chat_s": state.config["starting_chat_s"]}
        ref = None
        if dev.account is None:
            ref = boot["ref"] = state.current_ref(device_id)
        html = render_template("page.html", linked=dev.account is not None, account=dev.account, ref=ref, boot=boot)
        resp = Response(html, mimetype="text/html")
        resp.headers["Cache-Control"] = "no-store"
        return _with_cookie(resp, device_id)

    @app.get("/")
    def index() -> Response:
        return page(None, None)

    @app.get("/send")
    def send_page() -> Response:
        # The real page accepts "+", spaces and dashes in phone=; only digits reach the chat id.
        phone = re.sub(r"\D", "", request.args.get("phone", ""))
        return page(phone, request.args.get("text", ""))

    @app.get("/favicon.ico")
    def favicon() -> Response:
        return Response(status=204)

    @app.get("/__sim__/static/<name>")
    def static_file(name: str) -> Response:
        if name not in STATIC_FILES:
            abort(404)
        resp = send_from_directory(HERE, name, max_age=0)
        resp.headers["Cache-Control"] = "no-store"
        return resp

    @app.get("/__sim__/qr/<path:ref>.png")
    def qr_png(ref: str) -> Response:
        import qrcode

        buf = io.BytesIO()
        qrcode.make(ref, border=2).save(buf, format="PNG")
        return Response(buf.getvalue(), mimetype="image/png", headers={"Cache-Control": "no-store"})


def _linked_account(state: SimState) -> str:
    device_id = _device_id()
    dev = state.devices.get(device_id or "")
    if dev is None or dev.account is None:
        raise SimError("this device is not linked", 401)
    return dev.account


def _register_page_api(app: Flask, state: SimState) -> None:
    """What the page itself calls: the simulated WhatsApp servers."""

    @app.get("/__sim__/api/state")
    def api_state() -> Response:
        device_id = _device_id()
        if device_id is None:
            return jsonify({"linked": False, "ref": None, "expired": False})
        with state.lock:
            dev = state.device(device_id)
            out: dict[str, object] = {"linked": dev.account is not None, "account": dev.account, "ref": dev.ref,
                                      "expired": state.qr_expired(dev)}
            if dev.account is not None:
                out["fault"] = state.session_fault(dev.account)
                out["chats"] = state.chats(dev.account)
                chat = request.args.get("chat")
                if chat:
                    out["messages"] = state.chat(dev.account, chat)
        return jsonify(out)

    @app.post("/__sim__/api/qr/reload")
    def api_qr_reload() -> Response:
        device_id = _device_id()
        if device_id is None:
            raise SimError("no device cookie", 401)
        return jsonify({"ref": state.new_ref(device_id)})

    @app.get("/__sim__/api/open")
    def api_open() -> Response:
        account = _linked_account(state)
        phone = request.args.get("phone", "")
        if not state.is_registered(phone):
            return jsonify({"valid": False})
        return jsonify({"valid": True, "messages": state.chat(account, phone)})

    @app.post("/__sim__/api/click")
    def api_click() -> Response:
        # Asked synchronously by the send button, so a dropped click changes nothing on the page.
        _linked_account(state)
        to = str(_body().get("to", ""))
        return jsonify({"dropped": state.take_fault(to, ("drop_before_click",)) is not None})

    @app.post("/__sim__/api/send")
    def api_send() -> tuple[Response, int]:
        return _send(state)


def _send(state: SimState) -> tuple[Response, int]:
    body = _body()
    msg_id, to, text = str(body.get("id", "")), str(body.get("to", "")), body.get("text")
    match = _MSG_ID.match(msg_id)
    if not match or match.group(1) != to or not isinstance(text, str) or not valid_number(to):
        raise SimError("expected {id: true_<to>@c.us_<hex>, to, text}")
    device_id = _device_id() or ""
    account = _linked_account(state)
    offline = state.session_fault(account)
    if offline in ("phone_disconnected", "computer_disconnected"):
        # Nothing reaches the servers; the page keeps the clock (no error mark) and nothing is recorded.
        return jsonify({"ack": False, "offline": offline}), 503
    fault = state.take_fault(to, ("slow", "fail_send", "drop_after_click"))
    if fault is not None and fault.fault == "fail_send":
        return jsonify({"ack": False, "error": "fail_send"}), 503
    # Recorded as soon as the click reaches the servers, so a chat read after a browser crash shows it even while
    # a `slow` ack is still outstanding (the real page keeps outgoing messages in local storage the same way).
    delay = fault.delay_s if fault is not None and fault.fault == "slow" else 0.0
    msg = state.accept(device_id, msg_id, to, text, ack_delay_s=delay)
    if fault is not None and fault.fault == "drop_after_click":
        return jsonify({"ack": False, "dropped": True}), 200  # recorded, but the page never learns it
    wait_s = msg.acked_at - state.clock()
    if wait_s > 0:
        time.sleep(wait_s)
    return jsonify({"ack": True, "status": state.status(msg), "time": msg.time}), 200


def _register_control(app: Flask, state: SimState) -> None:
    @app.get("/__sim__/healthz")
    def healthz() -> Response:
        return jsonify({"ok": True, "auto_scan": state.auto_scan})

    @app.post("/__sim__/sessions/<phone>/scan")
    def scan(phone: str) -> Response:
        ref = _body().get("ref")
        dev = state.scan(phone, str(ref) if ref is not None else None)
        return jsonify({"ok": True, "device": dev.id, "account": dev.account})

    @app.post("/__sim__/faults")
    def set_faults() -> Response:
        data = request.get_json(silent=True)
        items = data if isinstance(data, list) else [data]
        if not all(isinstance(item, dict) for item in items):
            raise SimError("expected a JSON object (or a list of them)")
        results = [state.set_fault(item) for item in items]
        out = results[0] if len(results) == 1 else {"ok": True, "results": results}
        return jsonify({**out, "faults": state.faults_public()})

    @app.get("/__sim__/faults")
    def get_faults() -> Response:
        return jsonify(state.faults_public())

    @app.get("/__sim__/sent")
    def sent() -> Response:
        return jsonify(state.sent(to=request.args.get("to"), sender=request.args.get("from")))

    @app.post("/__sim__/reset")
    def reset() -> Response:
        state.reset(keep_links=bool(_body().get("keep_links", False)))
        return jsonify({"ok": True})

    @app.get("/__sim__/devices")
    def devices() -> Response:
        return jsonify(state.devices_public())

    @app.route("/__sim__/config", methods=["GET", "POST"])
    def config() -> Response:
        if request.method == "POST":
            return jsonify(state.set_config(_body()))
        return jsonify(dict(state.config))


class _QuietHandler(WSGIRequestHandler):
    """Logs what a person wants to see, not the page's twice-a-second polling and asset loads."""

    quiet = ("/__sim__/api/", "/__sim__/static/", "/__sim__/qr/", "/favicon.ico")

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if not self.path.startswith(self.quiet):
            super().log_request(code, size)


class _SilentHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class SimServer:
    """The simulator on a background thread (threaded werkzeug server); for tests and embedding."""

    def __init__(self, port: int = 0, host: str = "127.0.0.1", **app_kwargs: object) -> None:
        self.app = create_app(**app_kwargs)  # type: ignore[arg-type]
        self.server = make_server(host, port, self.app, threaded=True, request_handler=_SilentHandler)
        self.host, self.port = host, self.server.server_port
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def state(self) -> SimState:
        return self.app.extensions["wa_sim"]

    def start(self) -> SimServer:
        thread = threading.Thread(target=self.server.serve_forever, name="wa-sim", daemon=True)
        thread.start()
        self.thread = thread
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def serve(port: int, host: str = "127.0.0.1", auto_scan: bool = False, state_file: str | None = None) -> None:
    """Run the simulator in the foreground until interrupted."""
    app = create_app(auto_scan=auto_scan, state_file=state_file)
    server = make_server(host, port, app, threaded=True, request_handler=_QuietHandler)
    print(f"WhatsApp Web simulator on http://{host}:{server.server_port} (auto-scan: {auto_scan})", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
