"""Migration files: discovery, ordering, up/down pairing, statement splitting.

The convention is documented in :mod:`vigil.deploy.migrations.spec`. This module only reads files;
it never connects to a database. It is the one place that decides what a valid migrations
directory is (:func:`scan_migrations`: a misnamed file, a duplicate version, a down file without
its up file, an empty or unreadable file), so ``lint``, ``verify`` and ``apply`` agree.
:func:`load_migrations` raises :class:`MigrationFileError` (an input error, exit 2) listing every
problem in the directory at once.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vigil.errors import VigilError

MAX_MIGRATION_BYTES = 1024 * 1024
"""The largest migration file read (1 MiB); larger is an input error: split it, or load data with COPY.
Defined here, not in :mod:`.spec` (which re-exports it), so reading files needs no pydantic: ``vigil
migrate lint`` starts faster."""

FILE_RE = re.compile(r"^(?P<version>[0-9]{1,18})_(?P<name>[A-Za-z0-9][A-Za-z0-9_.\-]*?)(?P<down>\.down)?\.sql$")
"""``0001_add_users.sql`` (up) / ``0001_add_users.down.sql`` (down)."""

NO_TRANSACTION_RE = re.compile(r"^\s*--\s*vigil:no-transaction\b", re.IGNORECASE)


class MigrationFileError(VigilError):
    """A migration file or directory does not follow the convention, or cannot be read."""

    code = "migration-invalid"

    def __init__(self, problems: list[str], *, hint: str | None = None, file_problems: list[FileProblem] | None = None) -> None:
        self.problems = list(problems)
        self.file_problems = list(file_problems or [])
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


@dataclass(frozen=True)
class FileProblem:
    """One file that breaks the convention, and why. ``code`` is stable: ``misnamed``,
    ``not-a-file``, ``duplicate-version``, ``orphan-down``, ``empty`` or ``unreadable``."""

    path: Path
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"

    def to_dict(self) -> dict:
        return {"file": str(self.path), "code": self.code, "message": self.message}


@dataclass(frozen=True)
class Scan:
    """A migrations directory read: the migrations that follow the convention, and every problem."""

    migrations: list[Migration]
    problems: list[FileProblem]


def name_problem(path: Path) -> FileProblem | None:
    """Why a ``*.sql`` file's name is not a migration's name (None: it is one). Pure.

    Any name ending in ``.sql`` in any case is a candidate: ``0003_x.SQL`` is an error, not a file
    silently skipped."""
    if not path.name.endswith(".sql"):
        return FileProblem(path, "misnamed", "a migration file ends in lower-case .sql")
    if not FILE_RE.match(path.name):
        return FileProblem(
            path, "misnamed",
            "not a migration file name; expected <version>_<name>.sql or <version>_<name>.down.sql (like 0001_create_users.sql)",
        )  # fmt: skip
    return None


def is_empty_sql(sql: str) -> bool:
    """Whether ``sql`` holds no statement: only whitespace, ``;`` and comments (``--`` and nested
    ``/* */``). Pure and cheap (no parser): a file the runner would otherwise apply as a no-op."""
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c.isspace() or c == ";":
            i += 1
        elif sql.startswith("--", i):
            j = sql.find("\n", i)
            i = n if j < 0 else j + 1
        elif sql.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if sql.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif sql.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
            if depth:
                return False  # an unterminated comment: the parser says so, not "empty"
        else:
            return False
    return True


def empty_problem(path: Path, sql: str) -> FileProblem | None:
    """An ``empty`` problem when ``sql`` holds no statement (None otherwise). Pure."""
    if is_empty_sql(sql):
        return FileProblem(
            path, "empty",
            "holds no SQL statement (empty, or only comments); a migration that does nothing is a mistake: "
            "write its SQL or delete the file",
        )  # fmt: skip
    return None


def scan_migrations(directory: str | Path) -> Scan:
    """Read a migrations directory: the migrations that follow the convention, ordered by version,
    and every file that does not (misnamed, not a regular file, a duplicate version, a down file
    without its up file, an empty or unreadable file). The ONE place these rules live: ``apply``,
    ``verify`` and ``lint`` all use it.

    Raises :class:`MigrationFileError` only when the directory itself is missing or unreadable."""
    d = Path(directory)
    if not d.exists():
        raise MigrationFileError(
            [f"{d}: directory not found"], hint="create it, or set `migrations.dir` in the spec (relative to the spec file)"
        )
    if not d.is_dir():
        raise MigrationFileError([f"{d}: not a directory"], hint="`migrations.dir` names the directory of .sql files")
    problems: list[FileProblem] = []
    ups: dict[int, Path] = {}
    downs: dict[str, Path] = {}
    try:
        entries = sorted(p for p in d.iterdir() if p.name.lower().endswith(".sql"))
    except OSError as e:
        raise MigrationFileError([f"{d}: cannot list: {e.strerror or e}"]) from None
    for p in entries:
        bad = name_problem(p)
        if bad is None and not p.is_file():
            bad = FileProblem(p, "not-a-file", "not a regular file")
        if bad is not None:
            problems.append(bad)
            continue
        m = FILE_RE.match(p.name)
        assert m is not None
        if m.group("down"):
            downs[p.name[: -len(".down.sql")]] = p
            continue
        v = int(m.group("version"))
        if v in ups:
            problems.append(FileProblem(p, "duplicate-version",
                                        f"version {v} is already used by {ups[v].name}; each migration needs its own version"))
            continue
        ups[v] = p
    up_ids = {p.name[: -len(".sql")] for p in ups.values()}
    for mid, p in sorted(downs.items()):
        if mid not in up_ids:
            problems.append(FileProblem(p, "orphan-down", f"down migration without its up migration {mid}.sql"))
    out: list[Migration] = []
    for v in sorted(ups):
        p = ups[v]
        mid = p.name[: -len(".sql")]
        dp = downs.get(mid)
        texts: dict[Path, str] = {}
        for f in (p, dp):
            if f is None:
                continue
            try:
                texts[f] = read_sql_file(f)
            except MigrationFileError as e:
                problems.extend(FileProblem(f, "unreadable", x.split(": ", 1)[-1]) for x in e.problems)
                continue
            empty = empty_problem(f, texts[f])
            if empty:
                problems.append(empty)
        if p not in texts or (dp is not None and dp not in texts) or any(is_empty_sql(t) for t in texts.values()):
            continue
        m = FILE_RE.match(p.name)
        assert m is not None
        up = texts[p]
        out.append(
            Migration(
                version=v,
                name=m.group("name"),
                path=p,
                up_sql=up,
                down_path=dp,
                down_sql=texts.get(dp) if dp is not None else None,
                no_transaction=has_no_transaction(up),
            )
        )
    problems.sort(key=lambda x: (x.path.name, x.code))
    return Scan(out, problems)


def load_migrations(directory: str | Path) -> list[Migration]:
    """Every migration in ``directory``, ordered by version. Pure file reading, no database.

    Raises :class:`MigrationFileError` listing every problem :func:`scan_migrations` finds
    (misnamed, duplicate, orphan, empty or unreadable files): nothing runs while one is there.
    """
    scan = scan_migrations(directory)
    if scan.problems:
        raise MigrationFileError([str(x) for x in scan.problems], file_problems=scan.problems)
    return scan.migrations


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
