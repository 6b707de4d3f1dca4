"""``vigil migrate lint``: static safety rules over SQL migrations, parsed by pglast.

The core (:func:`lint_sql`, :func:`lint_texts`) is pure: text in, findings out, no I/O and no clock
(``today`` is an argument). :func:`lint_paths` and :func:`lint_migrations` read files and call it.

Each migration is classified:

* ``expand``: additive; the running app version keeps working (new table, nullable column,
  concurrent index, relaxed constraint).
* ``contract``: removes or tightens something the running app may use (drop, rename, type change,
  NOT NULL, new constraint, required column). A migration that mixes both is a ``contract`` and its
  ``why`` says so: ship the expand part before the code and the contract part after it.
* ``data-dependent``: its effect or duration depends on the rows present (UPDATE, DELETE,
  INSERT ... SELECT, CREATE TABLE AS, VALIDATE CONSTRAINT, DO blocks).
* ``unknown``: the file did not parse.

Rules and their fixes are in :mod:`vigil.deploy.migrations.rules`.
"""

from __future__ import annotations

import bisect
import datetime as _dt
import fnmatch
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vigil.deploy.migrations.files import (
    parse_sql,
    FILE_RE,
    Migration,
    MigrationFileError,
    has_no_transaction,
    read_sql_file,
)
from vigil.deploy.migrations.rules import RULES, Rule
from vigil.deploy.migrations.spec import MAX_MIGRATION_BYTES, MigrationsSpec, Suppression

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

_DIRECTIVE = re.compile(r"^(?:--|/\*)\s*vigil:([A-Za-z_-]*)(.*?)(?:\*/)?\s*$", re.DOTALL)
_KV = re.compile(r"""\s*([A-Za-z_]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|(\S+))""")


# --- results ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
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

    finding: Finding
    reason: str
    expires: _dt.date
    source: str  # "inline <file>:<line>" or "spec suppressions[i]"

    def to_dict(self) -> dict:
        d = self.finding.to_dict()
        d.update(reason=self.reason, expires=self.expires.isoformat(), source=self.source)
        return d


@dataclass
class LintReport:
    findings: list[Finding] = field(default_factory=list)
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
    runner_lock_timeout: bool = False
    """The runner sets lock_timeout before each migration (``migrations.lock_timeout``)."""
    runner_statement_timeout: bool = False
    suppressions: tuple[Suppression, ...] = ()
    today: _dt.date | None = None
    """For suppression expiry; None: nothing expires (tests, libraries that do not care)."""

    @classmethod
    def from_spec(cls, spec: MigrationsSpec | None, *, today: _dt.date | None = None) -> LintConfig:
        if spec is None:
            return cls(today=today)
        return cls(
            disabled=frozenset(spec.lint.disable),
            severity=dict(spec.lint.severity),
            runner_lock_timeout=spec.lock_timeout is not None,
            runner_statement_timeout=spec.statement_timeout is not None,
            suppressions=tuple(spec.suppressions),
            today=today,
        )

    def severity_of(self, rule: str) -> str:
        return self.severity.get(rule) or RULES[rule].severity


@dataclass
class LintContext:
    """State carried from one migration to the next when a directory is linted in order."""

    validated_not_null: set[tuple[str, str]] = field(default_factory=set)
    """(table, column) pairs proven NOT NULL by a validated CHECK (col IS NOT NULL)."""
    not_null_checks: dict[tuple[str, str], str] = field(default_factory=dict)
    """(table, constraint name) -> column, for CHECK (col IS NOT NULL) constraints added NOT VALID."""


# --- entry points ---------------------------------------------------------------------------------


def lint_sql(sql: str, file: str = "<sql>", config: LintConfig | None = None, context: LintContext | None = None) -> LintReport:
    """Lint one migration's SQL text. Never raises for any input text."""
    return lint_texts([(file, sql)], config, context)


def lint_texts(
    files: Iterable[tuple[str, str]], config: LintConfig | None = None, context: LintContext | None = None
) -> LintReport:
    """Lint migrations given as ``(display name, SQL text)`` in apply order. Pure."""
    config = config or LintConfig()
    context = context if context is not None else LintContext()
    report = LintReport()
    spec_used: dict[int, int] = {}
    spec_matched: set[int] = set()
    spec_expired_reported: set[int] = set()
    for name, sql in files:
        _FileLinter(name, sql, config, context, report, spec_used, spec_matched, spec_expired_reported).run()
    for i in sorted(spec_matched):
        if not spec_used.get(i) and i not in spec_expired_reported and "suppression-unused" not in config.disabled:
            s = config.suppressions[i]
            f = _first_file_matching(report, s.file)
            report.findings.append(
                Finding(
                    f or s.file, 1, "suppression-unused", config.severity_of("suppression-unused"),
                    f"spec suppressions[{i}] ({s.rule} for {s.file}) matched no finding. {RULES['suppression-unused'].why}",
                    RULES["suppression-unused"].fix + f" Delete suppressions[{i}] from the spec.",
                )
            )  # fmt: skip
    order = {m.file: i for i, m in enumerate(report.migrations)}
    report.findings.sort(key=lambda f: (order.get(f.file, len(order)), f.line, f.column, f.rule))
    return report


def lint_migrations(migrations: Sequence[Migration], config: LintConfig | None = None, *, display: Any = None) -> LintReport:
    """Lint loaded migrations (their up SQL) in order. ``display(path) -> str`` names files in findings."""
    show = display or str
    return lint_texts(((show(m.path), m.up_sql) for m in migrations), config)


def lint_paths(paths: Sequence[str | Path], config: LintConfig | None = None, *, display: Any = None) -> LintReport:
    """Lint files and directories (every ``*.sql`` but ``*.down.sql`` in a directory, not recursive).

    A file that cannot be read becomes a ``file-invalid`` finding. Raises ``FileNotFoundError`` for a
    path that does not exist (the CLI reports it as a usage error).
    """
    show = display or str
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files.extend(sorted((x for x in p.iterdir() if x.name.endswith(".sql") and not x.name.endswith(".down.sql")), key=_order_key))
        elif p.exists():
            files.append(p)
        else:
            raise FileNotFoundError(str(p))
    texts: list[tuple[str, str]] = []
    for p in files:
        try:
            texts.append((show(p), read_sql_file(p, max_bytes=MAX_MIGRATION_BYTES)))
        except MigrationFileError as e:
            texts.append((show(p), _Unreadable("; ".join(x.split(": ", 1)[-1] for x in e.problems))))
    return lint_texts(texts, config)


class _Unreadable(str):
    """A placeholder 'text' for a file that could not be read; the message is the reason."""


def _order_key(p: Path) -> tuple:
    m = FILE_RE.match(p.name)
    return (0, int(m.group("version")), p.name) if m else (1, 0, p.name)


def _first_file_matching(report: LintReport, pattern: str) -> str | None:
    for m in report.migrations:
        if _matches(pattern, m.file):
            return m.file
    return None


def _matches(pattern: str, file: str) -> bool:
    return fnmatch.fnmatchcase(Path(file).name, pattern) or fnmatch.fnmatchcase(file.replace("\\", "/"), pattern)


# --- parsing --------------------------------------------------------------------------------------


def _iter_nodes(root: Any) -> Iterator[Any]:
    """Every pglast node under ``root`` (itself included), iteratively: no recursion limit."""
    from pglast.ast import Node

    stack = [root]
    while stack:
        n = stack.pop()
        if isinstance(n, Node):
            yield n
            for slot in n.__slots__:
                v = getattr(n, slot, None)
                if isinstance(v, (Node, tuple, list)):
                    stack.append(v)
        elif isinstance(n, (tuple, list)):
            stack.extend(n)


def _sql(node: Any) -> str | None:
    """A node deparsed to SQL, or None when it cannot be (deep or odd trees)."""
    try:
        from pglast.stream import RawStream

        text = RawStream()(node)
        return text if len(text) <= 2000 else None
    except Exception:  # RecursionError included: fixes are best effort
        return None


def _name(parts: Any) -> str:
    if isinstance(parts, (tuple, list)):
        return ".".join(str(getattr(p, "sval", p)) for p in parts)
    return str(parts)


def _rel(rv: Any) -> str:
    if rv is None:
        return "?"
    return f"{rv.schemaname}.{rv.relname}" if getattr(rv, "schemaname", None) else str(rv.relname)


def _key(rv: Any) -> str:
    return str(getattr(rv, "relname", "") or "")


def _q(ident: str) -> str:
    return ident if re.fullmatch(r"[a-z_][a-z0-9_$]*", ident) else '"' + ident.replace('"', '""') + '"'


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


class _FileLinter:
    def __init__(
        self,
        file: str,
        sql: str,
        config: LintConfig,
        context: LintContext,
        report: LintReport,
        spec_used: dict[int, int],
        spec_matched: set[int],
        spec_expired_reported: set[int],
    ) -> None:
        self.file = file
        self.sql = sql
        self.config = config
        self.ctx = context
        self.report = report
        self.spec_used = spec_used
        self.spec_matched = spec_matched
        self.spec_expired_reported = spec_expired_reported
        self.raw: list[tuple[int, Finding]] = []  # (statement index, finding) before suppressions
        self.meta: list[Finding] = []  # findings about the file or its directives (never suppressed)
        self.classes: list[tuple[str, str]] = []
        self.created: set[str] = set()
        self.timeouts_set = {t: False for t in TIMEOUTS}
        self.timeout_reported = {t: False for t in TIMEOUTS}
        self.no_transaction = False
        self.mixed_reported = False
        self.stmt_index = 0
        self.stmt_start = 0
        self.base = 0  # where the text the parser saw starts (non-zero only when statements are parsed one by one)
        self._nl: list[int] = []

    # positions
    def pos(self, offset: int | None) -> tuple[int, int]:
        if offset is None or offset < 0:
            offset = self.stmt_start
        offset = min(offset, len(self.sql))
        i = bisect.bisect_right(self._nl, offset - 1)
        line_start = self._nl[i - 1] + 1 if i else 0
        return i + 1, offset - line_start + 1

    def add(self, rule: str, message: str, fix: str | None = None, *, at: int | None = None, meta: bool = False) -> None:
        if rule in self.config.disabled:
            return
        r: Rule = RULES[rule]
        line, col = self.pos(None if at is None else at + self.base)
        f = Finding(
            self.file, line, rule, self.config.severity_of(rule), f"{message}. {r.why}", fix or r.fix, col
        )
        if meta or r.locked:
            self.meta.append(f)
        else:
            self.raw.append((self.stmt_index, f))

    def classify(self, cls: str, why: str) -> None:
        self.classes.append((cls, why))

    # the run
    def run(self) -> None:
        if isinstance(self.sql, _Unreadable):
            self.add("file-invalid", f"cannot read the file: {str.__str__(self.sql)}", meta=True, at=0)
            self._finish(0, parsed=False)
            return
        self._nl = [i for i, c in enumerate(self.sql) if c == "\n"] if "\n" in self.sql else []
        self.no_transaction = has_no_transaction(self.sql)
        try:
            units = [(0, s) for s in parse_sql(self.sql)]
            parsed = True
        except Exception as e:
            units, parsed = self._salvage(e), False
        starts = [base + (raw.stmt_location or 0) for base, raw in units]
        for i, (base, raw) in enumerate(units):
            self.stmt_index = i
            self.stmt_start = starts[i]
            self.base = base
            try:
                self._statement(raw.stmt)
            except RecursionError:  # pragma: no cover - the walkers are iterative; belt and braces
                pass
        self._finish(len(units), parsed=parsed, starts=starts)

    def _salvage(self, first: BaseException) -> list[tuple[int, Any]]:
        """After a parse error: split on the scanner's ';' tokens and parse each statement alone,
        so one typo does not hide the findings of every other statement."""
        from pglast import parser

        try:
            tokens = parser.scan(self.sql)
        except Exception:
            tokens = None
        if tokens is None:
            msg, where = _parse_error(first)
            self.add("parse-error", f"PostgreSQL cannot parse this: {msg}", meta=True, at=where)
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
        units: list[tuple[int, Any]] = []
        for a, b in segments:
            try:
                units.extend((a, raw) for raw in parse_sql(self.sql[a:b]))
            except Exception as e:
                msg, where = _parse_error(e)
                self.add(
                    "parse-error", f"PostgreSQL cannot parse this statement: {msg}", meta=True,
                    at=a + (where if where is not None else 0),
                )  # fmt: skip
        if not any(f.rule == "parse-error" for f in self.meta):  # the whole text failed but no piece did
            msg, where = _parse_error(first)
            self.add("parse-error", f"PostgreSQL cannot parse this: {msg}", meta=True, at=where)
        return units

    def _finish(self, n: int, *, parsed: bool, starts: list[int] | None = None) -> None:
        directives = self._directives(starts) if starts and "vigil:" in self.sql else []
        spec_dirs = self._spec_suppressions()
        findings: list[Finding] = list(self.meta)
        for idx, f in self.raw:
            accepted = None
            for d in directives:
                if f.rule in d.rules and (d.targets is None or idx in d.targets):
                    d.used += 1
                    accepted = Suppressed(f, d.reason, d.expires, f"inline {self.file}:{d.line}")
                    break
            if accepted is None:
                for i, s in spec_dirs:
                    if s.rule == f.rule:
                        self.spec_used[i] = self.spec_used.get(i, 0) + 1
                        accepted = Suppressed(f, s.reason, s.expires, f"spec suppressions[{i}]")
                        break
            if accepted is not None:
                self.report.suppressed.append(accepted)
            else:
                findings.append(f)
        for d in directives:
            if not d.used and "suppression-unused" not in self.config.disabled:
                line = d.line
                findings.append(
                    Finding(
                        self.file, line, "suppression-unused", self.config.severity_of("suppression-unused"),
                        f"`vigil:ignore {','.join(d.rules)}` matched no finding. {RULES['suppression-unused'].why}",
                        RULES["suppression-unused"].fix,
                    )
                )  # fmt: skip
        self.report.findings.extend(findings)
        self.report.statements += n
        cls, why = self._class(parsed)
        self.report.migrations.append(MigrationClass(self.file, cls, why, n, not self.no_transaction))

    def _class(self, parsed: bool) -> tuple[str, str]:
        if not parsed:
            return "unknown", "the file does not parse, so it cannot be classified"
        by: dict[str, list[str]] = {}
        for c, why in self.classes:
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

    # suppressions
    def _spec_suppressions(self) -> list[tuple[int, Suppression]]:
        out = []
        for i, s in enumerate(self.config.suppressions):
            if not _matches(s.file, self.file):
                continue
            self.spec_matched.add(i)
            if self.config.today is not None and s.expires < self.config.today:
                if i not in self.spec_expired_reported:
                    self.spec_expired_reported.add(i)
                    self.meta_finding(
                        "suppression-expired", 1,
                        f"spec suppressions[{i}] ({s.rule} for {s.file}, reason: {s.reason!r}) expired on "
                        f"{s.expires.isoformat()}, so it no longer suppresses",
                    )  # fmt: skip
                continue
            out.append((i, s))
        return out

    def meta_finding(self, rule: str, line: int, message: str, fix: str | None = None) -> None:
        r = RULES[rule]
        self.report.findings.append(
            Finding(self.file, line, rule, self.config.severity_of(rule), f"{message}. {r.why}", fix or r.fix)
        ) if rule not in self.config.disabled else None

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
    def _statement(self, stmt: Any) -> None:
        kind = type(stmt).__name__
        handler = getattr(self, "_s_" + kind, None)
        if self.no_transaction and not self.mixed_reported and kind not in ("VariableSetStmt", "IndexStmt", "DropStmt", "ReindexStmt"):
            self._mixed(kind)
        if handler is not None:
            handler(stmt)
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

    def _s_VariableSetStmt(self, s: Any) -> None:
        name = (s.name or "").lower()
        if name not in TIMEOUTS:
            return
        from pglast.enums import VariableSetKind

        on = False
        if s.kind == VariableSetKind.VAR_SET_VALUE and s.args:
            v = getattr(s.args[0], "val", None)
            val = getattr(v, "ival", None)
            if val is None:
                val = getattr(v, "sval", None)
            on = str(val).strip().lower() not in ("0", "", "none", "0ms", "0s", "0min")
        if s.is_local and self.no_transaction:
            on = False  # SET LOCAL outside a transaction block has no effect
        self.timeouts_set[name] = on

    def _s_TransactionStmt(self, s: Any) -> None:
        kind = s.kind.name.removeprefix("TRANS_STMT_").replace("_", " ")
        self.add("explicit-transaction", f"{kind} inside a migration file")

    def _s_IndexStmt(self, s: Any) -> None:
        table = _rel(s.relation)
        idx = s.idxname or "(unnamed)"
        if s.concurrent:
            self.classify("expand", f"creates index {idx} concurrently")
            if not self.no_transaction:
                self.add(
                    "concurrently-in-transaction",
                    f"CREATE INDEX CONCURRENTLY {idx} runs inside the migration's transaction",
                    "Move it to its own migration file whose first line is `-- vigil:no-transaction`.",
                )
            return
        self.classify("expand", f"creates index {idx}")
        if self.no_transaction and not self.mixed_reported:
            self._mixed("IndexStmt")
        if _key(s.relation) in self.created:
            return
        self._locking(f"CREATE INDEX {idx}")
        rewrite = None
        s.concurrent = True
        try:
            rewrite = _sql(s)
        finally:
            s.concurrent = False
        self.add(
            "index-not-concurrent",
            f"CREATE {'UNIQUE ' if s.unique else ''}INDEX {idx} on existing table {table} without CONCURRENTLY",
            RULES["index-not-concurrent"].fix + (f" Rewrite: `{rewrite};`" if rewrite else ""),
            at=getattr(s.relation, "location", None),
        )

    def _s_ReindexStmt(self, s: Any) -> None:
        concurrent = any(getattr(p, "defname", "") == "concurrently" for p in (s.params or ()))
        target = _rel(s.relation) if s.relation is not None else str(s.name or "")
        if concurrent:
            if not self.no_transaction:
                self.add(
                    "concurrently-in-transaction", f"REINDEX CONCURRENTLY {target} runs inside the migration's transaction",
                    "Move it to its own migration file whose first line is `-- vigil:no-transaction`.",
                )  # fmt: skip
            return
        if self.no_transaction and not self.mixed_reported:
            self._mixed("ReindexStmt")
        self._locking(f"REINDEX {target}")
        self.add(
            "index-not-concurrent",
            f"REINDEX {target} without CONCURRENTLY blocks writes (and reads through the index) for the whole rebuild",
            f"REINDEX (CONCURRENTLY) ... {target} in a `-- vigil:no-transaction` migration.",
        )

    def _s_CreateStmt(self, s: Any) -> None:
        self.created.add(_key(s.relation))
        self.classify("expand", f"creates table {_rel(s.relation)}")
        for n in _iter_nodes(s.tableElts or ()):
            if type(n).__name__ == "Constraint" and n.contype.name == "CONSTR_FOREIGN" and _key(n.pktable) not in self.created:
                self._locking(f"CREATE TABLE {_rel(s.relation)} with a foreign key to {_rel(n.pktable)}")
                break

    def _s_CreateTableAsStmt(self, s: Any) -> None:
        rel = s.into.rel if s.into is not None else None
        self.created.add(_key(rel))
        self.classify("data-dependent", f"creates {_rel(rel)} from a query (copies data)")

    def _s_InsertStmt(self, s: Any) -> None:
        sel = s.selectStmt
        if sel is not None and getattr(sel, "valuesLists", None) and not getattr(sel, "fromClause", None):
            self.classify("expand", f"inserts rows into {_rel(s.relation)}")
            return
        if _key(s.relation) in self.created:
            self.classify("data-dependent", f"fills new table {_rel(s.relation)} from a query")
            return
        self.classify("data-dependent", f"INSERT ... SELECT into {_rel(s.relation)}")
        self.add("backfill-in-migration", f"INSERT ... SELECT into {_rel(s.relation)} in the migration")

    def _s_UpdateStmt(self, s: Any) -> None:
        where = "" if s.whereClause is not None else " without WHERE (every row)"
        self.classify("data-dependent", f"updates {_rel(s.relation)}{where}")
        if _key(s.relation) not in self.created:
            self.add("backfill-in-migration", f"UPDATE {_rel(s.relation)}{where} in the migration")

    def _s_DeleteStmt(self, s: Any) -> None:
        where = "" if s.whereClause is not None else " without WHERE (every row)"
        self.classify("data-dependent", f"deletes from {_rel(s.relation)}{where}")
        if _key(s.relation) not in self.created:
            self.add("backfill-in-migration", f"DELETE FROM {_rel(s.relation)}{where} in the migration")

    def _s_MergeStmt(self, s: Any) -> None:
        self.classify("data-dependent", f"merges into {_rel(s.relation)}")
        if _key(s.relation) not in self.created:
            self.add("backfill-in-migration", f"MERGE INTO {_rel(s.relation)} in the migration")

    def _s_TruncateStmt(self, s: Any) -> None:
        names = [_rel(r) for r in s.relations or () if _key(r) not in self.created]
        if not names:
            return
        self.classify("contract", f"truncates {', '.join(names)}")
        self._locking(f"TRUNCATE {', '.join(names)}")
        self.add("truncate", f"TRUNCATE {', '.join(names)}")

    def _s_LockStmt(self, s: Any) -> None:
        names = [_rel(r) for r in s.relations or () if _key(r) not in self.created]
        if names:
            self._locking(f"LOCK TABLE {', '.join(names)}")

    def _s_CreateTrigStmt(self, s: Any) -> None:
        self.classify("expand", f"creates trigger {s.trigname}")
        if _key(s.relation) not in self.created:
            self._locking(f"CREATE TRIGGER {s.trigname}")

    def _s_DropStmt(self, s: Any) -> None:
        from pglast.enums import ObjectType

        t = s.removeType
        cascade = " CASCADE" if getattr(s.behavior, "name", "") == "DROP_CASCADE" else ""
        names = [_name(getattr(o, "objname", None) or getattr(o, "names", None) or o) for o in s.objects or ()]
        if t == ObjectType.OBJECT_INDEX:
            self.classify("contract", f"drops index {', '.join(names)}")
            if s.concurrent:
                if not self.no_transaction:
                    self.add(
                        "concurrently-in-transaction", f"DROP INDEX CONCURRENTLY {', '.join(names)} runs inside the migration's transaction",
                        "Move it to its own migration file whose first line is `-- vigil:no-transaction`.",
                    )  # fmt: skip
                return
            if self.no_transaction and not self.mixed_reported:
                self._mixed("DropStmt")
            self._locking(f"DROP INDEX {', '.join(names)}")
            self.add(
                "drop-index-not-concurrent", f"DROP INDEX {', '.join(names)} without CONCURRENTLY",
                RULES["drop-index-not-concurrent"].fix
                + f" Rewrite: `DROP INDEX CONCURRENTLY {'IF EXISTS ' if s.missing_ok else ''}{', '.join(map(_qrel, names))};`",
            )  # fmt: skip
            return
        if self.no_transaction and not self.mixed_reported:
            self._mixed("DropStmt")
        kinds = {
            ObjectType.OBJECT_TABLE: "table", ObjectType.OBJECT_VIEW: "view",
            ObjectType.OBJECT_MATVIEW: "materialized view", ObjectType.OBJECT_FOREIGN_TABLE: "foreign table",
        }  # fmt: skip
        existing = [n for n in names if n.rsplit(".", 1)[-1] not in self.created]
        if t in kinds:
            if not existing:
                self.classify("expand", f"drops {kinds[t]} created in this migration")
                return
            self.classify("contract", f"drops {kinds[t]} {', '.join(existing)}")
            self._locking(f"DROP {kinds[t].upper()} {', '.join(existing)}")
            self.add("drop-table", f"DROP {kinds[t].upper()} {', '.join(existing)}{cascade}")
            return
        what = t.name.removeprefix("OBJECT_").lower().replace("_", " ")
        self.classify("contract", f"drops {what} {', '.join(names)}")
        self.add("drop-object", f"DROP {what.upper()} {', '.join(names)}{cascade}")

    def _s_RenameStmt(self, s: Any) -> None:
        from pglast.enums import ObjectType

        t = s.renameType
        if t == ObjectType.OBJECT_COLUMN:
            table = _rel(s.relation)
            if _key(s.relation) in self.created:
                return
            self.classify("contract", f"renames column {table}.{s.subname} to {s.newname}")
            self._locking(f"ALTER TABLE {table} RENAME COLUMN")
            self.add(
                "rename-column",
                f"renames column {table}.{s.subname} to {s.newname}",
                RULES["rename-column"].fix
                + f" Expand: `ALTER TABLE {_qrel(table)} ADD COLUMN {_q(s.newname)} <type>;` and write both columns; "
                f"contract later: `ALTER TABLE {_qrel(table)} DROP COLUMN {_q(s.subname)};`.",
            )
        elif t in (ObjectType.OBJECT_TABLE, ObjectType.OBJECT_VIEW, ObjectType.OBJECT_MATVIEW):
            table = _rel(s.relation)
            if _key(s.relation) in self.created:
                self.created.add(s.newname)
                return
            self.classify("contract", f"renames {table} to {s.newname}")
            self._locking(f"ALTER TABLE {table} RENAME")
            self.add(
                "rename-table",
                f"renames {table} to {s.newname}",
                RULES["rename-table"].fix
                + f" A bridge for the old code: `ALTER TABLE {_qrel(table)} RENAME TO {_q(s.newname)}; "
                f"CREATE VIEW {_qrel(table)} AS SELECT * FROM {_q(s.newname)};` (simple views are updatable), "
                "dropped in a later contract migration.",
            )

    def _s_AlterTableStmt(self, s: Any) -> None:
        from pglast.enums import AlterTableType as AT
        from pglast.enums import ObjectType

        table = _rel(s.relation)
        key = _key(s.relation)
        new = key in self.created
        if s.objtype != ObjectType.OBJECT_TABLE:
            if not new:
                self._locking(f"ALTER {s.objtype.name.removeprefix('OBJECT_')} {table}")
            return
        if self.no_transaction and not self.mixed_reported:
            self._mixed("AlterTableStmt")
        if not new:
            self._locking(f"ALTER TABLE {table}")
        for cmd in s.cmds or ():
            st = cmd.subtype
            if st == AT.AT_AddColumn:
                self._add_column(table, key, new, cmd.def_)
            elif st == AT.AT_AlterColumnType:
                self.classify("contract", f"changes the type of {table}.{cmd.name}")
                if not new:
                    tn = _sql(cmd.def_.typeName) if cmd.def_ is not None else None
                    self.add(
                        "alter-column-type",
                        f"changes the type of {table}.{cmd.name}" + (f" to {tn}" if tn else ""),
                        RULES["alter-column-type"].fix
                        + f" Expand: `ALTER TABLE {_qrel(table)} ADD COLUMN {_q(cmd.name + '_new')} {tn or '<type>'};`.",
                        at=getattr(cmd.def_, "location", None),
                    )
            elif st == AT.AT_SetNotNull:
                self._not_null(table, key, new, cmd.name)
            elif st == AT.AT_DropNotNull:
                self.classify("expand", f"drops NOT NULL on {table}.{cmd.name}")
            elif st == AT.AT_ColumnDefault:
                if cmd.def_ is None:
                    self.classify("contract", f"drops the default of {table}.{cmd.name}")
                else:
                    self.classify("expand", f"sets a default on {table}.{cmd.name}")
            elif st == AT.AT_AddConstraint:
                self._add_constraint(table, key, new, cmd.def_)
            elif st == AT.AT_ValidateConstraint:
                col = self.ctx.not_null_checks.get((key, cmd.name))
                if col is not None:
                    self.ctx.validated_not_null.add((key, col))
                self.classify("data-dependent", f"validates constraint {cmd.name} against existing rows")
            elif st == AT.AT_DropConstraint:
                self.classify("expand", f"drops constraint {cmd.name} on {table}")
            elif st == AT.AT_DropColumn:
                self.classify("contract", f"drops column {table}.{cmd.name}")
                if not new:
                    self.add(
                        "drop-column",
                        f"drops column {table}.{cmd.name}" + (" CASCADE" if getattr(cmd.behavior, "name", "") == "DROP_CASCADE" else ""),
                    )

    def _add_column(self, table: str, key: str, new: bool, cd: Any) -> None:
        col = cd.colname
        raw_typ = str(getattr(cd.typeName.names[-1], "sval", "")) if cd.typeName is not None and cd.typeName.names else ""
        not_null = bool(cd.is_not_null)
        default = None
        rewrite: str | None = None
        unknown: str | None = None
        inline_unique = inline_check = None
        for c in cd.constraints or ():
            ct = c.contype.name
            if ct == "CONSTR_NOTNULL":
                not_null = True
            elif ct == "CONSTR_DEFAULT":
                default = c.raw_expr
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
        if raw_typ.lower() in SERIAL_TYPES and len(cd.typeName.names) == 1:
            rewrite = f"{raw_typ} draws nextval() for every row"
        if default is not None and rewrite is None:
            vol, unk = _volatility(default)
            if vol:
                rewrite = f"the default calls {vol}(), which is volatile"
            elif unk:
                unknown = unk
        if not_null and default is None and rewrite is None and not new:
            self.classify("contract", f"adds required column {table}.{col} (NOT NULL, no default)")
        else:
            self.classify("expand", f"adds column {table}.{col}")
        if new:
            return
        at = getattr(cd, "location", None)
        typ = (_sql(cd.typeName) or raw_typ or "<type>") if cd.typeName is not None else "<type>"
        if rewrite:
            dflt = _sql(default) if default is not None else None
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
            self.add(
                "add-column-unknown-default",
                f"adds column {table}.{col} with a default that calls {unknown}()",
                at=at,
            )
        if not_null and default is None and rewrite is None:
            self.add(
                "add-column-required",
                f"adds required column {table}.{col} (NOT NULL without a DEFAULT)",
                RULES["add-column-required"].fix
                + f" Rewrite: `ALTER TABLE {_qrel(table)} ADD COLUMN {_q(col)} {typ};` (nullable) and tighten later.",
                at=at,
            )
        if inline_unique:
            self.add(
                "add-unique-constraint",
                f"adds column {table}.{col} with an inline {inline_unique}, which builds its index under the table lock",
                f"Add the column plain, then `CREATE UNIQUE INDEX CONCURRENTLY {_q(key + '_' + col + '_key')} ON {_qrel(table)} ({_q(col)});` "
                f"in a no-transaction migration and `ALTER TABLE {_qrel(table)} ADD CONSTRAINT {_q(key + '_' + col + '_key')} "
                f"UNIQUE USING INDEX {_q(key + '_' + col + '_key')};`.",
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
        if new or (key, col) in self.ctx.validated_not_null:
            return
        c = _q(f"{key}_{col}_not_null")
        self.add(
            "set-not-null",
            f"SET NOT NULL on {table}.{col} with no validated CHECK ({col} IS NOT NULL) before it: lint cannot know "
            "whether the table is empty, so assume it is big",
            f"Migration 1: `ALTER TABLE {_qrel(table)} ADD CONSTRAINT {c} CHECK ({_q(col)} IS NOT NULL) NOT VALID;` "
            f"Migration 2: `ALTER TABLE {_qrel(table)} VALIDATE CONSTRAINT {c};` "
            f"Migration 3: `ALTER TABLE {_qrel(table)} ALTER COLUMN {_q(col)} SET NOT NULL; "
            f"ALTER TABLE {_qrel(table)} DROP CONSTRAINT {c};` (PostgreSQL 12+ skips the scan).",
        )

    def _add_constraint(self, table: str, key: str, new: bool, c: Any) -> None:
        ct = c.contype.name
        name = c.conname or "(unnamed)"
        self.classify("contract", f"adds constraint {name} on {table}")
        at = getattr(c, "location", None)
        if ct == "CONSTR_CHECK":
            e = c.raw_expr
            if (
                type(e).__name__ == "NullTest"
                and e.nulltesttype.name == "IS_NOT_NULL"
                and type(e.arg).__name__ == "ColumnRef"
                and len(e.arg.fields or ()) == 1
                and hasattr(e.arg.fields[0], "sval")
            ):
                col = e.arg.fields[0].sval
                if c.conname:
                    self.ctx.not_null_checks[(key, c.conname)] = col
                if not c.skip_validation:
                    self.ctx.validated_not_null.add((key, col))
        if ct in ("CONSTR_CHECK", "CONSTR_FOREIGN"):
            if c.skip_validation or new:
                return
            kind = "CHECK" if ct == "CONSTR_CHECK" else "FOREIGN KEY"
            rewrite = None
            c.skip_validation = True
            try:
                rewrite = _sql(c)
            finally:
                c.skip_validation = False
            self.add(
                "add-constraint-not-valid",
                f"adds {kind} constraint {name} on existing table {table} without NOT VALID",
                RULES["add-constraint-not-valid"].fix
                + (f" Rewrite: `ALTER TABLE {_qrel(table)} ADD {rewrite};` then, in a later migration, "
                   f"`ALTER TABLE {_qrel(table)} VALIDATE CONSTRAINT {_q(name)};`" if rewrite and c.conname else ""),
                at=at,
            )  # fmt: skip
        elif ct in ("CONSTR_UNIQUE", "CONSTR_PRIMARY", "CONSTR_EXCLUSION"):
            if c.indexname or new:
                return
            cols = ", ".join(_q(getattr(k, "sval", "?")) for k in c.keys or ())
            kind = {"CONSTR_UNIQUE": "UNIQUE", "CONSTR_PRIMARY": "PRIMARY KEY", "CONSTR_EXCLUSION": "EXCLUDE"}[ct]
            idx = _q(c.conname or f"{key}_{'pkey' if kind == 'PRIMARY KEY' else 'key'}")
            fix = RULES["add-unique-constraint"].fix
            if cols and kind != "EXCLUDE":
                fix += (
                    f" Rewrite: `CREATE UNIQUE INDEX CONCURRENTLY {idx} ON {_qrel(table)} ({cols});` (no-transaction migration), "
                    f"then `ALTER TABLE {_qrel(table)} ADD CONSTRAINT {idx} {kind} USING INDEX {idx};`"
                )
            self.add("add-unique-constraint", f"adds {kind} constraint {name} on existing table {table}", fix, at=at)
        elif ct == "CONSTR_NOTNULL":
            for k in c.keys or ():
                self._not_null(table, key, new, getattr(k, "sval", "?"))


_EXPAND_KINDS = {
    "ViewStmt": "creates or replaces a view",
    "CreateFunctionStmt": "creates or replaces a function",
    "CreateSeqStmt": "creates a sequence",
    "CreateEnumStmt": "creates an enum type",
    "CompositeTypeStmt": "creates a type",
    "CreateDomainStmt": "creates a domain",
    "CreateExtensionStmt": "creates an extension",
    "CreateSchemaStmt": "creates a schema",
    "AlterEnumStmt": "adds an enum value",
    "DefineStmt": "defines an object",
    "CreateRangeStmt": "creates a range type",
}


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
    for n in _iter_nodes(expr):
        if type(n).__name__ != "FuncCall":
            continue
        fname = str(getattr(n.funcname[-1], "sval", "")).lower()
        if fname in VOLATILE_FUNCTIONS:
            return fname, None
        if fname not in NONVOLATILE_FUNCTIONS and unknown is None:
            unknown = fname
    return None, unknown


def _parse_error(e: BaseException) -> tuple[str, int | None]:
    args = getattr(e, "args", ())
    msg = str(args[0]) if args else str(e) or type(e).__name__
    where = args[1] if len(args) > 1 and isinstance(args[1], int) else None
    if not msg:
        msg = type(e).__name__
    if where is None:
        m = re.search(r"at index (\d+)", str(e))
        where = int(m.group(1)) if m else None
    msg = " ".join(msg.split())
    return (msg if len(msg) <= 300 else msg[:300] + "..."), where
