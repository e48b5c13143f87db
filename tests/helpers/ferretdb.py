"""A real MongoDB-protocol server for the tests: FerretDB 1.24 on its SQLite backend, built here with Go.

The suite builds `ferretdb` once per machine (under build/, never in the repository), after collection when a selected
test needs it (tests/conftest.py), when a Go toolchain new enough for FerretDB's go.mod is on the PATH; without one,
the tests that need a server are skipped and the run says so in one line. A build that fails with Go present fails
those tests. WAQ_TEST_MONGO_URL points them at a real MongoDB instead, and nothing is built.

The build is FerretDB's module source copied to build/ferretdb-src with one patch, ferretdb.patch, of two parts:
- FerretDB 1.x does not make a single-document write atomic across connections (two clients' findAndModify on one
  document can both match), which MongoDB guarantees; the patch holds one lock around every write command, so the
  compare-and-sets of the store are tested against the guarantee the store relies on (docs/testing.md);
- its SQLite backend looks a document up by _id only when _id is the filter's one key, and reads the whole collection
  otherwise; the patch uses the _id whatever else the filter holds (the handlers filter every row again), so a
  compare-and-set reads one row. Speed only: the answers are the same.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

from tests.helpers.constants import ROOT
from wa_queue.devstack.ports import free_port

MODULE = "github.com/FerretDB/FerretDB"
VERSION = "v1.24.2"
PATCH = Path(__file__).with_name("ferretdb.patch")
BUILD = ROOT / "build"
SOURCE = BUILD / "ferretdb-src"
BINARY = BUILD / "bin" / "ferretdb"
STAMP = BUILD / "bin" / "ferretdb.version.txt"  # what the binary was built from: a changed patch rebuilds it
LOCK = BUILD / "ferretdb.lock"  # the two pytest-xdist workers build once between them
BUILD_TIMEOUT_S = 900
START_TIMEOUT_S = 20.0
GO_NEEDED = "1.24"  # FerretDB v1.24.2's go.mod (`go 1.24`); the build checks it against go.mod again
NO_GO = "FerretDB tests skipped: no Go toolchain on PATH"
OLD_GO = "FerretDB tests skipped: the Go toolchain on PATH ({have}) is older than the Go " + GO_NEEDED + " it needs"
MONGO_URL_VARIABLE = "WAQ_TEST_MONGO_URL"


class BuildFailed(RuntimeError):
    """Go is there but ferretdb did not build: the tests that need it fail."""


def _go_env() -> dict[str, str]:
    # GOTOOLCHAIN=local: never download another toolchain; a Go too old for FerretDB is a skip, said in one line.
    return {**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "-buildvcs=false"}


def _version_tuple(text: str) -> tuple[int, ...]:
    match = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", text)
    return tuple(int(part or 0) for part in match.groups()) if match else (0,)


def go_problem() -> str | None:
    """Why the server cannot exist on this machine (the one skip line), or None. Cheap: no build, no download."""
    if os.environ.get(MONGO_URL_VARIABLE):
        return None
    if shutil.which("go") is None:
        return NO_GO
    try:
        have = _run(["go", "env", "GOVERSION"]).strip()
    except (BuildFailed, OSError, subprocess.TimeoutExpired):
        return None  # a Go that cannot say its version: the build will say what is wrong, and fail
    if _version_tuple(have) < _version_tuple(GO_NEEDED):
        return OLD_GO.format(have=have)
    return None


def _stamp() -> str:
    return f"{MODULE}@{VERSION} patch {hashlib.sha256(PATCH.read_bytes()).hexdigest()[:16]}\n"


def _run(argv: list[str], cwd: Path | None = None, **env: str) -> str:
    done = subprocess.run(argv, cwd=cwd, env={**_go_env(), **env}, capture_output=True, text=True,
                          timeout=BUILD_TIMEOUT_S, check=False)
    if done.returncode != 0:
        raise BuildFailed(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return done.stdout


def ensure_binary() -> Path:
    """The patched ferretdb, built when missing or built from another version or patch. Raises BuildFailed."""
    if BINARY.exists() and STAMP.exists() and STAMP.read_text() == _stamp():
        return BINARY
    BUILD.mkdir(exist_ok=True)
    with open(LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the other worker may be building: wait, then find its binary
        if BINARY.exists() and STAMP.exists() and STAMP.read_text() == _stamp():
            return BINARY
        _build()
    return BINARY


def _build() -> None:
    # The module's source and go.mod, from the module cache or the Go module proxy.
    info = json.loads(_run(["go", "mod", "download", "-json", f"{MODULE}@{VERSION}"]))
    needed = re.search(r"^go (\S+)", Path(info["GoMod"]).read_text(), re.M)
    have = _run(["go", "env", "GOVERSION"]).strip()
    if needed and _version_tuple(have) < _version_tuple(needed.group(1)):
        raise BuildFailed(f"FerretDB {VERSION} needs Go {needed.group(1)}; the PATH has {have}")
    shutil.rmtree(SOURCE, ignore_errors=True)
    shutil.copytree(info["Dir"], SOURCE)
    for path in [SOURCE, *SOURCE.rglob("*")]:
        path.chmod(path.stat().st_mode | 0o200)  # the module cache is read-only
    # FerretDB refuses to start without its version file, which `go install module@version` leaves empty.
    (SOURCE / "build" / "version" / "version.txt").write_text(VERSION + "\n")
    # Outside any repository (the ceiling stops git finding ours around build/): paths are then taken from SOURCE.
    _run(["git", "apply", "-p1", str(PATCH)], cwd=SOURCE, GIT_CEILING_DIRECTORIES=str(SOURCE.parent))
    if "serialWrites" not in (SOURCE / "internal" / "handler" / "commands.go").read_text():
        raise BuildFailed(f"{PATCH.name} did not apply to {SOURCE}")
    STAMP.unlink(missing_ok=True)
    _run(["go", "install", "./cmd/ferretdb"], cwd=SOURCE, GOBIN=str(BINARY.parent))
    STAMP.write_text(_stamp())


def command(workdir: Path, listen_addr: str) -> list[str]:
    """The ferretdb command line: SQLite files under workdir/data (made here), listening on `listen_addr`."""
    data = workdir / "data"
    data.mkdir(parents=True, exist_ok=True)
    return [str(ensure_binary()), "--handler=sqlite", f"--sqlite-url=file:{data}/", f"--listen-addr={listen_addr}",
            "--telemetry=disable", f"--state-dir={workdir}", "--debug-addr=-", "--log-level=warn"]


class FerretDB:
    """One ferretdb process on a free port, its data (SQLite files) in `workdir`."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None
        self.log: Path = workdir / "ferretdb.log"

    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}"

    def start(self) -> FerretDB:
        argv = command(self.workdir, f"127.0.0.1:{self.port}")
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT,
                env={k: v for k, v in os.environ.items() if not k.startswith(("WAQ_", "FERRETDB_"))},
            )
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        import pymongo

        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"ferretdb exited ({self.proc.returncode}): {self.log.read_text()[-2000:]}")
            client = pymongo.MongoClient(self.url, serverSelectionTimeoutMS=500)
            try:
                client.admin.command("ping")
                return
            except pymongo.errors.PyMongoError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"ferretdb did not answer a ping in {START_TIMEOUT_S}s") from None
                time.sleep(0.1)
            finally:
                client.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(10)


class ExternalMongo:
    """WAQ_TEST_MONGO_URL: a MongoDB someone else runs (nothing started or stopped here)."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def stop(self) -> None:
        pass


def drop_database(url: str) -> None:
    """Remove a test's database (its server outlives the test)."""
    import pymongo

    base, _, name = url.rpartition("/")
    client = pymongo.MongoClient(base, serverSelectionTimeoutMS=5000)
    try:
        with contextlib.suppress(pymongo.errors.PyMongoError):
            client.drop_database(name.split("?")[0])
    finally:
        client.close()
