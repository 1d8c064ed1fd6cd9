"""A real PostgreSQL server for the tests: initdb in a temp dir, run as an unprivileged user.

Debian's ``postgresql`` package provides the binaries (``make pytest`` installs it when
missing). The server listens on a Unix socket in its own directory only (no TCP port to
collide with), with fsync off for the tests (it is thrown away after the session). Each test gets a
fresh database copied from a migrated template (``CREATE DATABASE ... TEMPLATE``).
"""

from __future__ import annotations

import ctypes
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path

import psycopg

UNPRIVILEGED = "nobody"


def database_name(url: str) -> str:
    return url.split("?", 1)[0].rsplit("/", 1)[1]


class PostgresUnavailable(RuntimeError):
    """The test server could not be started (the message says why, in one line)."""


def _bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    if found:
        return Path(found[-1]).parent
    postgres = shutil.which("postgres")
    if postgres:
        return Path(postgres).parent
    raise PostgresUnavailable(
        "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/postgres):"
        " apt-get install postgresql, or run make pytest which installs it"
    )


@dataclass
class PostgresServer:
    root: Path
    process: subprocess.Popen[bytes]
    _names: count[int] = field(default_factory=count)

    @property
    def socket_dir(self) -> Path:
        return self.root / "socket"

    def url(self, database: str) -> str:
        return f"postgresql://postgres@/{database}?host={self.socket_dir}"

    def admin(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(self.url("postgres"), autocommit=True)

    def create_database(self, template: str | None = None) -> str:
        """A new empty (or ``template``-copied) database; its URL."""
        name = f"t{os.getpid()}_{next(self._names)}"
        with self.admin() as conn:
            conn.execute(
                f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")
            )
        return self.url(name)

    def drop_database(self, url: str) -> None:
        name = database_name(url)
        with self.admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # fast shutdown: ends open sessions
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)


def _stop_with_parent() -> None:
    """In the server process: a fast shutdown when the process that started it dies."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGINT)  # PR_SET_PDEATHSIG


def _last_line(path: Path) -> str:
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "no log"
    return lines[-1] if lines else "empty log"


# Thrown away after the tests: no fsync. A benchmark passes DURABLE (PostgreSQL's defaults).
THROWAWAY = {"fsync": "off", "full_page_writes": "off"}
DURABLE: dict[str, str] = {}


def start_postgres(timeout: float = 30.0, settings: dict[str, str] | None = None) -> PostgresServer:
    """initdb and start a server in a new temp dir; PostgresUnavailable saying why if not."""
    settings = THROWAWAY if settings is None else settings
    bindir = _bindir()
    root = Path(tempfile.mkdtemp(prefix="v2g-postgres-"))
    data, socket_dir, log = root / "data", root / "socket", root / "server.log"
    socket_dir.mkdir()
    user: str | None = None
    if os.geteuid() == 0:  # the server refuses to run as root
        user = UNPRIVILEGED
        entry = pwd.getpwnam(user)
        for path in (root, socket_dir):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    as_user = {"user": user, "group": pwd.getpwnam(user).pw_gid, "extra_groups": []} if user else {}
    init = subprocess.run(
        [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync"],
        capture_output=True,
        text=True,
        cwd=root,
        **as_user,  # type: ignore[call-overload]
    )
    if init.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        reason = (init.stderr.strip().splitlines() or ["no output"])[-1]
        raise PostgresUnavailable(f"initdb failed: {reason}")
    with open(log, "wb") as out:
        if user:
            os.chown(log, pwd.getpwnam(user).pw_uid, pwd.getpwnam(user).pw_gid)
        process = subprocess.Popen(
            [
                str(bindir / "postgres"),
                "-D",
                str(data),
                "-k",
                str(socket_dir),
                "-c",
                "listen_addresses=",
                "-c",
                "max_connections=200",
                *(arg for key, value in settings.items() for arg in ("-c", f"{key}={value}")),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=root,
            preexec_fn=_stop_with_parent,
            **as_user,  # type: ignore[call-overload]
        )
    server = PostgresServer(root, process)
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            reason = _last_line(log)
            shutil.rmtree(root, ignore_errors=True)
            raise PostgresUnavailable(f"the PostgreSQL server exited: {reason}")
        try:
            with server.admin():
                return server
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                reason = _last_line(log)
                server.stop()
                raise PostgresUnavailable(
                    f"the PostgreSQL server did not accept connections in {timeout:.0f} s: {reason}"
                ) from None
            time.sleep(0.1)
