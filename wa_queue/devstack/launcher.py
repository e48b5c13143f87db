"""`make run` / `make demo`: the whole system on one machine, started and stopped by a small supervisor.

Starts a local redis-server when nothing answers at WAQ_BROKER_URL, generates an admin API key and Flower
credentials on the first run (kept under the data folder, never in the repo), starts the API, one worker per session,
beat and Flower, and prints their output line by line with the process name in front. `--demo` adds the WhatsApp Web
simulator (every browser logged in by itself), short pacing, and a small producer that enqueues a handful of messages
through the REST API, one of them to an unregistered number.

A stop (Ctrl-C, SIGTERM to this launcher, or any process exiting by itself) finishes the work in hand: each process runs
in its own session, so a signal reaches only the main process it is meant for. Celery's main process then does a warm
shutdown: it takes no new message, lets the send in hand finish, and exits. A signal to the whole group would also hit a
prefork child (WAQ_WORKER_POOL=prefork) and cut the send (WorkerLostError), leaving the message in doubt. Whatever is
still alive after WAQ_STOP_GRACE_S is killed with its group. Started by make from a terminal, the launcher takes the
terminal's foreground for itself, so Ctrl-C reaches it and not make (which would print "make: *** ... Interrupt" and
exit 130), and gives the terminal back before it exits."""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO
from urllib.parse import urlparse

from wa_queue import redact
from wa_queue.devstack.redis_server import RedisDidNotStart, RedisMissing, RedisServer
from wa_queue.private import private_dir
from wa_queue.settings import Settings

DEMO_PHONES = ["+14155550101", "+14155550102", "+14155550103", "+447911123456", "+14155550104"]
DEMO_UNREGISTERED = "+14155550199"
# Processes the others need while they finish their work in hand: stopped after them.
LAST_TO_STOP = ("simulator",)
SUPPORT_STOP_S = 10.0  # the simulator needs no grace: nothing is in hand in it once the workers are gone


def secret_file(path: Path, make: Callable[[], str]) -> str:
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


def start_local_redis(url: str, data_dir: Path) -> RedisServer:
    """The broker of WAQ_BROKER_URL when it is local and nothing answers there: append-only under the data folder, in
    its own session (the launcher stops it last)."""
    parsed = urlparse(url)
    if parsed.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(f"nothing answers at WAQ_BROKER_URL={redact.without_password(url)} and it is not local: "
                         "start that Redis first")
    silent = f"the local redis-server did not answer at {redact.without_password(url)}"
    try:
        server = RedisServer(data_dir / "redis", parsed.port or 6379, append_only=True, own_session=True,
                             start_timeout_s=5).start()
    except RedisMissing:
        raise SystemExit("redis-server is missing: `make run` installs it (apt-get install redis-server)") from None
    except RedisDidNotStart:
        raise SystemExit(silent) from None
    if not broker_answers(url):  # it answers on its port, but not to the URL (a password it was not given)
        server.kill()
        raise SystemExit(silent)
    return server


def commands(settings: Settings, api_port: int, flower_port: int, sim_port: int | None) -> dict[str, list[str]]:
    """The processes of the stack, by name (the same set as the Procfile, with this interpreter)."""
    python = sys.executable
    found = {"api": [python, "-m", "gunicorn", "--worker-class", "api.gunicorn_worker.JsonErrorWorker", "--workers",
                     "2", "--threads", "4", "--bind", f"127.0.0.1:{api_port}", "api.app:create_app()"]}
    for name in settings.sessions:
        found[f"worker_{name}"] = [python, "-m", "wa_queue.cli", "worker", "--session", name]
    found["beat"] = [python, "-m", "wa_queue.cli", "beat"]
    found["callbacks"] = [python, "-m", "wa_queue.cli", "callbacks"]
    found["flower"] = [python, "-m", "wa_queue.cli", "flower", "--port", str(flower_port)]
    if sim_port is not None:
        found["simulator"] = [python, "-m", "wa_queue.cli", "simulator", "--port", str(sim_port), "--auto-scan"]
    return found


class Supervisor:
    """Runs named processes, each in its own session, prints their output with their name in front, and stops
    them: SIGTERM to each main process only, a grace period, then SIGKILL to the process groups left."""

    def __init__(self, commands: dict[str, list[str]], env: dict[str, str], grace_s: float,
                 out: IO[bytes] | None = None, cwd: str | None = None) -> None:
        self.commands = commands
        self.env = {**env, "PYTHONUNBUFFERED": "1"}  # lines as they happen, not when a buffer fills
        self.grace_s = grace_s
        self.out = out or sys.stdout.buffer
        self.cwd = cwd
        self.procs: dict[str, subprocess.Popen] = {}
        self._readers: list[threading.Thread] = []
        self._write_lock = threading.RLock()  # re-entered by a signal handler that interrupts a write
        self._width = max([len(name) for name in commands] + [len("system")])
        self._stop_asked = threading.Event()
        self._signals = 0
        self._forced = False

    # ---- output ------------------------------------------------------------------------------------------------
    def say(self, text: str, name: str = "system") -> None:
        self._write(name, text.encode() + b"\n")

    def _write(self, name: str, line: bytes) -> None:
        prefix = f"{time.strftime('%H:%M:%S')} {name:<{self._width}} | ".encode()
        with self._write_lock:
            try:
                self.out.write(prefix + line)
                self.out.flush()
            except (BrokenPipeError, ValueError):
                pass  # nobody reads any more; the processes still stop cleanly

    def _pump(self, name: str, stream: IO[bytes]) -> None:
        for line in iter(stream.readline, b""):
            self._write(name, line if line.endswith(b"\n") else line + b"\n")
        stream.close()

    # ---- life cycle --------------------------------------------------------------------------------------------
    def start(self) -> None:
        """Start every process; if one cannot be started, stop those already running and re-raise."""
        for name, argv in self.commands.items():
            try:
                proc = subprocess.Popen(argv, env=self.env, cwd=self.cwd, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
            except OSError:
                self.stop()
                raise
            self.procs[name] = proc
            self.say(f"{name} started (pid {proc.pid})")
            reader = threading.Thread(target=self._pump, args=(name, proc.stdout), daemon=True)
            reader.start()
            self._readers.append(reader)

    @property
    def stop_requested(self) -> bool:
        return self._stop_asked.is_set()

    def request_stop(self, signum: int, _frame: object = None) -> None:
        """Signal handler: the first signal asks for a clean stop; another one while stopping kills at once."""
        self._signals += 1
        if self._signals == 1:
            self.say(f"{signal.Signals(signum).name} received: stopping (each worker finishes the message in hand)")
            self._stop_asked.set()
        else:
            self.say(f"{signal.Signals(signum).name} again: killing everything now (a send in hand is left in doubt)")
            self._forced = True
            self._kill_all()

    def run(self) -> int:
        """Wait for a stop request or for a process to exit by itself, then stop them all. 0 when asked to stop
        and every process stopped within the grace period; 1 otherwise."""
        exited: tuple[str, int] | None = None
        while not self._stop_asked.is_set():
            exited = next(((name, p.returncode) for name, p in self.procs.items() if p.poll() is not None), None)
            if exited is not None:
                self.say(f"{exited[0]} exited with status {exited[1]}: stopping the others")
                break
            self._stop_asked.wait(0.2)
        clean = self.stop()
        return 0 if clean and exited is None and not self._forced else 1

    def stop(self) -> bool:
        """Stop everything; True when every main process exited by itself after its SIGTERM."""
        first = [name for name in self.procs if name not in LAST_TO_STOP]
        last = [name for name in self.procs if name in LAST_TO_STOP]
        clean = self._stop_group(first, self.grace_s)
        clean = self._stop_group(last, SUPPORT_STOP_S) and clean
        for reader in self._readers:
            reader.join(5)
        return clean

    def _stop_group(self, names: list[str], grace_s: float) -> bool:
        for name in names:
            proc = self.procs[name]
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)  # the main process only: Celery's warm shutdown
        deadline = time.monotonic() + grace_s
        waiting = [name for name in names if self.procs[name].poll() is None]
        if waiting:
            self.say(f"waiting up to {grace_s:.0f} s for: {', '.join(waiting)} (Ctrl-C again kills them now)")
        while any(self.procs[name].poll() is None for name in names) and time.monotonic() < deadline:
            time.sleep(0.1)
        clean = True
        for name in names:
            proc = self.procs[name]
            if proc.poll() is None:
                clean = False
                self.say(f"{name} did not stop within {grace_s:.0f} s: killed")
            self._kill_group(proc)  # what a clean exit left behind too (a Chrome whose driver died)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)
            self.say(f"{name} stopped (status {proc.returncode})")
        return clean

    def _kill_all(self) -> None:
        for proc in self.procs.values():
            self._kill_group(proc)

    @staticmethod
    def _kill_group(proc: subprocess.Popen) -> None:
        # Each child leads its own group (start_new_session), so its pid is the group's id.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)


@contextlib.contextmanager
def terminal_foreground() -> Iterator[None]:
    """While inside, this process's own group is the terminal's foreground group, when there is a terminal and our
    group had it: Ctrl-C then reaches this launcher only, not make (its parent), which would report an interrupt.
    The children are in sessions of their own either way, so the terminal never signals them."""
    try:
        tty = os.open("/dev/tty", os.O_RDWR)
    except OSError:  # no controlling terminal (CI, a service, a pipe): nothing to hand over
        yield
        return
    previous = os.getpgrp()
    moved = False
    try:
        if os.tcgetpgrp(tty) == previous and previous != os.getpid():
            os.setpgid(0, 0)
            _set_foreground(tty, os.getpgrp())
            moved = True
    except OSError:
        pass  # a session leader cannot change group; Ctrl-C still reaches us
    try:
        yield
    finally:
        if moved:
            with contextlib.suppress(OSError):
                _set_foreground(tty, previous)  # back to make, which then exits with our status
        os.close(tty)


def _set_foreground(tty: int, pgrp: int) -> None:
    # A process outside the foreground group that changes it gets SIGTTOU (which would stop it) unless it ignores it.
    old = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    try:
        os.tcsetpgrp(tty, pgrp)
    finally:
        signal.signal(signal.SIGTTOU, old)


def demo_env(sim_port: int) -> dict[str, str]:
    return {
        "WAQ_WHATSAPP_URL": f"http://127.0.0.1:{sim_port}",
        "WAQ_TRANSPORT": "selenium",
        "WAQ_MIN_DELAY_S": os.environ.get("WAQ_MIN_DELAY_S", "2"),
        "WAQ_MAX_DELAY_S": os.environ.get("WAQ_MAX_DELAY_S", "4"),
        "WAQ_HEALTH_INTERVAL_S": os.environ.get("WAQ_HEALTH_INTERVAL_S", "5"),
        "WAQ_DISPATCH_INTERVAL_S": os.environ.get("WAQ_DISPATCH_INTERVAL_S", "5"),
        # A demo's callback receivers run on this machine, which the outbound rule refuses unless allowed.
        "WAQ_OUTBOUND_ALLOW": os.environ.get("WAQ_OUTBOUND_ALLOW", "127.0.0.1,::1,localhost"),
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
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--demo", action="store_true")
    parser.add_argument("--api-port", type=int, default=int(os.environ.get("WAQ_API_PORT", "8000")))
    parser.add_argument("--flower-port", type=int, default=int(os.environ.get("WAQ_FLOWER_PORT", "5555")))
    parser.add_argument("--sim-port", type=int, default=int(os.environ.get("WAQ_SIM_PORT", "8090")))
    args = parser.parse_args(argv)

    env: dict[str, str] = dict(os.environ)
    if args.demo:
        env.update(demo_env(args.sim_port))
    os.environ.update(env)
    settings = Settings.from_env(env)
    private_dir(settings.data_dir)
    admin_key = secret_file(settings.data_dir / "admin.key", lambda: secrets.token_urlsafe(32))
    flower_auth = secret_file(settings.data_dir / "flower.auth", lambda: "admin:" + secrets.token_urlsafe(18))
    env.setdefault("WAQ_API_KEYS", f"admin:admin:{admin_key}")
    env.setdefault("WAQ_FLOWER_AUTH", flower_auth)
    env["WAQ_DATA_DIR"] = str(settings.data_dir)

    supervisor = Supervisor(commands(settings, args.api_port, args.flower_port, args.sim_port if args.demo else None),
                            env, settings.stop_grace_s, cwd=os.getcwd())
    # Set before anything starts: a signal from here on stops what has started, and nothing is orphaned.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # SIGHUP: the terminal closed
        signal.signal(signum, supervisor.request_stop)
    with terminal_foreground():
        redis_server = None if broker_answers(settings.broker_url) else start_local_redis(settings.broker_url,
                                                                                           settings.data_dir)
        try:
            api_url = f"http://127.0.0.1:{args.api_port}"
            print(f"""
wa-queue is starting ({'demo, WhatsApp Web simulator' if args.demo else 'WhatsApp Web'}; Ctrl-C stops everything)
  dashboard  {api_url}/admin/settings/whatsapp-monitoring
  swagger    {api_url}/api/docs
  flower     http://127.0.0.1:{args.flower_port}   (user:password in {settings.data_dir / 'flower.auth'})
  admin key  {admin_key}   (kept in {settings.data_dir / 'admin.key'})
  broker     {redact.without_password(settings.broker_url)}{' (started here)' if redis_server else ''}
  store      {redact.without_password(settings.store_url)}
""", flush=True)
            if not supervisor.stop_requested:
                supervisor.start()
                if args.demo:
                    threading.Thread(target=demo_producer, daemon=True,
                                     args=(api_url, f"http://127.0.0.1:{args.sim_port}", admin_key)).start()
            code = supervisor.run()
        finally:
            # The broker goes last: the workers needed it to acknowledge the message they finished.
            if redis_server is not None:
                redis_server.stop()
        # Still in the foreground: a background write to a terminal set to `stty tostop` would stop this process.
        print(f"wa-queue stopped{'' if code == 0 else ' (not cleanly: see above)'}", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
