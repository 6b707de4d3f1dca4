"""Throwaway PostgreSQL 15 clusters for tests.

Fixtures (made visible to every test by ``tests/conftest.py``):

* ``pg_cluster`` (session): one cluster for the whole test session, started on first use.
* ``pg_url`` (session): the URL of that cluster's ``postgres`` database (for admin work).
* ``pg_db_url`` (function): the URL of a fresh, empty database created for the test and dropped
  after it (``DROP DATABASE ... WITH (FORCE)``, so connections a test leaves open do not block).

:class:`PgCluster` is the helper behind them, for tests that need a cluster of their own (stop it
mid-use, back it up, restore it, run a DR drill)::

    with PgCluster() as pg:                  # initdb + start; stopped and removed on exit
        pg.psql("CREATE TABLE t (x int)")
        url = pg.url()                        # postgresql+psycopg://postgres@127.0.0.1:PORT/postgres
        pg.stop(); pg.start()

Clusters live in a temp dir, listen on 127.0.0.1 (and a unix socket in the temp dir) on a free
port, and trust local connections as superuser ``postgres``. PostgreSQL refuses to run as root,
so when the tests run as root the server commands run as the ``postgres`` user (``runuser``) and
the temp dir is handed to that user; otherwise they run as the current user. Every wait is
bounded: ``pg_ctl -w -t`` plus a subprocess timeout.

If the PostgreSQL binaries are missing the fixtures FAIL (never skip): run ``make test``, which
installs them through ``scripts/system-deps.sh``.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import Iterator

import pytest

__all__ = ["PgCluster", "PgClusterError", "PgMissing", "free_port", "pg_cluster", "pg_url", "pg_db_url"]

PG_BIN = Path(os.environ.get("VIGIL_PG_BIN", "/usr/lib/postgresql/15/bin"))
NEEDED = ("initdb", "pg_ctl", "postgres", "psql")
SUPERUSER = "postgres"
OS_USER_WHEN_ROOT = "postgres"

# Durability off: these clusters are thrown away. A test that needs real durability (a crash
# test) passes ``fast=False``.
FAST_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
BASE_SETTINGS = {
    "max_connections": "100",
    "shared_buffers": "32MB",
    "log_min_messages": "warning",
    "log_line_prefix": "'%m [%p] %d '",
    "timezone": "'UTC'",
}


class PgClusterError(RuntimeError):
    """A cluster command failed; the message carries the command's output and the server log tail."""


class PgMissing(PgClusterError):
    """PostgreSQL 15 is not installed where the tests expect it."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check_binaries(bin_dir: Path = PG_BIN) -> None:
    missing = [b for b in NEEDED if not (bin_dir / b).is_file() or not os.access(bin_dir / b, os.X_OK)]
    if missing:
        raise PgMissing(
            f"PostgreSQL 15 is not installed: {', '.join(missing)} not found in {bin_dir}. "
            "Run `make test` (it installs the system packages the tests need via scripts/system-deps.sh), "
            "or install postgresql-15 yourself."
        )
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            raise PgMissing("the tests run as root but `runuser` is missing; PostgreSQL will not run as root")
        try:
            pwd.getpwnam(OS_USER_WHEN_ROOT)
        except KeyError:
            raise PgMissing(
                f"the tests run as root but there is no {OS_USER_WHEN_ROOT!r} user to run PostgreSQL as; "
                "run `make test` (installing postgresql-15 creates it)"
            ) from None


class PgCluster:
    """One throwaway cluster: ``initdb()``, ``start()``, ``stop()``, ``psql()``, ``destroy()``."""

    def __init__(
        self,
        base_dir: str | Path | None = None,
        *,
        port: int | None = None,
        bin_dir: str | Path = PG_BIN,
        fast: bool = True,
        settings: dict[str, str] | None = None,
    ) -> None:
        self.bin_dir = Path(bin_dir)
        check_binaries(self.bin_dir)
        self._own_base = base_dir is None
        # not pytest's tmp_path: its parents are 0700 root, which the postgres user cannot enter
        self.base = Path(base_dir) if base_dir is not None else Path(tempfile.mkdtemp(prefix="vigil-pg-"))
        self.base.mkdir(parents=True, exist_ok=True)
        self.data_dir = self.base / "data"
        self.socket_dir = self.base / "sock"
        self.log_file = self.base / "postgres.log"
        self._fixed_port = port is not None
        self.port = port if port is not None else free_port()
        self.settings = {**BASE_SETTINGS, **(FAST_SETTINGS if fast else {}), **(settings or {})}
        self._as_root = os.geteuid() == 0
        if self._as_root:
            pw = pwd.getpwnam(OS_USER_WHEN_ROOT)
            self._uid, self._gid = pw.pw_uid, pw.pw_gid
            os.chown(self.base, self._uid, self._gid)
        self.initialized = False

    # -- commands -----------------------------------------------------------------------------

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(LC_ALL="C", LANG="C", TZ="UTC")
        return env

    def run(self, args: list[str], *, as_server_user: bool = True, timeout: float = 60, check: bool = True,
            input: str | None = None) -> subprocess.CompletedProcess:
        """Run a PostgreSQL program from ``bin_dir`` (as the ``postgres`` user when we are root)."""
        cmd = [str(self.bin_dir / args[0]), *args[1:]]
        if as_server_user and self._as_root:
            cmd = ["runuser", "-u", OS_USER_WHEN_ROOT, "--", *cmd]
        try:
            p = subprocess.run(
                cmd, cwd=self.base, env=self._env(), input=input, capture_output=True, text=True, timeout=timeout
            )
        except subprocess.TimeoutExpired as e:
            raise PgClusterError(f"{args[0]} did not finish within {timeout}s{self._log_tail()}") from e
        if check and p.returncode != 0:
            raise PgClusterError(
                f"{' '.join(args)} failed (exit {p.returncode}):\n{p.stdout}{p.stderr}{self._log_tail()}"
            )
        return p

    def _log_tail(self, n: int = 30) -> str:
        try:
            lines = self.log_file.read_text(errors="replace").splitlines()[-n:]
        except OSError:
            return ""
        return "\n--- server log (tail) ---\n" + "\n".join(lines) if lines else ""

    def initdb(self) -> "PgCluster":
        self.socket_dir.mkdir(exist_ok=True)
        if self._as_root:
            os.chown(self.socket_dir, self._uid, self._gid)
        self.run(
            ["initdb", "-D", str(self.data_dir), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--locale=C",
             "--no-sync", "--no-instructions"],
            timeout=120,
        )
        with open(self.data_dir / "postgresql.conf", "a") as f:
            f.write("\ninclude_if_exists = 'vigil_test.conf'\n")
        self.initialized = True
        return self

    def _write_conf(self) -> None:
        conf = {
            **self.settings,
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.socket_dir}'",
        }
        path = self.data_dir / "vigil_test.conf"
        path.write_text("".join(f"{k} = {v}\n" for k, v in conf.items()))
        if self._as_root:
            os.chown(path, self._uid, self._gid)

    def start(self, timeout: int = 30) -> "PgCluster":
        """Start the server and wait (at most ``timeout`` s) until it accepts connections."""
        if not self.initialized:
            self.initdb()
        attempts = 1 if self._fixed_port else 3
        for attempt in range(attempts):
            self._write_conf()
            p = self.run(
                ["pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_file), "-w", "-t", str(timeout), "start"],
                timeout=timeout + 15,
                check=False,
            )
            if p.returncode == 0:
                return self
            if attempt + 1 < attempts and "could not bind" in self._log_tail():
                self.port = free_port()  # lost a race for the port: take another
                continue
            raise PgClusterError(f"pg_ctl start failed (exit {p.returncode}):\n{p.stdout}{p.stderr}{self._log_tail()}")
        raise AssertionError("unreachable")

    def stop(self, mode: str = "fast", timeout: int = 30) -> None:
        """Stop the server (``mode``: smart, fast or immediate) and wait at most ``timeout`` s."""
        self.run(["pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "-t", str(timeout), "stop"], timeout=timeout + 15)

    def restart(self, timeout: int = 30) -> None:
        self.stop(timeout=timeout)
        self.start(timeout=timeout)

    @property
    def running(self) -> bool:
        if not self.initialized:
            return False
        return self.run(["pg_ctl", "-D", str(self.data_dir), "status"], check=False, timeout=15).returncode == 0

    def psql(self, sql: str, db: str = "postgres", *, timeout: float = 60) -> str:
        """Run SQL with psql (stop on the first error); return its unaligned, tuples-only output."""
        p = self.run(
            ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", str(self.socket_dir), "-p", str(self.port),
             "-U", SUPERUSER, "-d", db, "-f", "-"],
            input=sql,
            timeout=timeout,
        )
        return p.stdout.strip()

    def url(self, db: str = "postgres", driver: str = "postgresql+psycopg") -> str:
        return f"{driver}://{SUPERUSER}@127.0.0.1:{self.port}/{db}"

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database (a unique name by default); return its name."""
        name = name or f"t_{uuid.uuid4().hex[:16]}"
        self.psql(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def destroy(self) -> None:
        """Stop the server at once (if it runs) and remove the cluster's files."""
        try:
            if self.initialized and self.running:
                self.stop(mode="immediate")
        finally:
            if self._own_base:
                shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> "PgCluster":
        try:
            self.start()
        except BaseException:
            self.destroy()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.destroy()


def _start_or_fail(**kw) -> PgCluster:
    """Start a cluster, or FAIL the test (never skip) with what to do about it."""
    problem = None
    try:
        pg = PgCluster(**kw)
    except PgMissing as e:
        problem = str(e)
    else:
        try:
            pg.start()
        except PgClusterError as e:
            pg.destroy()
            problem = f"could not start a throwaway PostgreSQL cluster: {e}"
    if problem is not None:
        pytest.fail(problem, pytrace=False)
    return pg


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """One throwaway PostgreSQL 15 cluster for the whole test session."""
    pg = _start_or_fail()
    try:
        yield pg
    finally:
        pg.destroy()


@pytest.fixture(scope="session")
def pg_url(pg_cluster: PgCluster) -> str:
    """URL of the session cluster's ``postgres`` database (superuser ``postgres``)."""
    return pg_cluster.url()


@pytest.fixture
def pg_db_url(pg_cluster: PgCluster) -> Iterator[str]:
    """URL of a fresh empty database on the session cluster; dropped after the test."""
    name = pg_cluster.create_database()
    try:
        yield pg_cluster.url(name)
    finally:
        pg_cluster.drop_database(name)
