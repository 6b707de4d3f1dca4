"""The canary ledger: one row per ``interval`` on the primary, from its own thread and connection,
each with the server's commit-time clock; what the client saw committed is what a restore owes.
I/O (a database connection and a thread)."""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any, Callable


class CanaryWriter:
    """Writes one row per ``interval`` into the canary table from its own thread and connection.

    ``confirmed`` holds every row whose commit the client saw: (seq, commit time from the server's
    ``clock_timestamp()``). The writer stops on :meth:`stop` or at the first error (the disaster)."""

    def __init__(self, connect: Callable[[], Any], table: str, interval: float, label: str) -> None:
        self.connect = connect
        self.table = table
        self.interval = interval
        self.label = label
        self.confirmed: list[tuple[int, datetime]] = []
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @staticmethod
    def create_table(conn: Any, table: str) -> None:
        from psycopg import sql

        conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
                "committed_at timestamptz NOT NULL DEFAULT clock_timestamp(), drill text)"
            ).format(sql.Identifier(table))
        )

    def start(self) -> None:
        conn = self.connect()  # connect in the caller: a refused connection fails the phase at once
        self._thread = threading.Thread(target=self._run, args=(conn,), name="vigil-canary", daemon=True)
        self._thread.start()

    def _run(self, conn: Any) -> None:
        from psycopg import sql

        q = sql.SQL("INSERT INTO {} (drill) VALUES (%s) RETURNING seq, committed_at").format(sql.Identifier(self.table))
        try:
            while not self._stop.is_set():
                try:
                    seq, ts = conn.execute(q, (self.label,)).fetchone()
                except Exception as e:  # the server went away: that is the disaster
                    self.error = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                    return
                with self._lock:
                    self.confirmed.append((int(seq), ts))
                self._stop.wait(self.interval)
        finally:
            try:
                conn.close()
            except Exception:
                pass

    def stop(self, timeout: float = 30) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def last(self) -> tuple[int, datetime] | None:
        with self._lock:
            return self.confirmed[-1] if self.confirmed else None

    @property
    def first(self) -> tuple[int, datetime] | None:
        with self._lock:
            return self.confirmed[0] if self.confirmed else None

    def rows(self) -> list[tuple[int, datetime]]:
        """Every confirmed row so far (a copy)."""
        with self._lock:
            return list(self.confirmed)
