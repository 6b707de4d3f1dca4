"""Migration files: discovery, ordering, up/down pairing, statement splitting.

The convention is documented in :mod:`vigil.deploy.migrations.spec`. This module only reads files;
it never connects to a database. :func:`load_migrations` raises :class:`MigrationFileError` (an
input error, exit 2) listing every problem in the directory at once.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vigil.deploy.migrations.spec import MAX_MIGRATION_BYTES
from vigil.errors import VigilError

FILE_RE = re.compile(r"^(?P<version>[0-9]{1,18})_(?P<name>[A-Za-z0-9][A-Za-z0-9_.\-]*?)(?P<down>\.down)?\.sql$")
"""``0001_add_users.sql`` (up) / ``0001_add_users.down.sql`` (down)."""

NO_TRANSACTION_RE = re.compile(r"^\s*--\s*vigil:no-transaction\b", re.IGNORECASE)


class MigrationFileError(VigilError):
    """A migration file or directory does not follow the convention, or cannot be read."""

    code = "migration-invalid"

    def __init__(self, problems: list[str], *, hint: str | None = None) -> None:
        self.problems = list(problems)
        n = len(self.problems)
        head = f"{n} problem{'s' if n != 1 else ''} with migration files"
        super().__init__(
            head + ":\n" + "\n".join(f"  {p}" for p in self.problems),
            hint=hint
            or "name migrations <version>_<name>.sql with an optional <version>_<name>.down.sql "
            "(see `vigil migrate lint --help`)",
        )


@dataclass(frozen=True)
class Migration:
    """One migration: its up SQL and, when present, its down SQL."""

    version: int
    name: str
    path: Path
    up_sql: str
    down_path: Path | None = None
    down_sql: str | None = None
    no_transaction: bool = False

    @property
    def filename(self) -> str:
        return self.path.name

    @property
    def id(self) -> str:
        """``0001_add_users``: the file name without ``.sql``; what a ledger records."""
        return self.path.name[: -len(".sql")]


@dataclass(frozen=True)
class Statement:
    """One SQL statement of a file: its text (no trailing ``;``) and where it starts."""

    text: str
    line: int
    offset: int = field(default=0, repr=False)


def read_sql_file(path: Path, *, max_bytes: int = MAX_MIGRATION_BYTES) -> str:
    """A migration file's text. Raises :class:`MigrationFileError` (size, encoding, access)."""
    try:
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)
    except FileNotFoundError:
        raise MigrationFileError([f"{path}: file not found"]) from None
    except IsADirectoryError:
        raise MigrationFileError([f"{path}: is a directory, not a .sql file"]) from None
    except PermissionError:
        raise MigrationFileError([f"{path}: permission denied"]) from None
    except OSError as e:
        raise MigrationFileError([f"{path}: cannot read: {e.strerror or e}"]) from None
    return decode_sql(data, str(path), max_bytes=max_bytes)


def decode_sql(data: bytes, where: str, *, max_bytes: int = MAX_MIGRATION_BYTES) -> str:
    if len(data) > max_bytes:
        raise MigrationFileError(
            [f"{where}: larger than {max_bytes // 1024} KiB"],
            hint="split the migration; load bulk data with COPY from a separate job, not a migration file",
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise MigrationFileError([f"{where}: not UTF-8 text (byte {e.start})"], hint="save the file as UTF-8") from None
    if "\x00" in text:
        raise MigrationFileError([f"{where}: contains a NUL byte; a migration is SQL text"])
    return text.removeprefix("\ufeff")


def has_no_transaction(sql: str) -> bool:
    """Whether the leading comment block (before any SQL) holds ``-- vigil:no-transaction``."""
    for line in sql.splitlines():
        s = line.strip()
        if not s:
            continue
        if not s.startswith("--"):
            return False
        if NO_TRANSACTION_RE.match(s):
            return True
    return False


def load_migrations(directory: str | Path) -> list[Migration]:
    """Every migration in ``directory``, ordered by version. Pure file reading, no database.

    Raises :class:`MigrationFileError` listing every misnamed, duplicate, orphan or unreadable file.
    """
    d = Path(directory)
    if not d.exists():
        raise MigrationFileError(
            [f"{d}: directory not found"], hint="create it, or set `migrations.dir` in the spec (relative to the spec file)"
        )
    if not d.is_dir():
        raise MigrationFileError([f"{d}: not a directory"], hint="`migrations.dir` names the directory of .sql files")
    problems: list[str] = []
    ups: dict[int, Path] = {}
    downs: dict[str, Path] = {}
    try:
        entries = sorted(p for p in d.iterdir() if p.name.endswith(".sql"))
    except OSError as e:
        raise MigrationFileError([f"{d}: cannot list: {e.strerror or e}"]) from None
    for p in entries:
        m = FILE_RE.match(p.name)
        if not m or not p.is_file():
            problems.append(
                f"{p}: not a migration file name; expected <version>_<name>.sql or <version>_<name>.down.sql "
                "(like 0001_create_users.sql)"
                if not m
                else f"{p}: not a regular file"
            )
            continue
        if m.group("down"):
            downs[p.name[: -len(".down.sql")]] = p
            continue
        v = int(m.group("version"))
        if v in ups:
            problems.append(f"{p}: version {v} is already used by {ups[v].name}; each migration needs its own version")
            continue
        ups[v] = p
    up_ids = {p.name[: -len(".sql")] for p in ups.values()}
    for mid, p in sorted(downs.items()):
        if mid not in up_ids:
            problems.append(f"{p}: down migration without its up migration {mid}.sql")
    out: list[Migration] = []
    for v in sorted(ups):
        p = ups[v]
        mid = p.name[: -len(".sql")]
        try:
            up = read_sql_file(p)
            dp = downs.get(mid)
            down = read_sql_file(dp) if dp is not None else None
        except MigrationFileError as e:
            problems.extend(e.problems)
            continue
        m = FILE_RE.match(p.name)
        assert m is not None
        out.append(
            Migration(
                version=v,
                name=m.group("name"),
                path=p,
                up_sql=up,
                down_path=dp,
                down_sql=down,
                no_transaction=has_no_transaction(up),
            )
        )
    if problems:
        raise MigrationFileError(problems)
    return out


def split_statements(sql: str) -> list[Statement]:
    """The statements of ``sql`` with their 1-based start lines, split by the PostgreSQL parser.

    Raises ``pglast.parser.ParseError`` for SQL the parser rejects (the linter reports those as
    findings; the runner should lint first).
    """
    out: list[Statement] = []
    for raw in parse_sql(sql):
        start = raw.stmt_location or 0
        length = raw.stmt_len or (len(sql) - start)
        text = sql[start : start + length].strip()
        # stmt_location points at the end of the previous statement's ';': skip leading space/comments
        lead = len(sql[start : start + length]) - len(sql[start : start + length].lstrip())
        out.append(Statement(text=text, line=sql.count("\n", 0, start + lead) + 1, offset=start + lead))
    return out


_SMALL_SQL = 16_000  # below this many characters no statement can nest deep enough to exhaust a normal stack
_PARSE_STACK = 512 * 1024 * 1024  # the big-file parse thread's stack: virtual, touched only as deep as needed
_stack_lock = threading.Lock()


def parse_sql(sql: str) -> Any:
    """pglast.parse_sql, on a thread with a deep stack for big inputs.

    pglast turns the C parse tree into Python objects recursively; a 1 MiB chain like ``1+1+...``
    is ~500,000 levels deep and would overflow a normal 8 MiB stack (a crash, not an exception).
    """
    import pglast

    if len(sql) < _SMALL_SQL:
        return pglast.parse_sql(sql)
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["r"] = pglast.parse_sql(sql)
        except BaseException as e:  # handed back to the caller's thread
            box["e"] = e

    with _stack_lock:
        old = threading.stack_size()
        try:
            threading.stack_size(_PARSE_STACK)
        except (ValueError, RuntimeError):  # pragma: no cover - platforms without settable stacks
            return pglast.parse_sql(sql[: _SMALL_SQL * 4]) if len(sql) <= _SMALL_SQL * 4 else _too_big()
        try:
            t = threading.Thread(target=run, name="vigil-sql-parse", daemon=True)
            t.start()
        finally:
            threading.stack_size(old)
    t.join()
    if "e" in box:
        raise box["e"]
    return box["r"]


def _too_big() -> Any:  # pragma: no cover
    from pglast.parser import ParseError

    raise ParseError("file too large to parse safely on this platform", 0)
