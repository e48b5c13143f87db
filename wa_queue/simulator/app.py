"""A local stand-in for WhatsApp Web: a real browser page whose DOM follows the real 2026 page (see README.md).

Pages: `/` (QR login page or the main app) and `/send?phone=&text=` (opens a chat with the text pre-filled).
Internal endpoints the page calls live under `/__sim__/api/`; the JSON control API for tests and demos lives under
`/__sim__/` (scan, faults, sent, incoming, reset, devices, config, healthz). `markup` picks the form of the message
rows (profiles.py) and `strict` the real page's habits (async editor, delays, overlays); see README.md.
"""

from __future__ import annotations

import functools
import io
import re
import secrets
import threading
import time
from pathlib import Path

from flask import Flask, Response, abort, jsonify, render_template, request, send_from_directory
from werkzeug.serving import WSGIRequestHandler, make_server

from wa_queue.simulator.listen import check_listen_host
from wa_queue.simulator.profiles import DEFAULT_MARKUP
from wa_queue.simulator.state import (
    MAX_UPLOAD_BYTES,
    ConfigValue,
    SimError,
    SimState,
    device_number,
    lid_peer,
    valid_number,
)

HERE = Path(__file__).resolve().parent
COOKIE = "wa_sim_device"
COOKIE_MAX_AGE = 10 * 365 * 24 * 3600  # long-lived: a restarted Chrome on the same profile is the same device
_DEVICE_ID = re.compile(r"^[0-9a-f]{32}$")
# Packed (true_<to>@c.us_<hex>) from packed profiles, bare (<hex>) from the others; both name the same message.
_MSG_ID = re.compile(r"^(?:true_(\d+)@c\.us_)?([0-9A-Fa-f]{8,64})$")
STATIC_FILES = {"sim.js", "sim-render.js", "sim-editor.js", "sim.css"}


def create_app(auto_scan: bool = False, state_file: str | None = None,
               config: dict[str, ConfigValue] | None = None, markup: str = DEFAULT_MARKUP,
               strict: bool = True, clock_skew_s: float | None = None) -> Flask:
    """The simulator app; its state is `app.extensions["wa_sim"]` (a SimState).

    `markup` is one of profiles.MARKUPS (ValueError otherwise); `strict=False` gives an immediate page
    (state.LENIENT_CONFIG); `clock_skew_s` (the config key of that name) shifts every time the page shows.
    """
    app = Flask(__name__, template_folder=str(HERE), static_folder=None)
    if clock_skew_s is not None:
        config = {**(config or {}), "clock_skew_s": clock_skew_s}
    state = SimState(auto_scan=auto_scan, state_file=state_file, config=config, markup=markup, strict=strict)
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


def _boot(state: SimState, device_id: str, chat: str | None, text: str | None) -> dict[str, object]:
    """What the page script starts from (window.SIM); config changes reach pages at their next load."""
    dev = state.device(device_id)
    cfg = state.config
    boot: dict[str, object] = {
        "device": device_id, "linked": dev.account is not None, "account": dev.account, "chat": chat, "text": text,
        "markup": state.markup, "strict": state.strict, "device_no": device_number(device_id), "screen": "qr",
        **{k: cfg[k] for k in ("poll_ms", "starting_chat_s", "boot_delay_s", "history_delay_ms", "input_delay_ms",
                               "clock_skew_s", "send_control", "row_ids", "ticks", "enter_sends", "max_media_mb",
                               "max_document_mb")},
    }
    if dev.account is None:
        boot["ref"] = state.current_ref(device_id)
    else:
        fault = state.session_fault(dev.account)
        boot["screen"] = fault if fault in ("conflict", "banned") else "app"
        boot["notice"] = state.notice(dev.account)
        boot["whats_new"] = state.strict and state.whats_new_due(dev)
    return boot


def _register_pages(app: Flask, state: SimState) -> None:
    def page(chat: str | None, text: str | None) -> Response:
        if state.strict and "HeadlessChrome" in request.headers.get("User-Agent", ""):
            # The real page turns away user agents it does not accept; a headless Chromium's default is one.
            html = render_template("page.html", boot={"screen": "update"}, screen="update")
            return Response(html, mimetype="text/html", headers={"Cache-Control": "no-store"})
        device_id = _device_id() or secrets.token_hex(16)
        with state.lock:
            boot = _boot(state, device_id, chat, text)
        html = render_template("page.html", boot=boot, screen=boot["screen"], account=boot["account"],
                               ref=boot.get("ref"))
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

    # Pictures the real page shows and the sender never reads: profile pictures (an <img> in the chat list and the
    # chat's header, from pps.whatsapp.net) and link-preview thumbnails, so that blocking them can be measured.
    @app.get("/__sim__/pp/<int:phone>.jpg")
    def avatar(phone: int) -> Response:
        return Response(_picture(phone, 640, 640), mimetype="image/jpeg", headers={"Cache-Control": "max-age=86400"})

    @app.get("/__sim__/preview/<int:seed>.jpg")
    def preview(seed: int) -> Response:
        return Response(_picture(seed, 600, 314), mimetype="image/jpeg", headers={"Cache-Control": "max-age=86400"})

    @app.get("/__sim__/qr/<path:ref>.png")
    def qr_png(ref: str) -> Response:
        import qrcode

        buf = io.BytesIO()
        qrcode.make(ref, border=2).save(buf, format="PNG")
        return Response(buf.getvalue(), mimetype="image/png", headers={"Cache-Control": "no-store"})


@functools.lru_cache(maxsize=256)
def _picture(seed: int, width: int, height: int) -> bytes:
    """A JPEG photo-like enough (noise over a gradient) to weigh what a real one does once decoded."""
    import random

    from PIL import Image

    rng = random.Random(seed)
    img = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    tint = Image.new("RGB", (width, height), tuple(rng.randrange(256) for _ in range(3)))
    noise = Image.effect_noise((width, height), 40).convert("RGB")
    buf = io.BytesIO()
    Image.blend(Image.blend(img, tint, 0.5), noise, 0.25).save(buf, format="JPEG", quality=80)
    return buf.getvalue()


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
                out["notice"] = state.notice(dev.account)
                chat = request.args.get("chat")  # the chat open in the page: its incoming messages are read at once
                if chat:
                    state.mark_read(dev.account, chat)
                out["chats"] = state.chats(dev.account)
                if chat:
                    out["messages"] = state.chat(dev.account, chat)
        return jsonify(out)

    @app.post("/__sim__/api/qr/reload")
    def api_qr_reload() -> Response:
        device_id = _device_id()
        if device_id is None:
            raise SimError("no device cookie", 401)
        return jsonify({"ref": state.new_ref(device_id)})

    @app.post("/__sim__/api/use_here")
    def api_use_here() -> Response:
        state.use_here(_linked_account(state))
        return jsonify({"ok": True})

    @app.post("/__sim__/api/whats_new")
    def api_whats_new() -> Response:
        _linked_account(state)
        state.close_whats_new(_device_id() or "")
        return jsonify({"ok": True})

    @app.get("/__sim__/api/open")
    def api_open() -> Response:
        # ?phone=<digits> (a /send load, a click in the chat list) or ?lid=<lid> (a contact who hides the number:
        # only from the chat list). Opening a chat reads it.
        account = _linked_account(state)
        lid = request.args.get("lid")
        if lid is not None:
            name = state.lid_name(account, lid)
            if name is None:
                return jsonify({"valid": False})
            peer = lid_peer(lid)
            state.mark_read(account, peer)
            return jsonify({"valid": True, "chat": peer, "title": name, "messages": state.chat(account, peer)})
        phone = request.args.get("phone", "")
        if not state.is_registered(phone):
            return jsonify({"valid": False})
        state.mark_read(account, phone)
        return jsonify({"valid": True, "chat": phone, "title": f"+{phone}", "messages": state.chat(account, phone)})

    @app.post("/__sim__/api/click")
    def api_click() -> Response:
        # Asked synchronously by the send button, so a dropped click changes nothing on the page.
        _linked_account(state)
        to = str(_body().get("to", ""))
        return jsonify({"dropped": state.take_fault(to, ("drop_before_click",)) is not None})

    @app.post("/__sim__/api/send")
    def api_send() -> tuple[Response, int]:
        return _send(state)

    @app.post("/__sim__/api/upload")
    def api_upload() -> Response:
        # The page's upload of a chosen file: its bytes, read and hashed here, the proof of what arrived. It takes
        # size / upload_kbps, as a real upload does: the row stays Pending meanwhile.
        _linked_account(state)
        data = request.get_data(cache=False)
        if len(data) > MAX_UPLOAD_BYTES:
            raise SimError("upload too large", 413)
        rate = float(state.config["upload_kbps"] or 0.0)
        if rate > 0:
            time.sleep(len(data) / (rate * 1000))
        token = state.upload(data, request.args.get("name", ""), request.args.get("type", ""))
        return jsonify({"token": token, "size": len(data)})


def _send(state: SimState) -> tuple[Response, int]:
    body = _body()
    msg_id, to, text = str(body.get("id", "")), str(body.get("to", "")), body.get("text")
    media = state.media_of(body.get("media"))
    match = _MSG_ID.match(msg_id)
    if not match or match.group(1) not in (None, to) or not isinstance(text, str) or not valid_number(to):
        raise SimError("expected {id: true_<to>@c.us_<hex> or <hex>, to, text}")
    msg_id = f"true_{to}@c.us_{match.group(2)}"  # one message whichever form the page sent, so a retry dedupes
    device_id = _device_id() or ""
    account = _linked_account(state)
    offline = state.session_fault(account)
    if offline in ("phone_disconnected", "computer_disconnected"):
        # Nothing reaches the servers; the page keeps the clock (no error mark) and nothing is recorded.
        return jsonify({"ack": False, "offline": offline}), 503
    if offline == "conflict":  # another window holds the session: this one is not heard
        return jsonify({"ack": False, "conflict": True}), 409
    if offline in ("banned", "restricted"):  # the servers refuse the account: nothing is recorded
        return jsonify({"ack": False, offline: True}), 403
    fault = state.take_fault(to, ("slow", "fail_send", "drop_after_click"))
    if fault is not None and fault.fault == "fail_send":
        return jsonify({"ack": False, "error": "fail_send"}), 503
    # Recorded as soon as the click reaches the servers, so a chat read after a browser crash shows it even while
    # a `slow` ack is still outstanding (the real page keeps outgoing messages in local storage the same way).
    delay = float(state.config["ack_delay_s"] or 0.0) + (fault.delay_s if fault is not None and fault.fault == "slow"
                                                       else 0.0)
    msg = state.accept(device_id, msg_id, to, text, ack_delay_s=delay, media=media)
    if fault is not None and fault.fault == "drop_after_click":
        return jsonify({"ack": False, "dropped": True}), 200  # recorded, but the page never learns it
    wait_s = msg.acked_at - state.clock()
    if wait_s > 0:
        time.sleep(wait_s)
    return jsonify({"ack": True, "status": state.status(msg), "time": msg.time}), 200


def _register_control(app: Flask, state: SimState) -> None:
    @app.get("/__sim__/healthz")
    def healthz() -> Response:
        return jsonify({"ok": True, "auto_scan": state.auto_scan, "markup": state.markup, "strict": state.strict})

    @app.route("/__sim__/incoming", methods=["GET", "POST"])
    def incoming() -> Response:
        if request.method == "GET":
            return jsonify(state.received(request.args.get("account")))
        body = _body()
        msg = state.receive(str(body.get("account", "")), body.get("from"), body.get("text"),  # type: ignore[arg-type]
                            lid=body.get("lid"), name=body.get("name"))
        return jsonify({"ok": True, "message": msg.public()})

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

    @app.get("/__sim__/media")
    def media() -> Response:
        return jsonify(state.media_messages())

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
        return jsonify(state.public_config())


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
    """The simulator on a background thread (threaded werkzeug server); for tests and embedding. A host that is not
    loopback needs `unsafe_listen=True` (listen.py)."""

    def __init__(self, port: int = 0, host: str = "127.0.0.1", *, unsafe_listen: bool = False,
                 **app_kwargs: object) -> None:
        check_listen_host(host, unsafe_listen)
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


def serve(port: int, host: str = "127.0.0.1", auto_scan: bool = False, state_file: str | None = None,
          markup: str = DEFAULT_MARKUP, strict: bool = True, config: dict[str, ConfigValue] | None = None,
          clock_skew_s: float | None = None, unsafe_listen: bool = False) -> None:
    """Run the simulator in the foreground until interrupted (a non-loopback host only with `unsafe_listen`)."""
    check_listen_host(host, unsafe_listen)
    app = create_app(auto_scan=auto_scan, state_file=state_file, markup=markup, strict=strict, config=config,
                     clock_skew_s=clock_skew_s)
    server = make_server(host, port, app, threaded=True, request_handler=_QuietHandler)
    mode = "strict" if strict else "lenient"
    skew = app.extensions["wa_sim"].config["clock_skew_s"]
    print(f"WhatsApp Web simulator on http://{host}:{server.server_port} (markup {markup}, {mode}, "
          f"auto-scan: {auto_scan}" + (f", page clock {skew:+g} s" if skew else "") + ")", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
