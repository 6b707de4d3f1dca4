"""A PostgreSQL cluster vigil controls on this machine: a drill's restore target, `vigil drill demo`.

``initdb``, ``start``, ``stop`` and ``destroy`` through PostgreSQL's own programs, as the cluster's
OS user when vigil is root (PostgreSQL refuses to run as root). Every wait is bounded:
``pg_ctl -w -t`` plus a subprocess timeout; :meth:`wait_promoted` polls for the end of recovery
with a deadline. Listens on 127.0.0.1 and a unix socket in ``socket_dir``; local connections are
trusted (a throwaway or restored cluster only ever talks to vigil).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any, Callable

from vigil.dr.postgres import osuser
from vigil.errors import ExternalError

SUPERUSER = "postgres"


class ClusterError(ExternalError):
    code = "postgres-cluster"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalCluster:
    """One cluster in ``data_dir``, its socket in ``socket_dir``, its log in ``log_file``."""

    def __init__(
        self,
        data_dir: str | Path,
        *,
        port: int | None = None,
        socket_dir: str | Path | None = None,
        log_file: str | Path | None = None,
        pg_bin: str | Path = "/usr/lib/postgresql/15/bin",
        os_user: str | None = None,
        settings: dict[str, str] | None = None,
        user: str = SUPERUSER,
    ) -> None:
        self.data_dir = Path(data_dir)
        base = self.data_dir.parent
        self.socket_dir = Path(socket_dir) if socket_dir else base / (self.data_dir.name + "-sock")
        self.log_file = Path(log_file) if log_file else base / (self.data_dir.name + ".log")
        self.pg_bin = Path(pg_bin)
        self.port = port or free_port()
        self.os_user = osuser.effective_user(os_user)
        self.settings = dict(settings or {})
        self.user = user
        for prog in ("initdb", "pg_ctl", "postgres"):
            if not (self.pg_bin / prog).is_file():
                raise ClusterError(
                    f"PostgreSQL is not installed: {self.pg_bin / prog} not found",
                    hint="install postgresql-15 (Debian: apt-get install postgresql-15) or set backups.postgres.pg_bin",
                )

    # -- running programs ----------------------------------------------------------------------

    def run(self, args: list[str], *, timeout: float = 60, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
        cmd = osuser.wrap([str(self.pg_bin / args[0]), *args[1:]], self.os_user)
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=osuser.clean_env(), input=input, cwd="/")
        except subprocess.TimeoutExpired:
            raise ClusterError(f"{args[0]} did not finish within {timeout:g}s{self.log_tail()}", hint="see the server log") from None
        if check and p.returncode != 0:
            raise ClusterError(
                f"{' '.join(args[:3])} failed (exit {p.returncode}): {(p.stdout + p.stderr).strip()[-800:]}{self.log_tail()}",
                hint=f"see the server log {self.log_file}",
            )
        return p

    def log_tail(self, n: int = 15) -> str:
        try:
            lines = self.log_file.read_text(errors="replace").splitlines()[-n:]
        except OSError:
            return ""
        return ("\n--- server log (tail) ---\n" + "\n".join(lines)) if lines else ""

    # -- lifecycle -----------------------------------------------------------------------------

    def prepare_dirs(self) -> None:
        """Create the socket directory (and the data directory's parent), owned by the OS user."""
        osuser.make_dir(self.socket_dir, self.os_user, mode=0o755)
        if not self.data_dir.parent.exists():
            osuser.make_dir(self.data_dir.parent, self.os_user, mode=0o755)
        if not self.log_file.exists():
            self.log_file.touch()
            osuser.hand_over(self.log_file, self.os_user)

    def initdb(self, *, timeout: float = 180) -> "LocalCluster":
        self.prepare_dirs()
        self.run(
            ["initdb", "-D", str(self.data_dir), "-U", self.user, "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"],
            timeout=timeout,
        )
        return self

    def _options(self, extra: dict[str, str] | None = None) -> str:
        opts = {
            "port": str(self.port),
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(self.socket_dir),
            **self.settings,
            **(extra or {}),
        }
        parts = []
        for k, v in opts.items():
            parts.append(f"-c {k}={_quote(v)}")
        return " ".join(parts)

    def start(self, *, timeout: int = 60, extra: dict[str, str] | None = None) -> "LocalCluster":
        """Start the server with the settings given (command-line ``-c``, which win over the files)."""
        self.prepare_dirs()
        p = self.run(
            ["pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_file), "-w", "-t", str(timeout), "-o", self._options(extra), "start"],
            timeout=timeout + 15,
            check=False,
        )
        if p.returncode != 0:
            raise ClusterError(
                f"PostgreSQL in {self.data_dir} did not start (exit {p.returncode}): {(p.stdout + p.stderr).strip()[-500:]}{self.log_tail()}",
                hint=f"see the server log {self.log_file}",
            )
        return self

    def stop(self, mode: str = "fast", *, timeout: int = 60) -> None:
        self.run(["pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "-t", str(timeout), "stop"], timeout=timeout + 15)

    @property
    def running(self) -> bool:
        if not (self.data_dir / "PG_VERSION").exists():
            return False
        return self.run(["pg_ctl", "-D", str(self.data_dir), "status"], check=False, timeout=15).returncode == 0

    def destroy(self, *, remove: bool = True) -> None:
        """Stop at once (if running) and, with ``remove``, delete the data and socket directories and the log."""
        try:
            if self.running:
                self.stop("immediate")
        finally:
            if remove:
                shutil.rmtree(self.data_dir, ignore_errors=True)
                shutil.rmtree(self.socket_dir, ignore_errors=True)
                try:
                    self.log_file.unlink()
                except OSError:
                    pass

    # -- SQL -------------------------------------------------------------------------------------

    def conninfo(self, db: str = "postgres") -> str:
        return f"host={self.socket_dir} port={self.port} user={self.user} dbname={db} connect_timeout=10"

    def url(self, db: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{db}"

    def connect(self, db: str = "postgres", *, autocommit: bool = True) -> Any:
        from vigil.pgconn import connect

        return connect(self.conninfo(db), what=f"the cluster in {self.data_dir}", hint=f"see {self.log_file}", error=ClusterError,
                       autocommit=autocommit)

    def sql(self, query: str, params: Any = None, *, db: str = "postgres") -> list[tuple]:
        import psycopg

        with self.connect(db) as conn:
            try:
                cur = conn.execute(query, params)
                return cur.fetchall() if cur.description else []
            except psycopg.Error as e:
                raise ClusterError(f"SQL on the cluster in {self.data_dir} failed: {str(e).strip()}") from None

    def wait_promoted(self, *, timeout: float, db: str = "postgres", poll: float = 0.1,
                      sleep: Callable[[float], None] = time.sleep, monotonic: Callable[[], float] = time.monotonic) -> None:
        """Wait until recovery has ended (``pg_is_in_recovery()`` false), at most ``timeout`` s."""
        import psycopg

        from vigil.errors import VigilError
        from vigil.pgconn import connect, first_line

        deadline = monotonic() + timeout
        last = "not yet connected"
        while True:
            try:
                with connect(self.conninfo(db), what="the restored cluster", error=ClusterError) as conn:
                    if not conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
                        return
                    last = "still in recovery"
            except VigilError as e:
                last = e.message
            except psycopg.Error as e:  # the server went away between connecting and asking
                last = first_line(e)
            if not self.running:
                raise ClusterError(f"the restored cluster stopped during recovery: {last}{self.log_tail()}", hint=f"see {self.log_file}")
            if monotonic() >= deadline:
                raise ClusterError(f"recovery did not end within {timeout:g}s ({last}){self.log_tail()}", hint=f"see {self.log_file}")
            sleep(poll)


def _quote(v: str) -> str:
    """A ``-c name=value`` value for pg_ctl's ``-o`` (parsed by the postmaster like a shell word)."""
    s = str(v)
    if s and all(c.isalnum() or c in "._-/:" for c in s):
        return s
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def ensure_traversable(path: Path, os_user: str | None) -> None:
    """Raise when the OS user cannot reach ``path``'s parent directory (a 0700 home on the way)."""
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not osuser.can_access(parent, os_user):
        raise ClusterError(
            f"the OS user {os_user!r} cannot reach {parent}",
            hint="put the restore directory somewhere that user can traverse, e.g. under /tmp or /var/lib/postgresql",
        )

