"""`make run` / `make demo`: the whole system on one machine, through a Procfile run by honcho.

Starts a local redis-server when nothing answers at WAQ_BROKER_URL, generates an admin API key and Flower
credentials on the first run (kept under the data folder, never in the repo), writes the Procfile for the configured
sessions, runs it with honcho, and on Ctrl-C stops everything it started. `--demo` adds the WhatsApp Web simulator
(every browser logged in by itself), short pacing, and a small producer that enqueues a handful of messages through
the REST API, one of them to an unregistered number."""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

from wa_queue.settings import Settings, reset_settings

DEMO_PHONES = ["+14155550101", "+14155550102", "+14155550103", "+447911123456", "+14155550104"]
DEMO_UNREGISTERED = "+14155550199"


def secret_file(path: Path, make: callable) -> str:  # type: ignore[valid-type]
    """Read a generated secret, creating it (mode 600) on the first run."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = make()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return value


def broker_answers(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except Exception:  # noqa: BLE001 - any failure means "start our own"
        return False


def start_local_redis(url: str, data_dir: Path) -> subprocess.Popen | None:
    parsed = urlparse(url)
    if parsed.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(f"nothing answers at WAQ_BROKER_URL={url} and it is not local: start that Redis first")
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is missing: `make run` installs it (apt-get install redis-server)")
    (data_dir / "redis").mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [binary, "--port", str(parsed.port or 6379), "--bind", "127.0.0.1", "--dir", str(data_dir / "redis"),
         "--appendonly", "yes", "--save", ""],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    for _ in range(50):
        if broker_answers(url):
            return proc
        time.sleep(0.1)
    raise SystemExit(f"the local redis-server did not answer at {url}")


def procfile(settings: Settings, api_port: int, flower_port: int, sim_port: int | None) -> str:
    lines = [f"api: {sys.executable} -m gunicorn --workers 2 --threads 4 --bind 127.0.0.1:{api_port} "
             "'api.app:create_app()'"]
    lines += [f"worker_{name}: {sys.executable} -m wa_queue.cli worker --session {name}" for name in settings.sessions]
    lines.append(f"beat: {sys.executable} -m wa_queue.cli beat")
    lines.append(f"flower: {sys.executable} -m wa_queue.cli flower --port {flower_port}")
    if sim_port is not None:
        lines.append(f"simulator: {sys.executable} -m wa_queue.cli simulator --port {sim_port} --auto-scan")
    return "\n".join(lines) + "\n"


def demo_env(sim_port: int) -> dict[str, str]:
    return {
        "WAQ_WHATSAPP_URL": f"http://127.0.0.1:{sim_port}",
        "WAQ_TRANSPORT": "selenium",
        "WAQ_MIN_DELAY_S": os.environ.get("WAQ_MIN_DELAY_S", "2"),
        "WAQ_MAX_DELAY_S": os.environ.get("WAQ_MAX_DELAY_S", "4"),
        "WAQ_HEALTH_INTERVAL_S": os.environ.get("WAQ_HEALTH_INTERVAL_S", "5"),
        "WAQ_DISPATCH_INTERVAL_S": os.environ.get("WAQ_DISPATCH_INTERVAL_S", "5"),
    }


def demo_producer(api_url: str, sim_url: str, admin_key: str, timeout: float = 120.0) -> None:
    """Enqueue a handful of messages through the REST API once it answers; one goes to an unregistered number."""
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{api_url}/healthz", timeout=2).ok and requests.get(sim_url + "/__sim__/healthz",
                                                                                   timeout=2).ok:
                break
        except requests.RequestException:
            pass
        time.sleep(1)
    requests.post(f"{sim_url}/__sim__/faults", json={"number": DEMO_UNREGISTERED.lstrip("+"),
                                                      "fault": "unregistered"}, timeout=5)
    headers = {"X-API-Key": admin_key}
    for i, phone in enumerate([*DEMO_PHONES, DEMO_UNREGISTERED]):
        response = requests.post(f"{api_url}/api/whatsapp/messages", headers=headers, timeout=10,
                                 json={"phone": phone, "text": f"Hello from the wa-queue demo ({i + 1})"})
        print(f"demo producer: {phone} -> {response.status_code} {response.json()}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--demo", action="store_true")
    parser.add_argument("--api-port", type=int, default=int(os.environ.get("WAQ_API_PORT", "8000")))
    parser.add_argument("--flower-port", type=int, default=int(os.environ.get("WAQ_FLOWER_PORT", "5555")))
    parser.add_argument("--sim-port", type=int, default=int(os.environ.get("WAQ_SIM_PORT", "8090")))
    args = parser.parse_args(argv)

    env: dict[str, str] = dict(os.environ)
    if args.demo:
        env.update(demo_env(args.sim_port))
    os.environ.update(env)
    reset_settings()
    settings = Settings.from_env(env)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    admin_key = secret_file(settings.data_dir / "admin.key", lambda: secrets.token_urlsafe(32))
    flower_auth = secret_file(settings.data_dir / "flower.auth", lambda: "admin:" + secrets.token_urlsafe(18))
    env.setdefault("WAQ_API_KEYS", f"admin:admin:{admin_key}")
    env.setdefault("WAQ_FLOWER_AUTH", flower_auth)
    env["WAQ_DATA_DIR"] = str(settings.data_dir)

    redis_proc = None if broker_answers(settings.broker_url) else start_local_redis(settings.broker_url,
                                                                                     settings.data_dir)
    run_file = settings.data_dir / "Procfile.run"
    run_file.write_text(procfile(settings, args.api_port, args.flower_port, args.sim_port if args.demo else None))
    api_url = f"http://127.0.0.1:{args.api_port}"
    print(f"""
wa-queue is starting ({'demo, WhatsApp Web simulator' if args.demo else 'WhatsApp Web'}; Ctrl-C stops everything)
  dashboard  {api_url}/admin/settings/whatsapp-monitoring
  swagger    {api_url}/api/docs
  flower     http://127.0.0.1:{args.flower_port}   (user:password in {settings.data_dir / 'flower.auth'})
  admin key  {admin_key}   (kept in {settings.data_dir / 'admin.key'})
  broker     {settings.broker_url}{' (started here)' if redis_proc else ''}
  store      {settings.store_url}
""", flush=True)
    honcho = subprocess.Popen([sys.executable, "-m", "honcho", "-f", str(run_file), "-d", os.getcwd(), "start"],
                              env=env, start_new_session=True)
    producer = None
    if args.demo:
        import threading

        producer = threading.Thread(target=demo_producer, args=(api_url, f"http://127.0.0.1:{args.sim_port}",
                                                                admin_key), daemon=True)
        producer.start()
    return _supervise(honcho, redis_proc)


def _supervise(honcho: subprocess.Popen, redis_proc: subprocess.Popen | None) -> int:
    def forward(signum: int, _frame: object) -> None:
        if honcho.poll() is None:
            os.killpg(honcho.pid, signal.SIGTERM)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    try:
        code = honcho.wait()
    finally:
        # honcho stops its processes; anything that ignored it (a stuck Chrome) goes with the group.
        _kill_group(honcho.pid)
        if redis_proc is not None and redis_proc.poll() is None:
            redis_proc.terminate()
            redis_proc.wait(10)
    return code


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


if __name__ == "__main__":
    sys.exit(main())
