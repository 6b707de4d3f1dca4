"""``vigil migrate lint``: static safety rules over SQL migrations, parsed by PostgreSQL's own parser.

The core (:func:`lint_sql`, :func:`lint_texts`) is pure: text in, findings out, no I/O and no clock
(``today`` is an argument). :func:`lint_paths` and :func:`lint_directory` read files (through the
one set of file rules in :mod:`vigil.deploy.migrations.files`, the same the runner applies) and call
it. The parse tree comes from libpg_query as JSON (:mod:`vigil.deploy.migrations.pgjson`): the
same parser pglast wraps, without building a Python object per node.

Each migration is classified:

* ``expand``: additive; the running app version keeps working (new table, nullable column,
  concurrent index, relaxed constraint).
* ``contract``: removes, renames or tightens something the running app may use (drop, rename, type
  change, NOT NULL, new constraint, required column, dropped default, moved schema). A migration that
  mixes both is a ``contract`` and its ``why`` says so: ship the expand part before the code and the
  contract part after it.
* ``data-dependent``: its effect or duration depends on the rows present (UPDATE, DELETE,
  INSERT ... SELECT, CREATE TABLE AS, VALIDATE CONSTRAINT, DO blocks).
* ``unknown``: the file did not parse.

When a directory is linted in order, what earlier migrations declared is remembered
(:class:`LintContext`): which columns are NOT NULL, which are unique, which tables hold one row,
which CHECK constraints prove NOT NULL. A rule that depends on such a fact and cannot see it
assumes the risky case (the table is big, the column is NOT NULL) and says so.

Rules and their fixes are in :mod:`vigil.deploy.migrations.rules`.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as _dt
import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from vigil.deploy.migrations import pgjson
from vigil.deploy.migrations.pgjson import const, names, node, object_name, rel, relkey, type_names, type_sql
from vigil.deploy.migrations.rules import RULES, LintRule

if TYPE_CHECKING:
    from vigil.deploy.migrations.files import FileProblem, Migration
    from vigil.deploy.migrations.spec import MigrationsSpec, Suppression

CLASSES = ("expand", "contract", "data-dependent", "unknown")

# Functions whose result differs per row: a column default calling one rewrites the table (PG 11+).
VOLATILE_FUNCTIONS = frozenset(
    {
        "random", "random_normal", "setseed", "gen_random_uuid", "uuid_generate_v1", "uuid_generate_v1mc",
        "uuid_generate_v4", "uuidv4", "uuidv7", "gen_random_bytes", "clock_timestamp", "timeofday",
        "nextval", "txid_current", "pg_current_xact_id", "currval", "lastval",
    }
)  # fmt: skip
# Functions known to be STABLE or IMMUTABLE: evaluated once for ADD COLUMN ... DEFAULT, no rewrite.
NONVOLATILE_FUNCTIONS = frozenset(
    {
        "now", "transaction_timestamp", "statement_timestamp", "current_setting", "lower", "upper",
        "btrim", "trim", "ltrim", "rtrim", "length", "concat", "concat_ws", "substr", "substring",
        "replace", "md5", "abs", "round", "floor", "ceil", "ceiling", "to_char", "to_date",
        "to_timestamp", "to_number", "date_trunc", "date_part", "make_interval", "make_date",
        "make_timestamp", "make_timestamptz", "timezone", "jsonb_build_object", "json_build_object",
        "jsonb_build_array", "json_build_array", "to_jsonb", "to_json", "array_fill", "int4", "int8",
        "numeric", "text", "left", "right", "repeat", "lpad", "rpad", "format", "power", "sqrt",
        "least", "greatest", "coalesce", "nullif", "current_date", "localtimestamp", "array_length",
        "jsonb", "inet", "cidr", "interval", "date", "age", "current_database", "current_schema",
        "current_user", "session_user", "pg_backend_pid",
    }
)  # fmt: skip
SERIAL_TYPES = frozenset({"serial", "serial2", "serial4", "serial8", "smallserial", "bigserial"})
TIMEOUTS = ("lock_timeout", "statement_timeout")
CATALOG_SCHEMAS = frozenset({"pg_catalog", "information_schema"})

_DIRECTIVE = re.compile(r"^(?:--|/\*)\s*vigil:([A-Za-z_-]*)(.*?)(?:\*/)?\s*$", re.DOTALL)
_KV = re.compile(r"""\s*([A-Za-z_]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|(\S+))""")
_CREATE_INDEX = re.compile(r"(?is)(create\s+(?:unique\s+)?index)(?=\s)")
_NEWLINE = re.compile("\n")
_SMALL_SQL = 16_000  # statements re-parsed with pglast for a rewrite in a fix must be this small

# file problem codes (vigil.deploy.migrations.files.FileProblem.code) -> rule ids
FILE_PROBLEM_RULES = {
    "misnamed": "misnamed-file",
    "not-a-file": "file-invalid",
    "duplicate-version": "duplicate-version",
    "orphan-down": "orphan-down",
    "empty": "empty-migration",
    "unreadable": "file-invalid",
}


# --- results ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LintFinding:
    """One problem: where, which rule, how bad, why, and the safe rewrite."""

    file: str
    line: int
    rule: str
    severity: str
    message: str
    fix: str
    column: int = 1

    def to_dict(self) -> dict:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "rule": self.rule,
            "severity": self.severity,
            "message": self.message,
            "fix": self.fix,
        }

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.severity} {self.rule}: {self.message}"


@dataclass(frozen=True)
class MigrationClass:
    file: str
    cls: str
    why: str
    statements: int
    transaction: bool

    def to_dict(self) -> dict:
        return {"file": self.file, "class": self.cls, "why": self.why, "statements": self.statements, "transaction": self.transaction}


@dataclass(frozen=True)
class Suppressed:
    """A finding that a suppression accepted, kept for the record."""

    finding: LintFinding
    reason: str
    expires: _dt.date
    source: str  # "inline <file>:<line>" or "spec suppressions[i]"

    def to_dict(self) -> dict:
        d = self.finding.to_dict()
        d.update(reason=self.reason, expires=self.expires.isoformat(), source=self.source)
        return d


@dataclass
class LintReport:
    findings: list[LintFinding] = field(default_factory=list)
    migrations: list[MigrationClass] = field(default_factory=list)
    suppressed: list[Suppressed] = field(default_factory=list)
    statements: int = 0

    def count(self, severity: str) -> int:
        return sum(1 for f in self.findings if f.severity == severity)

    @property
    def ok(self) -> bool:
        """No finding of severity ``error``."""
        return self.count("error") == 0

    def to_dict(self) -> dict:
        return {
            "ok": self.ok,
            "findings": [f.to_dict() for f in self.findings],
            "migrations": [m.to_dict() for m in self.migrations],
            "suppressed": [s.to_dict() for s in self.suppressed],
            "summary": {
                "files": len(self.migrations),
                "statements": self.statements,
                "errors": self.count("error"),
                "warnings": self.count("warning"),
                "info": self.count("info"),
                "suppressed": len(self.suppressed),
            },
        }


# --- configuration --------------------------------------------------------------------------------


@dataclass(frozen=True)
class LintConfig:
    """What the linter needs from the spec, as plain data."""

    disabled: frozenset[str] = frozenset()
    severity: Mapping[str, str] = field(default_factory=dict)
    enabled: frozenset[str] = frozenset()
    """Opt-in rules turned on (the ``prefer-*`` family): ``--enable``, or a severity in the spec."""
    runner_lock_timeout: bool = False
    """The runner sets lock_timeout before each migration (``migrations.lock_timeout``)."""
    runner_statement_timeout: bool = False
    suppressions: tuple[Suppression, ...] = ()
    today: _dt.date | None = None
    """For suppression expiry; None: nothing expires (tests, libraries that do not care)."""

    @classmethod
    def from_spec(
        cls, spec: MigrationsSpec | None, *, today: _dt.date | None = None, enable: Iterable[str] = ()
    ) -> LintConfig:
        enable = frozenset(enable)
        if spec is None:
            return cls(today=today, enabled=enable)
        return cls(
            disabled=frozenset(spec.lint.disable),
            severity=dict(spec.lint.severity),
            enabled=enable | {r for r in spec.lint.severity if r in RULES and RULES[r].opt_in},
            runner_lock_timeout=spec.lock_timeout is not None,
            runner_statement_timeout=spec.statement_timeout is not None,
            suppressions=tuple(spec.suppressions),
            today=today,
        )

    def severity_of(self, rule: str) -> str:
        return self.severity.get(rule) or RULES[rule].severity

    def runs(self, rule: str) -> bool:
        """Whether ``rule`` runs: not disabled, and turned on if it is opt-in."""
        r = RULES[rule]
        return rule not in self.disabled and (not r.opt_in or rule in self.enabled)


@dataclass
class TableFacts:
    """What the migrations linted so far declared about one table."""

    columns: dict[str, bool] = field(default_factory=dict)
    """column -> NOT NULL (a column missing here is unknown to lint)."""
    unique: set[str] = field(default_factory=set)
    """columns unique on their own (PRIMARY KEY, UNIQUE, a unique index on the bare column)."""
    singleton: bool = False
    """at most one row, by a constraint (CHECK (id = 1) on a unique id, a unique index on a constant)."""
    pinned: set[str] = field(default_factory=set)
    """columns a CHECK pins to one constant value (CHECK (id = 1)); with ``unique``: one row."""
    rows: int | None = None
    """rows the migrations put in it, when lint saw the table created and every INSERT into it
    since has a known row count (``VALUES`` lists, ``SELECT ... LIMIT 1``, a ``SELECT`` without
    ``FROM``); None: unknown (created elsewhere, or filled from a query)."""
    seeded_in: str = ""
    """the file that brought ``rows`` to its value, for messages."""

    @property
    def one_row(self) -> bool:
        return self.singleton or self.rows == 1


@dataclass
class LintContext:
    """State carried from one migration to the next when a directory is linted in order."""

    validated_not_null: set[tuple[str, str]] = field(default_factory=set)
    """(table, column) pairs proven NOT NULL by a validated CHECK (col IS NOT NULL)."""
    not_null_checks: dict[tuple[str, str], str] = field(default_factory=dict)
    """(table, constraint name) -> column, for CHECK (col IS NOT NULL) constraints added NOT VALID."""
    tables: dict[str, TableFacts] = field(default_factory=dict)
    """table name (no schema) -> what earlier statements declared about it."""

    def table(self, key: str) -> TableFacts:
        t = self.tables.get(key)
        if t is None:
            t = self.tables[key] = TableFacts()
        return t


# --- entry points ---------------------------------------------------------------------------------


def lint_sql(sql: str, file: str = "<sql>", config: LintConfig | None = None, context: LintContext | None = None) -> LintReport:
    """Lint one migration's SQL text. Never raises for any input text."""
    return lint_texts([(file, sql)], config, context)


def lint_texts(
    files: Iterable[tuple[str, str]],
    config: LintConfig | None = None,
    context: LintContext | None = None,
    *,
    problems: Iterable[LintFinding] = (),
    jobs: int | None = None,
) -> LintReport:
    """Lint migrations given as ``(display name, SQL text)`` in apply order. Pure.

    ``problems`` are findings about the files themselves (from :func:`file_findings`), merged in.
    Each file is parsed and checked on its own, in ``jobs`` worker processes when that pays
    (None: decide by the amount of SQL, see :func:`plan_jobs`); what one file tells about the
    schema (NOT NULL columns, unique keys, one-row tables) reaches the later files through an
    ordered fold, so the report is the same for any ``jobs``."""
    config = config or LintConfig()
    context = context if context is not None else LintContext()
    report = LintReport()
    report.findings.extend(problems)
    spec = _SpecState()
    for result in _run_files(list(files), config, jobs):
        _finish_file(result, config, context, report, spec)
    for i in sorted(spec.matched):
        if not spec.used.get(i) and i not in spec.expired_reported and "suppression-unused" not in config.disabled:
            s = config.suppressions[i]
            f = _first_file_matching(report, s.file)
            report.findings.append(
                LintFinding(
                    f or s.file, 1, "suppression-unused", config.severity_of("suppression-unused"),
                    f"spec suppressions[{i}] ({s.rule} for {s.file}) matched no finding. {RULES['suppression-unused'].why}",
                    RULES["suppression-unused"].fix + f" Delete suppressions[{i}] from the spec.",
                )
            )  # fmt: skip
    order = {m.file: i for i, m in enumerate(report.migrations)}
    report.findings.sort(key=lambda f: (order.get(f.file, len(order)), f.file, f.line, f.column, f.rule))
    return report


def lint_migrations(
    migrations: Sequence[Migration], config: LintConfig | None = None, *, display: Any = None, jobs: int | None = 1
) -> LintReport:
    """Lint loaded migrations (their up SQL) in order. ``display(path) -> str`` names files in findings.
    In this process by default (``jobs=1``): callers such as ``verify`` hold connections and threads."""
    show = display or str
    return lint_texts(((show(m.path), m.up_sql) for m in migrations), config, jobs=jobs)


def file_findings(problems: Iterable[FileProblem], config: LintConfig | None = None, *, display: Any = None) -> list[LintFinding]:
    """The file rules' problems (misnamed, duplicate version, orphan down file, empty, unreadable) as
    findings: the same problems that make ``vigil migrate apply`` refuse a directory."""
    config = config or LintConfig()
    show = display or str
    out = []
    for p in problems:
        rule = FILE_PROBLEM_RULES.get(p.code, "file-invalid")
        r = RULES[rule]
        out.append(LintFinding(show(p.path), 1, rule, config.severity_of(rule), f"{p.message}. {r.why}", r.fix))
    return out


def lint_directory(
    directory: str | Path, config: LintConfig | None = None, *, display: Any = None, jobs: int | None = None
) -> LintReport:
    """Lint a migrations directory the way the runner sees it: every up file in version order, and
    every problem :func:`vigil.deploy.migrations.files.scan_migrations` finds (the runner refuses
    the directory for any of them) as an error finding. A misnamed or duplicate up file is still
    linted, after the others. Raises ``MigrationFileError`` only when the directory itself is missing."""
    texts, problems = _directory(Path(directory), config, display or str)
    return lint_texts(texts, config, problems=problems, jobs=jobs)


def lint_paths(
    paths: Sequence[str | Path], config: LintConfig | None = None, *, display: Any = None, jobs: int | None = None
) -> LintReport:
    """Lint files and directories. A directory is linted as :func:`lint_directory` does; a file named
    explicitly is linted whatever its name, with the file rules that apply to one file (its name,
    empty, unreadable). Raises ``FileNotFoundError`` for a path that does not exist (the CLI reports
    it as a usage error)."""
    from vigil.deploy.migrations.files import MigrationFileError, empty_problem, name_problem, read_sql_file

    show = display or str
    texts: list[tuple[str, str]] = []
    problems: list[LintFinding] = []
    for p in map(Path, paths):
        if p.is_dir():
            t, f = _directory(p, config, show)
            texts.extend(t)
            problems.extend(f)
        elif p.exists():
            bad = name_problem(p)
            if bad is not None:
                problems.extend(file_findings([bad], config, display=show))
            try:
                text = read_sql_file(p)
            except MigrationFileError as e:
                texts.append((show(p), _Unreadable("; ".join(x.split(": ", 1)[-1] for x in e.problems))))
                continue
            empty = empty_problem(p, text)
            if empty is not None:
                problems.extend(file_findings([empty], config, display=show))
            texts.append((show(p), text))
        else:
            raise FileNotFoundError(str(p))
    return lint_texts(texts, config, problems=problems, jobs=jobs)


def _directory(d: Path, config: LintConfig | None, show: Callable[[Path], str]) -> tuple[list[tuple[str, str]], list[LintFinding]]:
    """Every up file of a migrations directory to lint, in version order, and the scan's problems.

    Besides the migrations the scan accepts, up files it refused for their name, their version or
    their down file are linted too: their SQL gets checked while the file problem is reported."""
    from vigil.deploy.migrations.files import MigrationFileError, read_sql_file, scan_migrations

    scan = scan_migrations(d)
    known = {m.path: m.up_sql for m in scan.migrations}
    unreadable = {p.path for p in scan.problems if p.code in ("empty", "unreadable", "not-a-file")}
    try:
        candidates = [
            p for p in d.iterdir()
            if p.name.lower().endswith(".sql") and not p.name.lower().endswith(".down.sql")
            and p not in known and p not in unreadable and p.is_file()
        ]  # fmt: skip
    except OSError:  # pragma: no cover - scan_migrations listed it a moment ago
        candidates = []
    texts: list[tuple[str, str]] = []
    for p in sorted([*known, *candidates], key=_order_key):
        if p in known:
            texts.append((show(p), known[p]))
            continue
        try:
            texts.append((show(p), read_sql_file(p)))
        except MigrationFileError:  # changed under us; the next run reports it
            continue
    return texts, file_findings(scan.problems, config, display=show)


class _Unreadable(str):
    """A placeholder 'text' for a file that could not be read; the message is the reason."""


def _order_key(p: Path) -> tuple:
    from vigil.deploy.migrations.files import FILE_RE

    m = FILE_RE.match(p.name)
    return (0, int(m.group("version")), p.name) if m else (1, 0, p.name)


def _first_file_matching(report: LintReport, pattern: str) -> str | None:
    for m in report.migrations:
        if _matches(pattern, m.file):
            return m.file
    return None


def _matches(pattern: str, file: str) -> bool:
    return fnmatch.fnmatchcase(Path(file).name, pattern) or fnmatch.fnmatchcase(file.replace("\\", "/"), pattern)


_PLAIN_IDENT = re.compile(r"[a-z_][a-z0-9_$]*")


def _q(ident: str) -> str:
    return ident if _PLAIN_IDENT.fullmatch(ident) else '"' + ident.replace('"', '""') + '"'


def _qrel(name: str) -> str:
    return ".".join(_q(p) for p in name.split("."))


# --- the per-file linter ----------------------------------------------------------------------------


@dataclass
class _Directive:
    line: int
    rules: tuple[str, ...]
    reason: str
    expires: _dt.date
    targets: frozenset[int] | None  # statement indexes; None: the whole file
    used: int = 0


class _Unit:
    """A statement and how its byte offsets map onto the file's characters."""

    __slots__ = ("stmt", "base", "offsets", "start", "stop")

    def __init__(self, stmt: pgjson.Stmt, base: int, offsets: pgjson.Offsets, end: int) -> None:
        self.stmt = stmt
        self.base = base  # character offset of the text the parser saw (non-zero only for salvaged pieces)
        self.offsets = offsets
        self.start = base + offsets.char(stmt.location)
        self.stop = base + offsets.char(stmt.location + stmt.length) if stmt.length else end


# objects whose DROP followed, later in the same transactional file, by a CREATE of the same name
# is a replacement, not a removal (kind -> what the messages call it)
_REPLACEABLE = {"view": "view", "matview": "materialized view", "trigger": "trigger", "function": "function",
                "procedure": "procedure", "policy": "policy", "rule": "rule"}  # fmt: skip


@dataclass
class _FileResult:
    """What linting one file on its own gives: findings, classification entries, and the ordered
    operations on the cross-file context (:class:`LintContext`) still to be folded in. Picklable."""

    file: str
    meta: list[LintFinding]
    raw: list[tuple[int, LintFinding]]
    classes: list[tuple[str, str] | int]  # an int: the class comes from that operation
    ops: list[tuple]
    directives: list[_Directive]
    statements: int
    parsed: bool
    transaction: bool


class _FileLinter:
    """Lints one file without reading or changing anything shared: every use of what earlier
    files declared is recorded as an operation (:meth:`op`) that :class:`_Fold` applies in order."""

    def __init__(self, file: str, sql: str, config: LintConfig) -> None:
        self.file = file
        self.sql = sql
        self.config = config
        self.raw: list[tuple[int, LintFinding]] = []  # (statement index, finding) before suppressions
        self.meta: list[LintFinding] = []  # findings about the file or its directives (never suppressed)
        self.classes: list[tuple[str, str] | int] = []
        self.ops: list[tuple] = []
        self.created: set[str] = set()  # tables (and views, sequences) created in this file
        self.created_types: set[str] = set()
        self.new_columns: set[tuple[str, str]] = set()  # (table, column) added in this file
        self.new_constraints: set[tuple[str, str]] = set()  # (table, constraint) added in this file
        self.recreated: dict[tuple[str, str], int] = {}  # (kind, name) -> last statement index creating it
        self.timeouts_set = dict.fromkeys(TIMEOUTS, False)
        self.timeout_reported = dict.fromkeys(TIMEOUTS, False)
        self.no_transaction = False
        self.mixed_reported = False
        self.stmt_index = 0
        self.unit: _Unit | None = None
        self._ast: Any = None  # the current statement re-parsed by pglast, for rewrites in fixes
        self._positions = 0
        self._nl: list[int] | None = None
        self.prefer = any(config.runs(r) for r in ("prefer-text", "prefer-timestamptz", "prefer-bigint", "prefer-identity"))

    # positions
    def pos(self, offset: int | None) -> tuple[int, int]:
        """(line, column), 1-based, of a character offset of the file (None: the statement's start)."""
        if offset is None or offset < 0:
            offset = self.unit.start if self.unit is not None else 0
        offset = max(0, min(offset, len(self.sql)))
        self._positions += 1
        if self._positions <= 4:  # a few findings: counting is cheaper than an index
            line = self.sql.count("\n", 0, offset) + 1
            return line, offset - (self.sql.rfind("\n", 0, offset) + 1) + 1
        if self._nl is None:
            self._nl = [m.start() for m in _NEWLINE.finditer(self.sql)]
        i = bisect.bisect_left(self._nl, offset)
        return i + 1, offset - (self._nl[i - 1] + 1 if i else 0) + 1

    def at(self, location: Any) -> int | None:
        """A node's byte location -> a character offset of the file (None when it has none)."""
        if not isinstance(location, int) or location < 0 or self.unit is None:
            return None
        return self.unit.base + self.unit.offsets.char(location)

    def add(self, rule: str, message: str, fix: str | None = None, *, at: int | None = None, meta: bool = False) -> None:
        """A finding for the current statement; ``at`` is a node's byte location (from the parse tree)."""
        if not self.config.runs(rule):
            return
        r: LintRule = RULES[rule]
        line, col = self.pos(self.at(at) if at is not None else None)
        f = LintFinding(self.file, line, rule, self.config.severity_of(rule), f"{message}. {r.why}", fix or r.fix, col)
        if meta or r.locked:
            self.meta.append(f)
        else:
            self.raw.append((self.stmt_index, f))

    def add_at_char(self, rule: str, message: str, offset: int | None) -> None:
        if not self.config.runs(rule):
            return
        r = RULES[rule]
        line, col = self.pos(offset)
        self.meta.append(LintFinding(self.file, line, rule, self.config.severity_of(rule), f"{message}. {r.why}", r.fix, col))

    def classify(self, cls: str, why: str) -> None:
        self.classes.append((cls, why))

    def op(self, kind: str, *args: Any, classifies: bool = False) -> None:
        """Record an operation on the cross-file context, for :class:`_Fold` (``classifies``: the
        statement's class comes from it, in this place of the order)."""
        if classifies:
            self.classes.append(len(self.ops))
        self.ops.append((kind, self.stmt_index, *args))

    def finding(self, rule: str, message: str, fix: str | None = None, *, at: int | None = None) -> LintFinding | None:
        """A finding for the current statement that an operation may or may not emit (None: the rule is off)."""
        if not self.config.runs(rule):
            return None
        r = RULES[rule]
        line, col = self.pos(self.at(at) if at is not None else None)
        return LintFinding(self.file, line, rule, self.config.severity_of(rule), f"{message}. {r.why}", fix or r.fix, col)

    def deparse(self, pick: Callable[[Any], Any]) -> str | None:
        """SQL for a piece of the current statement, by pglast's deparser: ``pick(stmt)`` gets the
        statement as pglast AST, may change it, and returns the node to print. None when the
        statement is too large or anything fails (a fix then goes without its rewrite)."""
        if self.unit is None:
            return None
        try:
            if self._ast is None:
                text = self.sql[self.unit.start : self.unit.stop]
                if len(text) > _SMALL_SQL:
                    return None
                import pglast

                (raw,) = pglast.parse_sql(text)
                self._ast = raw.stmt
            from pglast.stream import RawStream

            out = RawStream()(pick(self._ast))
            return out if len(out) <= 2000 else None
        except Exception:  # RecursionError included: a rewrite in a fix is best effort
            return None
        finally:
            self._ast = None  # pick may have changed it

    def _concurrently_text(self) -> str | None:
        """The current CREATE INDEX as written, with CONCURRENTLY inserted (cheaper than a deparse)."""
        if self.unit is None:
            return None
        text = self.sql[self.unit.start : self.unit.stop]
        if len(text) > 2000 or not _CREATE_INDEX.match(text):
            return None
        text = _one_line(text)
        m = _CREATE_INDEX.match(text)
        if m is None:
            return None
        return text[: m.end(1)] + " CONCURRENTLY" + text[m.end(1) :]

    # the run
    def run(self) -> _FileResult:
        if isinstance(self.sql, _Unreadable):
            self.add_at_char("file-invalid", f"cannot read the file: {str.__str__(self.sql)}", 0)
            return self._result(0, parsed=False, directives=[])
        self.no_transaction = _has_no_transaction(self.sql)
        try:
            whole = pgjson.Offsets(self.sql)
            units = [_Unit(s, 0, whole, len(self.sql)) for s in pgjson.parse(self.sql)]
            parsed = True
        except Exception as e:
            units, parsed = self._salvage(e), False
        self._prescan(units)
        for i, u in enumerate(units):
            self.stmt_index = i
            self.unit = u
            try:
                self._statement(u.stmt.kind, u.stmt.body)
            except RecursionError:  # pragma: no cover - the walkers are iterative; belt and braces
                pass
        self.unit = None
        starts = [u.start for u in units]
        directives = self._directives(starts) if starts and "vigil:" in self.sql else []
        return self._result(len(units), parsed=parsed, directives=directives)

    def _result(self, n: int, *, parsed: bool, directives: list[_Directive]) -> _FileResult:
        return _FileResult(
            self.file, self.meta, self.raw, self.classes, self.ops, directives, n, parsed, not self.no_transaction
        )

    def _salvage(self, first: BaseException) -> list[_Unit]:
        """After a parse error: split on the scanner's ';' tokens and parse each statement alone,
        so one typo does not hide the findings of every other statement."""
        from pglast import parser

        try:
            tokens = parser.scan(self.sql)
        except Exception:
            tokens = None
        if tokens is None:
            msg, where = _parse_error(first)
            self.add_at_char("parse-error", f"PostgreSQL cannot parse this: {msg}", where)
            return []
        segments: list[tuple[int, int]] = []
        start = None
        for t in tokens:
            if t.name in ("SQL_COMMENT", "C_COMMENT"):
                continue
            if start is None:
                start = t.start
            if t.name == "ASCII_59":
                segments.append((start, t.end + 1))
                start = None
        if start is not None:
            segments.append((start, len(self.sql)))
        units: list[_Unit] = []
        failed = False
        for a, b in segments:
            piece = self.sql[a:b]
            try:
                stmts = pgjson.parse(piece)
            except Exception as e:
                failed = True
                msg, where = _parse_error(e)
                self.add_at_char("parse-error", f"PostgreSQL cannot parse this statement: {msg}", a + (where or 0))
                continue
            offsets = pgjson.Offsets(piece)
            units.extend(_Unit(s, a, offsets, b) for s in stmts)
        if not failed:  # the whole text failed but no piece did
            msg, where = _parse_error(first)
            self.add_at_char("parse-error", f"PostgreSQL cannot parse this: {msg}", where)
        return units

    def _prescan(self, units: list[_Unit]) -> None:
        """What this file creates, and where: a DROP followed by a CREATE of the same object is a
        replacement (in a transaction, no session ever sees it missing)."""
        for i, u in enumerate(units):
            k, b = u.stmt.kind, u.stmt.body
            key: tuple[str, str] | None = None
            if k == "CreateTrigStmt":
                key = ("trigger", f"{relkey(b.get('relation'))}.{b.get('trigname', '')}")
            elif k == "CreateFunctionStmt":
                key = ("procedure" if b.get("is_procedure") else "function", names(b.get("funcname", [])).rsplit(".", 1)[-1])
            elif k == "ViewStmt":
                key = ("view", relkey(b.get("view")))
            elif k == "CreateTableAsStmt" and b.get("objtype") == "OBJECT_MATVIEW":
                key = ("matview", relkey((b.get("into") or {}).get("rel")))
            elif k == "CreatePolicyStmt":
                key = ("policy", f"{relkey(b.get('table'))}.{b.get('policy_name', '')}")
            elif k == "RuleStmt":
                key = ("rule", f"{relkey(b.get('relation'))}.{b.get('rulename', '')}")
            if key is not None:
                self.recreated[key] = i

    def replaced_later(self, kind: str, name: str) -> bool:
        return not self.no_transaction and self.recreated.get((kind, name), -1) > self.stmt_index

    def meta_finding(self, rule: str, line: int, message: str, fix: str | None = None) -> None:
        if rule in self.config.disabled:
            return
        r = RULES[rule]
        self.meta.append(LintFinding(self.file, line, rule, self.config.severity_of(rule), f"{message}. {r.why}", fix or r.fix))

    def _directives(self, starts: list[int]) -> list[_Directive]:
        from pglast import parser

        try:
            tokens = parser.scan(self.sql)
        except Exception:  # pragma: no cover - scanning what parsed cannot fail
            return []
        n = len(starts)
        last_end = [-1] * n  # exclusive end of each statement's last real token
        comments = []
        for t in tokens:
            if t.name in ("SQL_COMMENT", "C_COMMENT"):
                comments.append(t)
                continue
            k = bisect.bisect_right(starts, t.start) - 1
            if k >= 0:
                last_end[k] = max(last_end[k], t.end + 1)
        leading = True
        out: list[_Directive] = []
        first_stmt = starts[0] if starts else len(self.sql)
        for t in comments:
            text = self.sql[t.start : t.end + 1]
            m = _DIRECTIVE.match(text.strip())
            if not m:
                continue
            line = self.pos(t.start)[0]
            kind, rest = m.group(1).lower(), m.group(2)
            leading = t.start < first_stmt
            if kind == "no-transaction":
                if not leading:
                    self.meta_finding(
                        "suppression-invalid", line,
                        "`vigil:no-transaction` is only read in the comment lines before the first statement; here it does nothing",
                        "Move `-- vigil:no-transaction` to the first line of the file.",
                    )  # fmt: skip
                continue
            if kind not in ("ignore", "ignore-file"):
                self.meta_finding(
                    "suppression-invalid", line,
                    f"unknown directive `vigil:{kind}` (known: vigil:ignore, vigil:ignore-file, vigil:no-transaction)",
                )  # fmt: skip
                continue
            d = self._parse_directive(rest, line)
            if d is None:
                continue
            if kind == "ignore-file":
                d.targets = None
            else:
                k = bisect.bisect_right(starts, t.start) - 1
                if k >= 0 and t.start < last_end[k]:
                    target = k  # inside the statement
                elif k >= 0 and "\n" not in self.sql[last_end[k] : t.start]:
                    target = k  # after the statement, on its last line
                else:
                    target = k + 1
                if target >= n:
                    self.meta_finding(
                        "suppression-invalid", line,
                        "`vigil:ignore` is followed by no statement; it applies to the next statement, or to the "
                        "statement on the same line",
                    )  # fmt: skip
                    continue
                d.targets = frozenset({target})
            out.append(d)
        return out

    def _parse_directive(self, rest: str, line: int) -> _Directive | None:
        rest = rest.strip()
        head, _, tail = rest.partition(" ")
        if "=" in head:
            head, tail = "", rest
        rules = tuple(r.strip() for r in head.split(",") if r.strip())
        problems: list[str] = []
        if not rules:
            problems.append("name the rule(s) to ignore")
        for r in rules:
            if r not in RULES:
                import difflib

                close = difflib.get_close_matches(r, sorted(RULES), n=1)
                problems.append(f"unknown rule {r!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
            elif RULES[r].locked:
                problems.append(f"rule {r!r} cannot be suppressed")
        kv: dict[str, str] = {}
        pos = 0
        tail = tail.strip()
        while pos < len(tail):
            m = _KV.match(tail, pos)
            if not m:
                problems.append(f"cannot read {tail[pos:pos + 40]!r}; write key=\"value\" pairs")
                break
            key = m.group(1).lower()
            val = next(g for g in (m.group(2), m.group(3), m.group(4)) if g is not None)
            if key not in ("reason", "expires"):
                problems.append(f"unknown key {key!r} (use reason= and expires=)")
            kv[key] = val
            pos = m.end()
            while pos < len(tail) and tail[pos].isspace():
                pos += 1
        reason = kv.get("reason", "").strip()
        if len(reason) < 3:
            problems.append('a reason is required: reason="why this is safe"')
        expires: _dt.date | None = None
        if "expires" not in kv:
            problems.append("an expiry is required: expires=YYYY-MM-DD")
        else:
            try:
                expires = _dt.date.fromisoformat(kv["expires"])
            except ValueError:
                problems.append(f"expires must be a date YYYY-MM-DD, got {kv['expires']!r}")
        if problems:
            self.meta_finding("suppression-invalid", line, "malformed `vigil:ignore`: " + "; ".join(problems))
            return None
        assert expires is not None
        if self.config.today is not None and expires < self.config.today:
            self.meta_finding(
                "suppression-expired", line,
                f"`vigil:ignore {','.join(rules)}` (reason: {reason!r}) expired on {expires.isoformat()}, so it no longer suppresses",
            )  # fmt: skip
            return None
        return _Directive(line, rules, reason, expires, frozenset())

    # statements
    def _statement(self, kind: str, s: dict) -> None:
        handler = getattr(self, "_s_" + kind, None)
        if self.no_transaction and not self.mixed_reported and kind not in _NO_TRANSACTION_KINDS:
            if not (kind == "AlterTableStmt" and _only_concurrent_detach(s)):
                self._mixed(kind)
        if handler is not None:
            handler(s)
        elif kind in _EXPAND_KINDS:
            self.classify("expand", _EXPAND_KINDS[kind])
        elif kind == "DoStmt":
            self.classify("data-dependent", "a DO block (its effect is opaque to lint)")

    def _mixed(self, what: str) -> None:
        self.mixed_reported = True
        self.add("no-transaction-mixed", f"this `vigil:no-transaction` migration also runs a {_kind_text(what)}")

    def _locking(self, what: str) -> None:
        """The statement takes a lock on an existing table: timeouts must be in place."""
        runner = {"lock_timeout": self.config.runner_lock_timeout, "statement_timeout": self.config.runner_statement_timeout}
        for t in TIMEOUTS:
            if self.timeouts_set[t] or runner[t] or self.timeout_reported[t]:
                continue
            self.timeout_reported[t] = True
            rule = "missing-" + t.replace("_", "-")
            default = "'5s'" if t == "lock_timeout" else "'15min'"
            self.add(
                rule,
                f"{what} locks an existing table and no {t} is set before it",
                f"Add `SET {t} = {default};` at the top of the file"
                + (" (SET LOCAL does nothing outside a transaction)" if self.no_transaction else "")
                + f", or set `migrations.{t}` in the spec so the runner sets it.",
            )

    def _in_transaction(self, what: str, why: str = "cannot run inside a transaction block") -> None:
        if not self.no_transaction:
            self.add(
                "concurrently-in-transaction", f"{what} {why}, and this migration runs in one",
                "Move it to its own migration file whose first line is `-- vigil:no-transaction`.",
            )  # fmt: skip

    def _existing(self, rv: Any) -> bool:
        """The relation was not created in this file (so it may be big and in use)."""
        return relkey(rv) not in self.created

    # settings and transactions
    def _s_VariableSetStmt(self, s: dict) -> None:
        name = (s.get("name") or "").lower()
        if name not in TIMEOUTS:
            return
        on = False
        if s.get("kind") == "VAR_SET_VALUE" and s.get("args"):
            _, val = const(s["args"][0])
            on = str(val).strip().lower() not in ("0", "", "none", "0ms", "0s", "0min")
        if s.get("is_local") and self.no_transaction:
            on = False  # SET LOCAL outside a transaction block has no effect
        self.timeouts_set[name] = on

    def _s_TransactionStmt(self, s: dict) -> None:
        kind = str(s.get("kind", "")).removeprefix("TRANS_STMT_").replace("_", " ")
        self.add("explicit-transaction", f"{kind} inside a migration file")

    # indexes
    def _s_IndexStmt(self, s: dict) -> None:
        table = rel(s.get("relation"))
        key = relkey(s.get("relation"))
        idx = s.get("idxname") or "(unnamed)"
        if s.get("unique") and not s.get("whereClause"):
            params = s.get("indexParams") or []
            if len(params) == 1:
                _, p = node(params[0])
                if p.get("name"):
                    self.op("unique", key, p["name"])
                elif p.get("expr") is not None and const(p["expr"])[0]:
                    self.op("singleton", key)  # a unique index on a constant: one row at most
        if s.get("concurrent"):
            self.classify("expand", f"creates index {idx} concurrently")
            self._in_transaction(f"CREATE INDEX CONCURRENTLY {idx}")
            return
        self.classify("expand", f"creates index {idx}")
        if self.no_transaction and not self.mixed_reported:
            self._mixed("IndexStmt")
        if key in self.created:
            return
        self._locking(f"CREATE INDEX {idx}")

        rewrite = self._concurrently_text()
        if rewrite is None:

            def concurrently(stmt: Any) -> Any:
                stmt.concurrent = True
                return stmt

            rewrite = self.deparse(concurrently)
        self.add(
            "index-not-concurrent",
            f"CREATE {'UNIQUE ' if s.get('unique') else ''}INDEX {idx} on existing table {table} without CONCURRENTLY",
            RULES["index-not-concurrent"].fix + (f" Rewrite: `{rewrite};`" if rewrite else ""),
            at=(s.get("relation") or {}).get("location"),
        )

    def _s_ReindexStmt(self, s: dict) -> None:
        concurrent = any(node(p)[1].get("defname") == "concurrently" for p in s.get("params") or ())
        what = str(s.get("kind", "")).removeprefix("REINDEX_OBJECT_")
        target = f"{what} {rel(s['relation']) if s.get('relation') else s.get('name') or ''}".strip()
        if what in ("SCHEMA", "DATABASE", "SYSTEM"):
            self._in_transaction(f"REINDEX {target}")
        elif concurrent:
            self._in_transaction(f"REINDEX (CONCURRENTLY) {target}")
        if concurrent:
            return
        if self.no_transaction and not self.mixed_reported:
            self._mixed("ReindexStmt")
        if s.get("relation") and not self._existing(s["relation"]):
            return
        self._locking(f"REINDEX {target}")
        self.add(
            "reindex-not-concurrent",
            f"REINDEX {target} without CONCURRENTLY",
            f"Rewrite: `REINDEX (CONCURRENTLY) {target};` in its own migration file that starts with "
            "`-- vigil:no-transaction` (PostgreSQL 12+).",
        )

    # tables
    def _s_CreateStmt(self, s: dict) -> None:
        key = relkey(s.get("relation"))
        self.created.add(key)
        self.classify("expand", f"creates table {rel(s.get('relation'))}")
        elements = []
        fk_locked = False
        for e in s.get("tableElts") or ():
            k, c = node(e)
            if k == "ColumnDef":
                elements.append((k, _column_fact_fields(c)))
                self._prefer(c.get("colname", "?"), c.get("typeName"))
                for con in c.get("constraints") or ():
                    if node(con)[1].get("contype") == "CONSTR_FOREIGN":
                        fk_locked = fk_locked or self._fk_lock(s, node(con)[1])
            elif k == "Constraint":
                elements.append((k, _constraint_fact_fields(c)))
                if c.get("contype") == "CONSTR_FOREIGN":
                    fk_locked = fk_locked or self._fk_lock(s, c)
        self.op("create_table", key, None if s.get("partbound") or s.get("inhRelations") else 0, elements)

    def _fk_lock(self, s: dict, c: dict) -> bool:
        if relkey(c.get("pktable")) in self.created:
            return False
        self._locking(f"CREATE TABLE {rel(s.get('relation'))} with a foreign key to {rel(c.get('pktable'))}")
        return True

    def _s_CreateTableAsStmt(self, s: dict) -> None:
        into = s.get("into") or {}
        key = relkey(into.get("rel"))
        self.created.add(key)
        self.op("new_table", key)
        what = "materialized view" if s.get("objtype") == "OBJECT_MATVIEW" else "table"
        self.classify("data-dependent", f"creates {what} {rel(into.get('rel'))} from a query (copies data)")

    def _s_SelectStmt(self, s: dict) -> None:
        into = s.get("intoClause")
        if into:
            key = relkey(into.get("rel"))
            self.created.add(key)
            self.op("new_table", key)
            self.classify("data-dependent", f"creates table {rel(into.get('rel'))} from a query (SELECT INTO)")

    def _s_ViewStmt(self, s: dict) -> None:
        self.created.add(relkey(s.get("view")))
        self.classify("expand", _EXPAND_KINDS["ViewStmt"])

    def _s_CreateSeqStmt(self, s: dict) -> None:
        self.created.add(relkey(s.get("sequence")))
        self.classify("expand", _EXPAND_KINDS["CreateSeqStmt"])

    # data
    def _dml_op(self, rv: Any, where: Any, exempt_prefix: str | None, default_class: str, finding: LintFinding | None) -> None:
        """The class (and the backfill finding) of a data change depend on what earlier files declared
        about the table (a one-row table, its unique keys): decided by :class:`_Fold`."""
        fields = node(rv)[1] if node(rv)[0] else (rv or {})
        self.op(
            "dml", relkey(rv), fields.get("schemaname"), rel(rv), relkey(rv) in self.created, _key_columns(where),
            exempt_prefix, default_class, finding, classifies=True,
        )  # fmt: skip

    def _s_InsertStmt(self, s: dict) -> None:
        r = s.get("relation")
        k, sel = node(s.get("selectStmt"))
        self.op("insert_rows", relkey(r), _rows_inserted(k, sel), self.file)
        if not k or (k == "SelectStmt" and not sel.get("fromClause") and sel.get("op", "SETOP_NONE") == "SETOP_NONE" and not sel.get("withClause")):
            self.classify("expand", f"inserts rows into {rel(r)}")  # VALUES, DEFAULT VALUES, a SELECT of constants
            return
        if not self._existing(r):
            self.classify("data-dependent", f"fills new table {rel(r)} from a query")
            return
        self._dml_op(
            r, None, "INSERT ... SELECT into", f"INSERT ... SELECT into {rel(r)}",
            self.finding("backfill-in-migration", f"INSERT ... SELECT into {rel(r)} in the migration"),
        )  # fmt: skip

    def _dml(self, verb: str, past: str, s: dict) -> None:
        r = s.get("relation")
        where = s.get("whereClause")
        every = "" if where is not None else " without WHERE (every row)"
        if not self._existing(r):
            self.classify("data-dependent", f"{past} {rel(r)}{every}")
            return
        self._dml_op(r, where, past, f"{past} {rel(r)}{every}", self.finding("backfill-in-migration", f"{verb} {rel(r)}{every} in the migration"))

    def _s_UpdateStmt(self, s: dict) -> None:
        self._dml("UPDATE", "updates", s)

    def _s_DeleteStmt(self, s: dict) -> None:
        self._dml("DELETE FROM", "deletes from", s)

    def _s_MergeStmt(self, s: dict) -> None:
        r = s.get("relation")
        if not self._existing(r):
            self.classify("data-dependent", f"merges into {rel(r)}")
            return
        self._dml_op(r, None, None, f"merges into {rel(r)}", self.finding("backfill-in-migration", f"MERGE INTO {rel(r)} in the migration"))

    def _s_TruncateStmt(self, s: dict) -> None:
        for r in s.get("relations") or ():
            self.op("truncate_rows", relkey(r))
        names_ = [rel(r) for r in s.get("relations") or () if self._existing(r)]
        if not names_:
            return
        self.classify("contract", f"truncates {', '.join(names_)}")
        self._locking(f"TRUNCATE {', '.join(names_)}")
        self.add("truncate", f"TRUNCATE {', '.join(names_)}")

    def _s_LockStmt(self, s: dict) -> None:
        names_ = [rel(r) for r in s.get("relations") or () if self._existing(r)]
        if names_:
            self._locking(f"LOCK TABLE {', '.join(names_)}")

    def _s_RefreshMatViewStmt(self, s: dict) -> None:
        self.classify("data-dependent", f"refreshes materialized view {rel(s.get('relation'))}")
        if not s.get("concurrent") and self._existing(s.get("relation")):
            self._locking(f"REFRESH MATERIALIZED VIEW {rel(s.get('relation'))}")
            self.add("refresh-matview-not-concurrent", f"REFRESH MATERIALIZED VIEW {rel(s.get('relation'))} without CONCURRENTLY")

    # maintenance that rewrites
    def _s_VacuumStmt(self, s: dict) -> None:
        if not s.get("is_vacuumcmd"):
            return  # ANALYZE: fine anywhere
        full = False
        for o in s.get("options") or ():
            _, d = node(o)
            if d.get("defname") == "full":
                full = _option_on(d.get("arg"))
        rels = [node(r)[1].get("relation") for r in s.get("rels") or ()]
        target = ", ".join(rel(r) for r in rels) or "(every table)"
        self._in_transaction(f"VACUUM{' FULL' if full else ''} {target}")
        if not full:
            return
        existing = [rel(r) for r in rels if self._existing(r)] if rels else ["every table of the database"]
        if not existing:
            return
        self.classify("data-dependent", f"rewrites {', '.join(existing)} (VACUUM FULL)")
        self._locking(f"VACUUM FULL {target}")
        self.add("vacuum-full", f"VACUUM FULL {target} rewrites {', '.join(existing)}")

    def _s_ClusterStmt(self, s: dict) -> None:
        r = s.get("relation")
        if not r:
            self._in_transaction("CLUSTER without a table")
            target = "every previously clustered table"
        elif not self._existing(r):
            return
        else:
            target = rel(r) + (f" USING {s['indexname']}" if s.get("indexname") else "")
        self.classify("data-dependent", f"rewrites {target} (CLUSTER)")
        self._locking(f"CLUSTER {target}")
        self.add("cluster", f"CLUSTER {target} rewrites the table")

    # databases
    def _s_DropdbStmt(self, s: dict) -> None:
        db = s.get("dbname", "?")
        self.classify("contract", f"drops database {db}")
        self._in_transaction(f"DROP DATABASE {db}")
        self.add("drop-database", f"DROP DATABASE {db}")

    def _s_CreatedbStmt(self, s: dict) -> None:
        self.classify("expand", f"creates database {s.get('dbname', '?')}")
        self._in_transaction(f"CREATE DATABASE {s.get('dbname', '?')}")

    # triggers, policies, rules
    def _s_CreateTrigStmt(self, s: dict) -> None:
        self.classify("expand", f"creates trigger {s.get('trigname')}")
        if self._existing(s.get("relation")):
            self._locking(f"CREATE TRIGGER {s.get('trigname')} ON {rel(s.get('relation'))}")

    def _s_CreatePolicyStmt(self, s: dict) -> None:
        self.classify("expand", f"creates policy {s.get('policy_name')}")
        if self._existing(s.get("table")):
            self._locking(f"CREATE POLICY {s.get('policy_name')} ON {rel(s.get('table'))}")

    def _s_AlterPolicyStmt(self, s: dict) -> None:
        self.classify("contract", f"changes policy {s.get('policy_name')}")
        if self._existing(s.get("table")):
            self._locking(f"ALTER POLICY {s.get('policy_name')} ON {rel(s.get('table'))}")

    def _s_RuleStmt(self, s: dict) -> None:
        self.classify("expand", f"creates rule {s.get('rulename')}")
        if self._existing(s.get("relation")):
            self._locking(f"CREATE RULE {s.get('rulename')} ON {rel(s.get('relation'))}")

    # types
    def _s_CreateEnumStmt(self, s: dict) -> None:
        self.created_types.add(names(s.get("typeName", [])).rsplit(".", 1)[-1])
        self.classify("expand", _EXPAND_KINDS["CreateEnumStmt"])

    def _s_CompositeTypeStmt(self, s: dict) -> None:
        self.created_types.add(relkey(s.get("typevar")))
        self.classify("expand", _EXPAND_KINDS["CompositeTypeStmt"])

    def _s_CreateDomainStmt(self, s: dict) -> None:
        self.created_types.add(names(s.get("domainname", [])).rsplit(".", 1)[-1])
        self.classify("expand", _EXPAND_KINDS["CreateDomainStmt"])
        checks = [c for c in (node(x)[1] for x in s.get("constraints") or ()) if c.get("contype") == "CONSTR_CHECK"]
        if checks:
            self.add("create-domain-with-constraint", f"CREATE DOMAIN {names(s.get('domainname', []))} with a CHECK constraint")

    def _s_AlterDomainStmt(self, s: dict) -> None:
        typ = names(s.get("typeName", []))
        if s.get("subtype") != "C":
            return
        c = node(s.get("def"))[1]
        new = typ.rsplit(".", 1)[-1] in self.created_types
        self.classify("data-dependent", f"adds a constraint to domain {typ}")
        if new:
            return
        if c.get("skip_validation"):  # no scan now: a warning unless the spec grades the rule itself
            f = self.finding("alter-domain-add-constraint", f"ALTER DOMAIN {typ} ADD CONSTRAINT ... NOT VALID")
            if f is not None:
                if "alter-domain-add-constraint" not in self.config.severity:
                    f = dataclasses.replace(f, severity="warning")
                self.raw.append((self.stmt_index, f))
            return
        self._locking(f"ALTER DOMAIN {typ} ADD CONSTRAINT")
        self.add("alter-domain-add-constraint", f"ALTER DOMAIN {typ} ADD CONSTRAINT checks every column using the domain")

    def _s_CreateRangeStmt(self, s: dict) -> None:
        self.created_types.add(names(s.get("typeName", [])).rsplit(".", 1)[-1])
        self.classify("expand", _EXPAND_KINDS["CreateRangeStmt"])

    def _s_AlterEnumStmt(self, s: dict) -> None:
        typ = names(s.get("typeName", []))
        if s.get("oldVal") is None:
            self.classify("expand", f"adds value {_lit(s.get('newVal', ''))} to enum {typ}")
            return
        old, new = _lit(s.get("oldVal", "")), _lit(s.get("newVal", ""))
        if typ.rsplit(".", 1)[-1] in self.created_types:
            self.classify("expand", f"renames value {old} of new enum {typ}")
            return
        self.classify("contract", f"renames value {old} of enum {typ} to {new}")
        self.add(
            "rename-type",
            f"renames value {old} of enum {typ} to {new}",
            RULES["rename-type"].fix + f" Here: `ALTER TYPE {_qrel(typ)} ADD VALUE {new};` now, and no rename.",
        )

    # drops
    def _s_DropStmt(self, s: dict) -> None:
        t = str(s.get("removeType", ""))
        cascade = s.get("behavior") == "DROP_CASCADE"
        cas = " CASCADE" if cascade else ""
        objs = s.get("objects") or []
        dotted = [object_name(o) for o in objs]
        if t == "OBJECT_INDEX":
            self._drop_index(s, dotted)
            return
        if self.no_transaction and not self.mixed_reported:
            self._mixed("DropStmt")
        tables = {"OBJECT_TABLE": "table", "OBJECT_VIEW": "view", "OBJECT_MATVIEW": "materialized view",
                  "OBJECT_FOREIGN_TABLE": "foreign table"}  # fmt: skip
        if t in tables:
            what = tables[t]
            kind = {"view": "view", "materialized view": "matview"}.get(what)
            existing, replaced = [], []
            for n in dotted:
                short = n.rsplit(".", 1)[-1]
                if short in self.created:
                    continue
                if kind and not cascade and self.replaced_later(kind, short):
                    replaced.append(n)
                else:
                    existing.append(n)
            for n in existing:
                self.op("drop_table", n.rsplit(".", 1)[-1])
            if replaced:
                self.classify("expand", f"replaces {what} {', '.join(replaced)} (dropped and created again in this file)")
            if not existing:
                if not replaced:
                    self.classify("expand", f"drops {what} created in this migration")
                return
            self.classify("contract", f"drops {what} {', '.join(existing)}")
            if what != "view":
                self._locking(f"DROP {what.upper()} {', '.join(existing)}")
            self.add("drop-table", f"DROP {what.upper()} {', '.join(existing)}{cas}")
            return
        if t in ("OBJECT_TRIGGER", "OBJECT_POLICY", "OBJECT_RULE"):
            what = t.removeprefix("OBJECT_").lower()
            shown, dropped = [], []
            for o in objs:
                parts = _parts(o)
                table, name = ".".join(parts[:-1]) or "?", parts[-1] if parts else "?"
                shown.append(f"{name} ON {table}")
                if table.rsplit(".", 1)[-1] in self.created:
                    continue
                self._locking(f"DROP {what.upper()} {name} ON {table}")
                if self.replaced_later(what, f"{table.rsplit('.', 1)[-1]}.{name}"):
                    self.classify("expand", f"replaces {what} {name} on {table} (dropped and created again in this file)")
                else:
                    dropped.append(f"{name} ON {table}")
            if dropped:
                self.classify("contract", f"drops {what} {', '.join(dropped)}")
                self.add("drop-object", f"DROP {what.upper()} {', '.join(dropped)}{cas}")
            return
        what = t.removeprefix("OBJECT_").lower().replace("_", " ")
        kind = {"function": "function", "procedure": "procedure", "routine": "function"}.get(what)
        if t in ("OBJECT_TYPE", "OBJECT_DOMAIN"):
            dotted = [n for n in dotted if n.rsplit(".", 1)[-1] not in self.created_types]
        elif t == "OBJECT_SEQUENCE":
            dotted = [n for n in dotted if n.rsplit(".", 1)[-1] not in self.created]
        if kind and not cascade:
            kept = [n for n in dotted if not self.replaced_later(kind, n.rsplit(".", 1)[-1])]
            if len(kept) < len(dotted):
                self.classify("expand", f"replaces {what} {', '.join(n for n in dotted if n not in kept)} (dropped and created again in this file)")
            dotted = kept
        if not dotted:
            return
        self.classify("contract", f"drops {what} {', '.join(dotted)}")
        if cascade and t in ("OBJECT_FUNCTION", "OBJECT_PROCEDURE", "OBJECT_ROUTINE", "OBJECT_SCHEMA", "OBJECT_TYPE",
                             "OBJECT_DOMAIN", "OBJECT_EXTENSION", "OBJECT_SEQUENCE", "OBJECT_AGGREGATE"):  # fmt: skip
            self._locking(
                f"DROP {what.upper()} {', '.join(dotted)} CASCADE (dropping the triggers, columns, defaults and views "
                "that depend on it)"
            )
        self.add("drop-object", f"DROP {what.upper()} {', '.join(dotted)}{cas}")

    def _drop_index(self, s: dict, dotted: list[str]) -> None:
        shown = ", ".join(dotted)
        self.classify("contract", f"drops index {shown}")
        if s.get("concurrent"):
            self._in_transaction(f"DROP INDEX CONCURRENTLY {shown}")
            return
        if self.no_transaction and not self.mixed_reported:
            self._mixed("DropStmt")
        self._locking(f"DROP INDEX {shown}")
        self.add(
            "drop-index-not-concurrent", f"DROP INDEX {shown} without CONCURRENTLY",
            RULES["drop-index-not-concurrent"].fix
            + f" Rewrite: `DROP INDEX CONCURRENTLY {'IF EXISTS ' if s.get('missing_ok') else ''}{', '.join(map(_qrel, dotted))};`",
        )  # fmt: skip

    # renames and moves
    def _s_RenameStmt(self, s: dict) -> None:
        t = str(s.get("renameType", ""))
        new = s.get("newname", "?")
        r = s.get("relation")
        if t == "OBJECT_COLUMN":
            table = rel(r)
            key = relkey(r)
            if key in self.created:
                return
            self.op("rename_column", key, s.get("subname"), new)
            self.classify("contract", f"renames column {table}.{s.get('subname')} to {new}")
            self._locking(f"ALTER TABLE {table} RENAME COLUMN")
            self.add(
                "rename-column",
                f"renames column {table}.{s.get('subname')} to {new}",
                RULES["rename-column"].fix
                + f" Expand: `ALTER TABLE {_qrel(table)} ADD COLUMN {_q(new)} <type>;` and write both columns; "
                f"contract later: `ALTER TABLE {_qrel(table)} DROP COLUMN {_q(s.get('subname', '?'))};`.",
            )
        elif t in ("OBJECT_TABLE", "OBJECT_VIEW", "OBJECT_MATVIEW", "OBJECT_FOREIGN_TABLE"):
            table = rel(r)
            key = relkey(r)
            self.op("rename_table", key, new)
            if key in self.created:
                self.created.add(new)
                return
            self.classify("contract", f"renames {table} to {new}")
            self._locking(f"ALTER TABLE {table} RENAME")
            self.add(
                "rename-table",
                f"renames {table} to {new}",
                RULES["rename-table"].fix
                + f" A bridge for the old code: `ALTER TABLE {_qrel(table)} RENAME TO {_q(new)}; "
                f"CREATE VIEW {_qrel(table)} AS SELECT * FROM {_q(new)};` (simple views are updatable), "
                "dropped in a later contract migration.",
            )
        elif t in ("OBJECT_TYPE", "OBJECT_DOMAIN", "OBJECT_ATTRIBUTE"):
            typ = rel(r) if t == "OBJECT_ATTRIBUTE" else object_name(s.get("object"))
            if typ.rsplit(".", 1)[-1] in self.created_types:
                return
            what = "domain" if t == "OBJECT_DOMAIN" else "type"
            if t == "OBJECT_ATTRIBUTE":
                text = f"renames attribute {s.get('subname')} of type {typ} to {new}"
            else:
                text = f"renames {what} {typ} to {new}"
            self.classify("contract", text)
            self.add("rename-type", text)
        elif t in _RENAMED_OBJECTS:
            what = _RENAMED_OBJECTS[t]
            if t == "OBJECT_SCHEMA":
                old = s.get("subname", "?")
            elif t in ("OBJECT_TABCONSTRAINT", "OBJECT_DOMCONSTRAINT"):
                old = f"{s.get('subname', '?')} on {rel(r) if r else object_name(s.get('object'))}"
                if r and (relkey(r) in self.created or (relkey(r), s.get("subname")) in self.new_constraints):
                    return
            elif r:
                old = rel(r)
                if relkey(r) in self.created:
                    return
            else:
                old = object_name(s.get("object"))
                if (("procedure" if t == "OBJECT_PROCEDURE" else "function"), old.rsplit(".", 1)[-1]) in self.recreated:
                    return  # created in this file
            self.classify("contract", f"renames {what} {old} to {new}")
            self.add("rename-object", f"renames {what} {old} to {new}")
        else:
            what = t.removeprefix("OBJECT_").lower().replace("_", " ")
            old = rel(r) if r else (s.get("subname") or object_name(s.get("object")))
            if t in ("OBJECT_TRIGGER", "OBJECT_POLICY", "OBJECT_RULE") and r:
                old = f"{s.get('subname', '?')} on {rel(r)}"
            self.classify("expand", f"renames {what} {old} to {new}")

    def _s_AlterObjectSchemaStmt(self, s: dict) -> None:
        t = str(s.get("objectType", ""))
        what = t.removeprefix("OBJECT_").lower().replace("_", " ")
        r = s.get("relation")
        if r:
            name = rel(r)
            if relkey(r) in self.created:
                return
        else:
            name = object_name(s.get("object"))
            if t in ("OBJECT_TYPE", "OBJECT_DOMAIN") and name.rsplit(".", 1)[-1] in self.created_types:
                return
        target = s.get("newschema", "?")
        self.classify("contract", f"moves {what} {name} to schema {target}")
        if r and t in ("OBJECT_TABLE", "OBJECT_VIEW", "OBJECT_MATVIEW", "OBJECT_FOREIGN_TABLE", "OBJECT_SEQUENCE"):
            self._locking(f"ALTER {what.upper()} {name} SET SCHEMA")
        self.add(
            "set-schema",
            f"moves {what} {name} to schema {target}",
            RULES["set-schema"].fix
            + (f" For a table, a bridge: `ALTER TABLE {_qrel(name)} SET SCHEMA {_q(target)}; CREATE VIEW {_qrel(name)} AS "
               f"SELECT * FROM {_q(target)}.{_q(name.rsplit('.', 1)[-1])};`, dropped later." if t == "OBJECT_TABLE" else ""),
        )  # fmt: skip

    # ALTER TABLE
    def _s_AlterTableStmt(self, s: dict) -> None:
        r = s.get("relation")
        table = rel(r)
        key = relkey(r)
        new = key in self.created
        objtype = s.get("objtype", "OBJECT_TABLE")
        if objtype != "OBJECT_TABLE":
            if not new:
                self._locking(f"ALTER {str(objtype).removeprefix('OBJECT_')} {table}")
            return
        if not new:
            self._locking(f"ALTER TABLE {table}")
        for i, c in enumerate(s.get("cmds") or ()):
            _, cmd = node(c)
            st = cmd.get("subtype")
            col = cmd.get("name", "?")
            if st == "AT_AddColumn":
                self._add_column(table, key, new, node(cmd.get("def"))[1], i)
            elif st == "AT_AlterColumnType":
                cd = node(cmd.get("def"))[1]
                tn = type_sql(cd.get("typeName")) if cd.get("typeName") else None
                self.classify("contract", f"changes the type of {table}.{col}")
                if cd.get("typeName"):
                    self._prefer(col, cd["typeName"])
                if not new and (key, col) not in self.new_columns:
                    self.add(
                        "alter-column-type",
                        f"changes the type of {table}.{col}" + (f" to {tn}" if tn else ""),
                        RULES["alter-column-type"].fix
                        + f" Expand: `ALTER TABLE {_qrel(table)} ADD COLUMN {_q(col + '_new')} {tn or '<type>'};`.",
                        at=cd.get("location"),
                    )
            elif st == "AT_SetNotNull":
                self._not_null(table, key, new, col)
            elif st == "AT_DropNotNull":
                self.classify("expand", f"drops NOT NULL on {table}.{col}")
                f = None
                if not new and (key, col) not in self.new_columns:
                    f = self.finding("drop-not-null", f"drops NOT NULL on {table}.{col}: readers of the running app may now get NULL")
                self.op("drop_not_null", key, col, f)
            elif st == "AT_ColumnDefault":
                if cmd.get("def") is None:
                    self._drop_default(table, key, new, col)
                else:
                    self.classify("expand", f"sets a default on {table}.{col}")
            elif st == "AT_AddConstraint":
                self._add_constraint(table, key, new, node(cmd.get("def"))[1], i, len(s.get("cmds") or ()))
            elif st == "AT_ValidateConstraint":
                self.op("validate", key, col)
                self.classify("data-dependent", f"validates constraint {col} against existing rows")
            elif st == "AT_DropConstraint":
                self._drop_constraint(table, key, new, col, cmd.get("behavior") == "DROP_CASCADE")
            elif st == "AT_DropColumn":
                self.classify("contract", f"drops column {table}.{col}")
                self.op("drop_column", key, col)
                if not new and (key, col) not in self.new_columns:
                    self.add(
                        "drop-column",
                        f"drops column {table}.{col}" + (" CASCADE" if cmd.get("behavior") == "DROP_CASCADE" else ""),
                    )
            elif st == "AT_DetachPartition":
                pc = node(cmd.get("def"))[1]
                part = rel(pc.get("name"))
                self.classify("contract", f"detaches partition {part} from {table} (its rows leave {table})")
                if pc.get("concurrent"):
                    self._in_transaction(f"DETACH PARTITION {part} CONCURRENTLY")
                elif not new:
                    self.add(
                        "detach-partition-not-concurrent",
                        f"DETACH PARTITION {part} from existing table {table} without CONCURRENTLY",
                        RULES["detach-partition-not-concurrent"].fix
                        + f" Rewrite: `ALTER TABLE {_qrel(table)} DETACH PARTITION {_qrel(part)} CONCURRENTLY;`",
                    )
            elif st in ("AT_SetTableSpace", "AT_SetLogged", "AT_SetUnLogged", "AT_SetAccessMethod") and not new:
                what = {"AT_SetTableSpace": f"SET TABLESPACE {cmd.get('name', '?')}", "AT_SetLogged": "SET LOGGED",
                        "AT_SetUnLogged": "SET UNLOGGED", "AT_SetAccessMethod": f"SET ACCESS METHOD {cmd.get('name', '?')}"}[st]
                self.classify("data-dependent", f"rewrites {table} ({what})")
                self.add("table-rewrite", f"ALTER TABLE {table} {what} rewrites the table")
            elif st == "AT_AttachPartition":
                self.classify("expand", f"attaches partition {rel(node(cmd.get('def'))[1].get('name'))} to {table}")

    def _add_column(self, table: str, key: str, new: bool, cd: dict, index: int) -> None:
        col = cd.get("colname", "?")
        tn = cd.get("typeName")
        tnames = type_names(tn)
        not_null = bool(cd.get("is_not_null"))
        default = None
        default_index = -1
        rewrite: str | None = None
        unknown: str | None = None
        inline_unique = inline_check = None
        for j, con in enumerate(cd.get("constraints") or ()):
            _, c = node(con)
            ct = c.get("contype")
            if ct == "CONSTR_NOTNULL":
                not_null = True
            elif ct == "CONSTR_DEFAULT":
                default, default_index = c.get("raw_expr"), j
            elif ct == "CONSTR_IDENTITY":
                rewrite = "an identity column (GENERATED ... AS IDENTITY) fills every row"
            elif ct == "CONSTR_GENERATED":
                rewrite = "a stored generated column is computed for every row"
            elif ct in ("CONSTR_PRIMARY", "CONSTR_UNIQUE", "CONSTR_EXCLUSION"):
                inline_unique = ct.removeprefix("CONSTR_").replace("PRIMARY", "PRIMARY KEY")
                if ct == "CONSTR_PRIMARY":
                    not_null = True
            elif ct in ("CONSTR_CHECK", "CONSTR_FOREIGN"):
                inline_check = "FOREIGN KEY" if ct == "CONSTR_FOREIGN" else "CHECK"
        if len(tnames) == 1 and tnames[0] in SERIAL_TYPES:
            rewrite = f"{tnames[0]} draws nextval() for every row"
        if default is not None and rewrite is None:
            vol, unk = _volatility(default)
            if vol:
                rewrite = f"the default calls {vol}(), which is volatile"
            elif unk:
                unknown = unk
        self.new_columns.add((key, col))
        self.op("column", key, _column_fact_fields(cd))
        self._prefer(col, tn)
        if not_null and default is None and rewrite is None and not new:
            self.classify("contract", f"adds required column {table}.{col} (NOT NULL, no default)")
        else:
            self.classify("expand", f"adds column {table}.{col}")
        if new:
            return
        at = cd.get("location")
        typ = type_sql(tn)
        if rewrite:
            dflt = None
            if default is not None:
                dflt = self.deparse(lambda st: st.cmds[index].def_.constraints[default_index].raw_expr)
            self.add(
                "add-column-volatile-default",
                f"adds column {table}.{col} and {rewrite}: the table is rewritten",
                RULES["add-column-volatile-default"].fix
                + f" Rewrite: `ALTER TABLE {_qrel(table)} ADD COLUMN {_q(col)} {_base_type(typ)};`"
                + (f" then `ALTER TABLE {_qrel(table)} ALTER COLUMN {_q(col)} SET DEFAULT {dflt};`" if dflt else "")
                + " and backfill old rows in batches.",
                at=at,
            )
        elif unknown:
            self.add("add-column-unknown-default", f"adds column {table}.{col} with a default that calls {unknown}()", at=at)
        if not_null and default is None and rewrite is None:
            self.add(
                "add-column-required",
                f"adds required column {table}.{col} (NOT NULL without a DEFAULT)",
                RULES["add-column-required"].fix
                + f" Rewrite: `ALTER TABLE {_qrel(table)} ADD COLUMN {_q(col)} {typ};` (nullable) and tighten later.",
                at=at,
            )
        if inline_unique:
            name = _q(key + "_" + col + "_key")
            self.add(
                "add-unique-constraint",
                f"adds column {table}.{col} with an inline {inline_unique}, which builds its index under the table lock",
                f"Add the column plain, then `CREATE UNIQUE INDEX CONCURRENTLY {name} ON {_qrel(table)} ({_q(col)});` "
                f"in a no-transaction migration and `ALTER TABLE {_qrel(table)} ADD CONSTRAINT {name} "
                f"UNIQUE USING INDEX {name};`.",
                at=at,
            )
        if inline_check:
            self.add(
                "add-constraint-not-valid",
                f"adds column {table}.{col} with an inline {inline_check}, validated under the table lock",
                f"Add the column plain, then `ALTER TABLE {_qrel(table)} ADD CONSTRAINT ... {inline_check} ... NOT VALID;` "
                "and VALIDATE CONSTRAINT in a later migration.",
                at=at,
            )

    def _not_null(self, table: str, key: str, new: bool, col: str) -> None:
        self.classify("contract", f"tightens {table}.{col} to NOT NULL")
        c = _q(f"{key}_{col}_not_null")
        f = None if new else self.finding(
            "set-not-null",
            f"SET NOT NULL on {table}.{col} with no validated CHECK ({col} IS NOT NULL) before it: lint cannot know "
            "whether the table is empty, so assume it is big",
            f"Migration 1: `ALTER TABLE {_qrel(table)} ADD CONSTRAINT {c} CHECK ({_q(col)} IS NOT NULL) NOT VALID;` "
            f"Migration 2: `ALTER TABLE {_qrel(table)} VALIDATE CONSTRAINT {c};` "
            f"Migration 3: `ALTER TABLE {_qrel(table)} ALTER COLUMN {_q(col)} SET NOT NULL; "
            f"ALTER TABLE {_qrel(table)} DROP CONSTRAINT {c};` (PostgreSQL 12+ skips the scan).",
        )  # fmt: skip
        self.op("set_not_null", key, col, f)  # reported unless a validated CHECK proved it

    def _drop_default(self, table: str, key: str, new: bool, col: str) -> None:
        self.classify("contract", f"drops the default of {table}.{col}")
        if new:  # a column added in this file counts: the running app does not write it either
            return
        known = self.finding("drop-default", f"drops the default of {table}.{col}; {table}.{col} is NOT NULL (declared in an earlier statement)")
        assumed = self.finding(
            "drop-default", f"drops the default of {table}.{col}; lint did not see whether {table}.{col} is NOT NULL, so it assumes it is"
        )
        self.op("drop_default", key, col, known, assumed)  # none when the column is known nullable

    def _drop_constraint(self, table: str, key: str, new: bool, name: str, cascade: bool) -> None:
        if new or (key, name) in self.new_constraints:
            self.classify("expand", f"drops constraint {name} on {table}")
            return
        # neither reported nor classified for the CHECK (col IS NOT NULL) helper once SET NOT NULL
        # holds: nothing is relaxed
        f = self.finding("drop-constraint", f"drops constraint {name} on {table}" + (" CASCADE" if cascade else ""))
        self.op("drop_constraint", key, name, f"drops constraint {name} on {table}", f, classifies=True)

    def _constraint_text(self, at: Any, ncmds: int) -> str | None:
        """The constraint as written plus NOT VALID, when it is the statement's only command."""
        start = self.at(at)
        if ncmds != 1 or start is None or self.unit is None or self.unit.stop - start > 2000:
            return None
        text = _one_line(self.sql[start : self.unit.stop])
        return (text + " NOT VALID") if text else None

    def _add_constraint(self, table: str, key: str, new: bool, c: dict, index: int, ncmds: int = 1) -> None:
        ct = c.get("contype")
        name = c.get("conname") or "(unnamed)"
        if c.get("conname"):
            self.new_constraints.add((key, c["conname"]))
        self.classify("contract", f"adds constraint {name} on {table}")
        nn_col = None
        if ct == "CONSTR_CHECK":
            k, e = node(c.get("raw_expr"))
            if k == "NullTest" and e.get("nulltesttype") == "IS_NOT_NULL":
                ka, a = node(e.get("arg"))
                if ka == "ColumnRef" and len(a.get("fields") or ()) == 1 and node(a["fields"][0])[0] == "String":
                    nn_col = pgjson.string(a["fields"][0])
        self.op("add_constraint", key, _constraint_fact_fields(c), nn_col)
        at = c.get("location")
        if ct in ("CONSTR_CHECK", "CONSTR_FOREIGN"):
            if c.get("skip_validation") or new:
                return
            kind = "CHECK" if ct == "CONSTR_CHECK" else "FOREIGN KEY"

            def not_valid(stmt: Any) -> Any:
                con = stmt.cmds[index].def_
                con.skip_validation = True
                return con

            rewrite = None
            if c.get("conname"):
                rewrite = self._constraint_text(at, ncmds) or self.deparse(not_valid)
            self.add(
                "add-constraint-not-valid",
                f"adds {kind} constraint {name} on existing table {table} without NOT VALID",
                RULES["add-constraint-not-valid"].fix
                + (f" Rewrite: `ALTER TABLE {_qrel(table)} ADD {rewrite};` then, in a later migration, "
                   f"`ALTER TABLE {_qrel(table)} VALIDATE CONSTRAINT {_q(name)};`" if rewrite else ""),
                at=at,
            )  # fmt: skip
        elif ct in ("CONSTR_UNIQUE", "CONSTR_PRIMARY", "CONSTR_EXCLUSION"):
            if c.get("indexname") or new:
                return
            cols = ", ".join(_q(pgjson.string(k)) for k in c.get("keys") or ())
            kind = {"CONSTR_UNIQUE": "UNIQUE", "CONSTR_PRIMARY": "PRIMARY KEY", "CONSTR_EXCLUSION": "EXCLUDE"}[ct]
            idx = _q(c.get("conname") or f"{key}_{'pkey' if kind == 'PRIMARY KEY' else 'key'}")
            fix = RULES["add-unique-constraint"].fix
            if cols and kind != "EXCLUDE":
                fix += (
                    f" Rewrite: `CREATE UNIQUE INDEX CONCURRENTLY {idx} ON {_qrel(table)} ({cols});` (no-transaction migration), "
                    f"then `ALTER TABLE {_qrel(table)} ADD CONSTRAINT {idx} {kind} USING INDEX {idx};`"
                )
            self.add("add-unique-constraint", f"adds {kind} constraint {name} on existing table {table}", fix, at=at)
        elif ct == "CONSTR_NOTNULL":
            for k in c.get("keys") or ():
                self._not_null(table, key, new, pgjson.string(k))

    # style (opt-in)
    def _prefer(self, col: str, tn: dict | None) -> None:
        if not tn or not self.prefer:
            return
        at = tn.get("location")
        base = type_names(tn)
        if len(base) != 1:
            return
        t = base[0]
        shown = type_sql(tn)
        if t == "varchar" and tn.get("typmods") or t in ("bpchar", "character"):
            self.add(
                "prefer-text",
                f"column {col} is {shown}",
                "Declare it `text`" + (f" with `CHECK (length({_q(col)}) <= {_typmod(tn)})`" if _typmod(tn) else "") + ".",
                at=at,
            )
        elif t == "timestamp":
            self.add("prefer-timestamptz", f"column {col} is {shown} (without time zone)",
                     f"Declare it `timestamptz`{'[]' * len(tn.get('arrayBounds') or ())}.", at=at)  # fmt: skip
        if t in ("int2", "int4", "smallint", "integer", "int", "serial", "serial4", "serial2", "smallserial"):
            bigger = {"serial": "bigserial", "serial4": "bigserial", "serial2": "bigserial", "smallserial": "bigserial"}.get(t, "bigint")
            self.add("prefer-bigint", f"column {col} is {shown}", f"Declare it `{bigger}`.", at=at)
        if t in SERIAL_TYPES:
            big = "smallint" if t in ("serial2", "smallserial") else "integer" if t in ("serial", "serial4") else "bigint"
            self.add(
                "prefer-identity", f"column {col} is {shown}",
                f"Declare it `{'bigint' if big != 'smallint' else big} GENERATED BY DEFAULT AS IDENTITY`.", at=at,
            )  # fmt: skip


_NO_TRANSACTION_KINDS = frozenset({"VariableSetStmt", "IndexStmt", "DropStmt", "ReindexStmt", "VacuumStmt", "ClusterStmt",
                                   "CreatedbStmt", "DropdbStmt"})  # fmt: skip
_RENAMED_OBJECTS = {
    "OBJECT_SCHEMA": "schema", "OBJECT_FUNCTION": "function", "OBJECT_PROCEDURE": "procedure", "OBJECT_ROUTINE": "routine",
    "OBJECT_AGGREGATE": "aggregate", "OBJECT_SEQUENCE": "sequence", "OBJECT_TABCONSTRAINT": "constraint",
    "OBJECT_DOMCONSTRAINT": "domain constraint",
}  # fmt: skip

_EXPAND_KINDS = {
    "ViewStmt": "creates or replaces a view",
    "CreateFunctionStmt": "creates or replaces a function",
    "CreateSeqStmt": "creates a sequence",
    "CreateEnumStmt": "creates an enum type",
    "CompositeTypeStmt": "creates a type",
    "CreateDomainStmt": "creates a domain",
    "CreateExtensionStmt": "creates an extension",
    "CreateSchemaStmt": "creates a schema",
    "DefineStmt": "defines an object",
    "CreateRangeStmt": "creates a range type",
}


_LEADING_COMMENT = re.compile(r"\s*--")
_COMMENT_BLOCK = re.compile(r"(?:[^\S\n]*(?:--[^\n]*)?\n)*")  # blank and comment lines, each ended by \n


def _has_no_transaction(sql: str) -> bool:
    """The runner's rule (:func:`vigil.deploy.migrations.files.has_no_transaction`), asked only when
    the file starts with a comment line: otherwise the answer is no without reading every line."""
    if not _LEADING_COMMENT.match(sql):
        return False
    from vigil.deploy.migrations.files import has_no_transaction

    # only the leading comment lines matter: up to the end of the first other line, not the whole file
    m = _COMMENT_BLOCK.match(sql)
    end = sql.find("\n", m.end() if m else 0)
    return has_no_transaction(sql if end < 0 else sql[: end + 1])


def _only_concurrent_detach(s: dict) -> bool:
    cmds = [node(c)[1] for c in s.get("cmds") or ()]
    return bool(cmds) and all(
        c.get("subtype") == "AT_DetachPartition" and node(c.get("def"))[1].get("concurrent") for c in cmds
    )


def _parts(o: Any) -> list[str]:
    k, v = node(o)
    if k == "List":
        return [pgjson.string(i) for i in v.get("items", [])]
    return object_name(o).split(".")


def _rows_inserted(kind: str, sel: dict) -> int | None:
    """How many rows an INSERT's source gives, when the text says (VALUES, DEFAULT VALUES, LIMIT n, no FROM)."""
    if not kind:
        return 1  # DEFAULT VALUES
    if kind != "SelectStmt" or sel.get("op", "SETOP_NONE") != "SETOP_NONE" or sel.get("withClause"):
        return None
    if sel.get("valuesLists"):
        return len(sel["valuesLists"])
    if not sel.get("fromClause"):
        return 1
    if sel.get("limitCount") is not None and not sel.get("limitOffset"):
        ok, v = const(sel["limitCount"])
        if ok and isinstance(v, int) and 0 <= v <= 1:
            return v
    return None


def _option_on(arg: Any) -> bool:
    """A DefElem's boolean argument (``VACUUM (FULL false)``); no argument means on."""
    if arg is None:
        return True
    k, v = node(arg)
    if k == "String":
        return str(v.get("sval", "")).lower() not in ("false", "off", "0", "no")
    if k == "Integer":
        return bool(v.get("ival", 0))
    if k == "Boolean":
        return bool(v.get("boolval", False))
    return True


def _lit(v: str) -> str:
    return "'" + str(v).replace("'", "''") + "'"


def _typmod(tn: dict) -> str | None:
    mods: list = tn.get("typmods") or []
    if len(mods) != 1:
        return None
    ok, v = const(mods[0])
    return str(v) if ok and node(mods[0])[1].get("location", 0) != -1 else None


def _one_line(sql: str) -> str:
    """A statement on one line, as written: tokens kept, comments dropped, any gap one space."""
    if not any(q in sql for q in ("'", '"', "--", "/*", "$", "E'")):
        return " ".join(sql.split()).rstrip(";").rstrip()  # nothing a split could cut into
    from pglast import parser

    try:
        tokens = parser.scan(sql)
    except Exception:
        return " ".join(sql.split())
    out: list[str] = []
    end = None
    for t in tokens:
        if t.name in ("SQL_COMMENT", "C_COMMENT") or t.name == "ASCII_59":
            continue
        if end is not None and t.start > end:
            out.append(" ")
        out.append(sql[t.start : t.end + 1])
        end = t.end + 1
    return "".join(out)


def _key_columns(where: Any) -> list[str]:
    """The columns a WHERE clause pins to one constant each (``id = 5``, maybe AND-ed with more)."""
    if where is None:
        return []
    k, e = node(where)
    terms = [where]
    if k == "BoolExpr" and e.get("boolop") == "AND_EXPR":
        terms = list(e.get("args") or ())
    out = []
    for term in terms:
        kt, t = node(term)
        if kt != "A_Expr" or t.get("kind") != "AEXPR_OP" or names(t.get("name", [])) != "=":
            continue
        for a, b in ((t.get("lexpr"), t.get("rexpr")), (t.get("rexpr"), t.get("lexpr"))):
            ka, va = node(a)
            if ka == "ColumnRef" and va.get("fields") and const(b)[0]:
                out.append(pgjson.string(va["fields"][-1]))
    return out


# --- what a file tells the next ones: table facts, folded in order ----------------------------------


def _column_fact_fields(c: dict) -> tuple:
    """What table facts need from a ColumnDef, as plain data: (column, NOT NULL, unique, pinned columns)."""
    col = c.get("colname") or ""
    not_null = bool(c.get("is_not_null"))
    unique = False
    pins: list[str] = []
    for con in c.get("constraints") or ():
        x = node(con)[1]
        ct = x.get("contype")
        if ct in ("CONSTR_NOTNULL", "CONSTR_PRIMARY", "CONSTR_IDENTITY"):
            not_null = True
        if ct in ("CONSTR_PRIMARY", "CONSTR_UNIQUE"):
            unique = True
        if ct == "CONSTR_CHECK":
            pins.extend(_pinned(x.get("raw_expr")))
    return (col, not_null, unique, pins)


def _constraint_fact_fields(c: dict) -> tuple:
    """What table facts need from a table Constraint: (type, name, key columns, NOT VALID, pinned columns)."""
    ct = c.get("contype")
    pins = _pinned(c.get("raw_expr")) if ct == "CONSTR_CHECK" and not c.get("skip_validation") else []
    return (ct, c.get("conname"), [pgjson.string(k) for k in c.get("keys") or ()], bool(c.get("skip_validation")), pins)


def _column_facts(facts: TableFacts, c: tuple) -> None:
    col, not_null, unique, pins = c
    if not col:
        return
    if unique:
        facts.unique.add(col)
    facts.pinned.update(pins)
    facts.columns[col] = not_null
    _settle(facts)


def _constraint_facts(facts: TableFacts, c: tuple) -> None:
    ct, _, keys, _, pins = c
    if ct == "CONSTR_PRIMARY":
        for k in keys:
            facts.columns[k] = True
    if ct in ("CONSTR_PRIMARY", "CONSTR_UNIQUE") and len(keys) == 1:
        facts.unique.add(keys[0])
    facts.pinned.update(pins)
    _settle(facts)


def _pinned(expr: Any) -> list[str]:
    """The columns ``CHECK (col = const)`` / ``CHECK (col)`` (a boolean pinned to true) pin."""
    k, e = node(expr)
    if k == "ColumnRef" and len(e.get("fields") or ()) == 1:
        return [pgjson.string(e["fields"][0])]
    if k != "A_Expr" or e.get("kind") != "AEXPR_OP" or names(e.get("name", [])) != "=":
        return []
    out = []
    for a, b in ((e.get("lexpr"), e.get("rexpr")), (e.get("rexpr"), e.get("lexpr"))):
        ka, va = node(a)
        if ka == "ColumnRef" and len(va.get("fields") or ()) == 1 and const(b)[0]:
            out.append(pgjson.string(va["fields"][0]))
    return out


def _settle(facts: TableFacts) -> None:
    if facts.pinned & facts.unique:
        facts.singleton = True


class _Fold:
    """Applies one file's operations, in order, to the context the earlier files left: table facts
    change, and the findings and classes that depend on them are decided."""

    def __init__(self, ctx: LintContext) -> None:
        self.ctx = ctx
        self.raw: list[tuple[int, LintFinding]] = []
        self.classes: dict[int, tuple[str, str]] = {}

    def apply(self, ops: list[tuple]) -> None:
        for i, (kind, stmt, *args) in enumerate(ops):
            getattr(self, "_" + kind)(i, stmt, *args)

    def emit(self, stmt: int, f: LintFinding | None) -> None:
        if f is not None:
            self.raw.append((stmt, f))

    def _facts(self, key: str) -> TableFacts | None:
        return self.ctx.tables.get(key)

    def _unique(self, i: int, stmt: int, key: str, col: str) -> None:
        t = self.ctx.table(key)
        t.unique.add(col)
        _settle(t)

    def _singleton(self, i: int, stmt: int, key: str) -> None:
        self.ctx.table(key).singleton = True

    def _create_table(self, i: int, stmt: int, key: str, rows: int | None, elements: list) -> None:
        facts = self.ctx.tables[key] = TableFacts(rows=rows)
        for k, c in elements:
            (_column_facts if k == "ColumnDef" else _constraint_facts)(facts, c)

    def _new_table(self, i: int, stmt: int, key: str) -> None:
        self.ctx.tables[key] = TableFacts()

    def _column(self, i: int, stmt: int, key: str, c: tuple) -> None:
        _column_facts(self.ctx.table(key), c)

    def _add_constraint(self, i: int, stmt: int, key: str, c: tuple, nn_col: str | None) -> None:
        _constraint_facts(self.ctx.table(key), c)
        _, conname, _, not_valid, _ = c
        if nn_col is not None:
            if conname:
                self.ctx.not_null_checks[(key, conname)] = nn_col
            if not not_valid:
                self.ctx.validated_not_null.add((key, nn_col))

    def _validate(self, i: int, stmt: int, key: str, name: str) -> None:
        col = self.ctx.not_null_checks.get((key, name))
        if col is not None:
            self.ctx.validated_not_null.add((key, col))

    def _set_not_null(self, i: int, stmt: int, key: str, col: str, f: LintFinding | None) -> None:
        if (key, col) not in self.ctx.validated_not_null:
            self.emit(stmt, f)
        self.ctx.table(key).columns[col] = True

    def _drop_not_null(self, i: int, stmt: int, key: str, col: str, f: LintFinding | None) -> None:
        t = self._facts(key)
        if t is None or t.columns.get(col) is not False:  # a column declared nullable relaxes nothing
            self.emit(stmt, f)
        self.ctx.table(key).columns[col] = False

    def _drop_default(self, i: int, stmt: int, key: str, col: str, known: LintFinding | None, assumed: LintFinding | None) -> None:
        t = self._facts(key)
        not_null = t.columns.get(col) if t is not None else None
        if not_null is None:
            self.emit(stmt, assumed)
        elif not_null:
            self.emit(stmt, known)
        # nullable, as declared earlier: INSERTs without the column store NULL, not an error

    def _drop_constraint(self, i: int, stmt: int, key: str, name: str, why: str, f: LintFinding | None) -> None:
        col = self.ctx.not_null_checks.get((key, name))
        t = self._facts(key)
        if col is not None and t is not None and t.columns.get(col):
            return
        self.classes[i] = ("expand", why)
        self.emit(stmt, f)

    def _drop_column(self, i: int, stmt: int, key: str, col: str) -> None:
        t = self._facts(key)
        if t is not None:
            t.columns.pop(col, None)
            t.unique.discard(col)

    def _drop_table(self, i: int, stmt: int, key: str) -> None:
        self.ctx.tables.pop(key, None)

    def _rename_column(self, i: int, stmt: int, key: str, old: str, new: str) -> None:
        t = self._facts(key)
        if t is not None and old in t.columns:
            t.columns[new] = t.columns.pop(old)
            if old in t.unique:
                t.unique.discard(old)
                t.unique.add(new)

    def _rename_table(self, i: int, stmt: int, key: str, new: str) -> None:
        if key in self.ctx.tables:
            self.ctx.tables[new] = self.ctx.tables.pop(key)

    def _insert_rows(self, i: int, stmt: int, key: str, n: int | None, file: str) -> None:
        t = self._facts(key)
        if t is not None and t.rows is not None:
            t.rows = None if n is None else t.rows + n
            t.seeded_in = file

    def _truncate_rows(self, i: int, stmt: int, key: str) -> None:
        t = self._facts(key)
        if t is not None and t.rows is not None:
            t.rows = 0

    def _dml(
        self, i: int, stmt: int, key: str, schema: str | None, shown: str, created: bool, eq: list[str],
        prefix: str | None, default: str, f: LintFinding | None,
    ) -> None:  # fmt: skip
        reason = self._exemption(key, schema, shown, created, eq)
        if reason is None:
            self.classes[i] = ("data-dependent", default)
            self.emit(stmt, f)
        else:
            self.classes[i] = ("data-dependent", f"{prefix} {reason}" if prefix else default)

    def _exemption(self, key: str, schema: str | None, shown: str, created: bool, eq: list[str]) -> str | None:
        """Why a data change is not a backfill: a system catalog, a one-row table, one row by its key."""
        t = self._facts(key)
        if schema in CATALOG_SCHEMAS or (not schema and key.startswith("pg_") and t is None and not created):
            return f"system catalog {shown} (a direct catalog edit: its effect is opaque to lint)"
        if t is not None and t.singleton:
            return f"the one-row table {shown}"
        if t is not None and t.rows == 1:
            return f"the one-row table {shown} (created and seeded with one row in {t.seeded_in})"
        unique = t.unique if t is not None else {"id"}
        for col in eq:
            if col in unique:
                return f"one row of {shown} (by its key {col})"
        return None


class _SpecState:
    """Spec suppressions across the files of one lint: which matched a file, which were used."""

    def __init__(self) -> None:
        self.used: dict[int, int] = {}
        self.matched: set[int] = set()
        self.expired_reported: set[int] = set()

    def for_file(self, file: str, config: LintConfig) -> tuple[list[tuple[int, Suppression]], list[LintFinding]]:
        out, expired = [], []
        for i, s in enumerate(config.suppressions):
            if not _matches(s.file, file):
                continue
            self.matched.add(i)
            if config.today is not None and s.expires < config.today:
                if i not in self.expired_reported and "suppression-expired" not in config.disabled:
                    self.expired_reported.add(i)
                    r = RULES["suppression-expired"]
                    expired.append(
                        LintFinding(
                            file, 1, "suppression-expired", config.severity_of("suppression-expired"),
                            f"spec suppressions[{i}] ({s.rule} for {s.file}, reason: {s.reason!r}) expired on "
                            f"{s.expires.isoformat()}, so it no longer suppresses. {r.why}", r.fix,
                        )
                    )  # fmt: skip
                continue
            out.append((i, s))
        return out, expired


def _finish_file(res: _FileResult, config: LintConfig, ctx: LintContext, report: LintReport, spec: _SpecState) -> None:
    """Fold one file's result into the report, in apply order: context operations, then suppressions."""
    fold = _Fold(ctx)
    fold.apply(res.ops)
    spec_dirs, findings = spec.for_file(res.file, config)
    findings.extend(res.meta)
    for idx, f in sorted(res.raw + fold.raw, key=lambda x: x[0]):
        accepted = None
        for d in res.directives:
            if f.rule in d.rules and (d.targets is None or idx in d.targets):
                d.used += 1
                accepted = Suppressed(f, d.reason, d.expires, f"inline {res.file}:{d.line}")
                break
        if accepted is None:
            for i, s in spec_dirs:
                if s.rule == f.rule:
                    spec.used[i] = spec.used.get(i, 0) + 1
                    accepted = Suppressed(f, s.reason, s.expires, f"spec suppressions[{i}]")
                    break
        if accepted is not None:
            report.suppressed.append(accepted)
        else:
            findings.append(f)
    for d in res.directives:
        if not d.used and "suppression-unused" not in config.disabled:
            findings.append(
                LintFinding(
                    res.file, d.line, "suppression-unused", config.severity_of("suppression-unused"),
                    f"`vigil:ignore {','.join(d.rules)}` matched no finding. {RULES['suppression-unused'].why}",
                    RULES["suppression-unused"].fix,
                )
            )  # fmt: skip
    report.findings.extend(findings)
    report.statements += res.statements
    classes = [c if isinstance(c, tuple) else fold.classes.get(c) for c in res.classes]
    cls, why = _class(res.parsed, [c for c in classes if c is not None])
    report.migrations.append(MigrationClass(res.file, cls, why, res.statements, res.transaction))


def _class(parsed: bool, classes: list[tuple[str, str]]) -> tuple[str, str]:
    if not parsed:
        return "unknown", "the file does not parse, so it cannot be classified"
    by: dict[str, list[str]] = {}
    for c, why in classes:
        lst = by.setdefault(c, [])
        if why not in lst:
            lst.append(why)

    def some(c: str) -> str:
        items = by[c]
        return "; ".join(items[:5]) + (f"; and {len(items) - 5} more" if len(items) > 5 else "")

    if "contract" in by:
        why = some("contract")
        if "expand" in by:
            why += (
                f". It also expands ({some('expand')}): it mixes expand and contract; split it so the expand "
                "ships before the new code and the contract after the old code is gone"
            )
        return "contract", why
    if "data-dependent" in by:
        return "data-dependent", some("data-dependent")
    if "expand" in by:
        return "expand", some("expand")
    return "expand", "no schema change"


# --- running files, in worker processes when it pays ------------------------------------------------

PARALLEL_MIN_FILES = 48
PARALLEL_MIN_CHARS = 192 * 1024
"""Below this much SQL a lint stays in one process: starting workers would cost more than it saves
(measured with benchmarks/migrate_lint.py)."""


def plan_jobs(files: Sequence[tuple[str, str]], jobs: int | None = None) -> int:
    """How many processes lint ``files``: ``jobs`` when given (1: this process only), else the
    CPUs this process may use and nothing else is using (at most 4) when there are at least
    :data:`PARALLEL_MIN_FILES` files and :data:`PARALLEL_MIN_CHARS` characters of SQL, else 1.
    (On a machine whose CPUs are all busy, workers only add their start-up and the copying of
    results: measured with benchmarks/migrate_lint.py.)"""
    import os

    if jobs is not None:
        return max(1, jobs)
    if len(files) < PARALLEL_MIN_FILES or sum(len(t) for _, t in files) < PARALLEL_MIN_CHARS:
        return 1
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    try:
        idle = cpus - os.getloadavg()[0]
    except (AttributeError, OSError):  # pragma: no cover - no load average here
        idle = cpus
    return max(1, min(cpus, 4, int(idle + 0.5)))


def _run_one(name: str, sql: str, config: LintConfig) -> _FileResult:
    return _FileLinter(name, sql, config).run()


def _run_files(files: list[tuple[str, str]], config: LintConfig, jobs: int | None) -> Iterable[_FileResult]:
    """Every file's result, in the files' order: here, or split into ``n`` contiguous parts of about
    equal size, the first linted by this process and each other one by a forked child that sends
    its results back through a pipe (marshal: plain data, no pickling of objects). A child that
    fails has its part linted here instead, so the report never depends on how it was split."""
    import os

    n = plan_jobs(files, jobs)
    if n <= 1 or len(files) < 2 or not hasattr(os, "fork"):
        return (_run_one(name, sql, config) for name, sql in files)
    n = min(n, len(files))
    total = sum(len(t) for _, t in files)
    parts: list[list[tuple[str, str]]] = [[] for _ in range(n)]
    size = 0
    for item in files:
        parts[min(n - 1, size * n // max(total, 1))].append(item)
        size += len(item[1])
    parts = [p for p in parts if p]
    children: list[tuple[int, int, list[tuple[str, str]]]] = []
    try:
        for part in parts[1:]:
            children.append(_fork_part(part, config))
        results = [_run_one(name, sql, config) for name, sql in parts[0]]
        for pid, fd, part in children:
            results.extend(_collect(pid, fd, part, config))
        children = []
    finally:
        for pid, fd, _ in children:  # interrupted: do not leave children behind
            _reap(pid, fd, kill=True)
    return results


def _fork_part(part: list[tuple[str, str]], config: LintConfig) -> tuple[int, int, list[tuple[str, str]]]:
    import marshal
    import os

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: lint, send, and leave without running the parent's clean-ups
        code = 1
        try:
            os.close(r)
            data = marshal.dumps([_pack(_run_one(name, sql, config)) for name, sql in part])
            with os.fdopen(w, "wb") as f:
                f.write(data)
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    return pid, r, part


def _collect(pid: int, fd: int, part: list[tuple[str, str]], config: LintConfig) -> list[_FileResult]:
    import marshal
    import os

    with os.fdopen(fd, "rb") as f:
        data = f.read()
    status = _reap(pid, None)
    if status == 0 and data:
        try:
            return [_unpack(x) for x in marshal.loads(data)]
        except (ValueError, EOFError, TypeError):  # pragma: no cover - a truncated message
            pass
    return [_run_one(name, sql, config) for name, sql in part]  # the child failed: lint its part here


def _reap(pid: int, fd: int | None, *, kill: bool = False) -> int:
    import os
    import signal

    if fd is not None:
        try:
            os.close(fd)
        except OSError:
            pass
    if kill:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    try:
        return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    except ChildProcessError:  # pragma: no cover - already reaped
        return -1


_F = "\x00finding"


def _pack_finding(f: LintFinding) -> tuple:
    return (_F, f.file, f.line, f.rule, f.severity, f.message, f.fix, f.column)


def _unpack_finding(t: tuple) -> LintFinding:
    return LintFinding(t[1], t[2], t[3], t[4], t[5], t[6], t[7])


def _pack(r: _FileResult) -> tuple:
    """A result as plain data for marshal."""
    ops = [tuple(_pack_finding(a) if isinstance(a, LintFinding) else a for a in op) for op in r.ops]
    dirs = [(d.line, d.rules, d.reason, d.expires.isoformat(), d.targets, d.used) for d in r.directives]
    return (
        r.file, [_pack_finding(f) for f in r.meta], [(i, _pack_finding(f)) for i, f in r.raw], r.classes, ops, dirs,
        r.statements, r.parsed, r.transaction,
    )  # fmt: skip


def _unpack(t: tuple) -> _FileResult:
    file, meta, raw, classes, ops, dirs, statements, parsed, transaction = t
    ops = [tuple(_unpack_finding(a) if isinstance(a, tuple) and a[:1] == (_F,) else a for a in op) for op in ops]
    directives = [_Directive(line, tuple(rules), reason, _dt.date.fromisoformat(exp), targets, used) for line, rules, reason, exp, targets, used in dirs]
    return _FileResult(
        file, [_unpack_finding(f) for f in meta], [(i, _unpack_finding(f)) for i, f in raw],
        [tuple(c) if isinstance(c, list) else c for c in classes], ops, directives, statements, parsed, transaction,
    )  # fmt: skip


def _kind_text(kind: str) -> str:
    return {
        "AlterTableStmt": "plain ALTER TABLE",
        "IndexStmt": "CREATE INDEX without CONCURRENTLY",
        "DropStmt": "DROP without CONCURRENTLY",
        "ReindexStmt": "REINDEX without CONCURRENTLY",
    }.get(kind, re.sub(r"(?<!^)(?=[A-Z])", " ", kind.removesuffix("Stmt")).upper() + " statement")


def _base_type(typ: str) -> str:
    return {"serial": "integer", "serial4": "integer", "bigserial": "bigint", "serial8": "bigint",
            "smallserial": "smallint", "serial2": "smallint"}.get(typ.lower(), typ)  # fmt: skip


def _volatility(expr: Any) -> tuple[str | None, str | None]:
    """(a volatile function called, a function of unknown volatility called) in a default expression."""
    unknown = None
    for k, n in pgjson.walk(expr):
        if k != "FuncCall":
            continue
        fname = names(n.get("funcname", [])).rsplit(".", 1)[-1].lower()
        if fname in VOLATILE_FUNCTIONS:
            return fname, None
        if fname not in NONVOLATILE_FUNCTIONS and unknown is None:
            unknown = fname
    return None, unknown


def _parse_error(e: BaseException) -> tuple[str, int | None]:
    args: Sequence[Any] = getattr(e, "args", ())
    msg = str(args[0]) if args else str(e) or type(e).__name__
    where = args[1] if len(args) > 1 and isinstance(args[1], int) else None
    if not msg:
        msg = type(e).__name__
    if where is None:
        m = re.search(r"at index (\d+)", str(e))
        where = int(m.group(1)) if m else None
    msg = " ".join(msg.split())
    return (msg if len(msg) <= 300 else msg[:300] + "..."), where
