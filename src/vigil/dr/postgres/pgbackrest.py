"""pgBackRest: the configuration written from the spec, the commands vigil runs, their output read.

Every command runs with ``--config`` pointing at the file vigil wrote (nothing from
``/etc/pgbackrest`` or ``PGBACKREST_*`` leaks in), as the cluster's OS user when vigil is root, with
a time limit. A failure is a :class:`PgBackRestError` (exit code 3) naming the command, pgBackRest's
own error line and what to do.

Commands and options used (pgBackRest command reference): ``stanza-create``, ``check``,
``backup --type=full|diff|incr --repo=N``, ``expire --repo=N``, ``info --output=json``,
``verify --repo=N --output=text --verbose``, ``repo-ls --recurse --output=json``,
``restore --repo=N --type=default|time|immediate --target=... --target-action=promote
--archive-mode=off --pg1-path=...``, and ``archive-push %p`` as PostgreSQL's ``archive_command``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Sequence

from vigil.dr.postgres import osuser
from vigil.dr.postgres.spec import PostgresBackupSpec
from vigil.errors import ExternalError, UsageError

BACKUP_TYPES = ("full", "diff", "incr")


class PgBackRestError(ExternalError):
    """A pgBackRest command failed, or pgBackRest is missing."""

    code = "pgbackrest"

    def __init__(self, message: str, *, hint: str | None = None, output: str = "", command: list[str] | None = None) -> None:
        super().__init__(message, hint=hint)
        self.output = output
        self.command = command or []


# --- paths and the configuration ---------------------------------------------------------------


@dataclass(frozen=True)
class PgPaths:
    """The spec's paths made absolute (relative ones are relative to the spec's folder)."""

    spec: PostgresBackupSpec
    config: Path
    work: Path
    data_dir: Path
    socket_dir: Path | None
    repos: tuple[Path, ...]

    @classmethod
    def from_spec(cls, spec: PostgresBackupSpec, base_dir: str | Path | None) -> "PgPaths":
        base = Path(base_dir) if base_dir is not None else Path.cwd()

        def ab(p: str) -> Path:
            q = Path(p).expanduser()
            return Path(os.path.abspath(q if q.is_absolute() else base / q))  # no symlink resolution

        return cls(
            spec=spec,
            config=ab(spec.config),
            work=ab(spec.work_dir),
            data_dir=ab(spec.data_dir),
            socket_dir=ab(spec.socket_dir) if spec.socket_dir else None,
            repos=tuple(ab(r.path) for r in spec.repos),
        )

    @property
    def log(self) -> Path:
        return self.work / "log"

    @property
    def lock(self) -> Path:
        return self.work / "lock"

    @property
    def spool(self) -> Path:
        return self.work / "spool"

    def repo_keys(self) -> list[int]:
        return list(range(1, len(self.repos) + 1))


def primary_conninfo(pg: PostgresBackupSpec, paths: PgPaths, db: str | None = None) -> str:
    """libpq conninfo of the primary: ``host`` when the spec gives one, else the socket directory, else 127.0.0.1."""
    host = pg.host or (str(paths.socket_dir) if paths.socket_dir is not None else "127.0.0.1")
    return f"host={host} port={pg.port} user={pg.user} dbname={db or pg.database} connect_timeout=10"


PRIMARY_HINT = "check backups.postgres port, socket_dir, host and user, and that the server runs"


def connect_primary(pg: PostgresBackupSpec, paths: PgPaths, db: str | None = None) -> Any:
    """An autocommit connection to the primary (:func:`vigil.pgconn.connect`)."""
    from vigil.pgconn import connect

    return connect(primary_conninfo(pg, paths, db), what="PostgreSQL", hint=PRIMARY_HINT)


def _conf_value(v: object) -> str:
    s = str(v)
    if "\n" in s or "\r" in s:
        raise UsageError(f"a pgBackRest setting cannot span lines: {s!r}")
    return s


def render_config(
    p: PgPaths,
    *,
    repos: Sequence[int] | None = None,
    pg_path: Path | None = None,
    with_connection: bool = True,
    repo_paths: Mapping[int, Path] | None = None,
) -> str:
    """The pgBackRest configuration for ``p`` (pure). ``repos`` limits which ``repoN`` appear (a
    drill's restore sees only the repository it restores from); ``pg_path`` replaces ``pg1-path``
    (a restore target); ``with_connection=False`` leaves out the primary's port and socket;
    ``repo_paths`` points a ``repoN`` elsewhere (a drill's snapshot of the repository)."""
    spec = p.spec
    keys = list(repos) if repos is not None else p.repo_keys()
    g: list[tuple[str, object]] = []
    for k in keys:
        r = spec.repos[k - 1]
        g.append((f"repo{k}-path", (repo_paths or {}).get(k, p.repos[k - 1])))
        g.append((f"repo{k}-retention-full-type", r.retention.kind))
        g.append((f"repo{k}-retention-full", r.retention.days if r.retention.kind == "time" else r.retention.full_count))
        if r.retention.diff_count is not None:
            g.append((f"repo{k}-retention-diff", r.retention.diff_count))
    g += [
        ("log-path", p.log),
        ("lock-path", p.lock),
        ("spool-path", p.spool),
        ("log-level-console", "warn"),
        ("log-level-stderr", "off"),
        ("log-level-file", "info"),
        ("start-fast", "y"),
        ("compress-type", spec.compress_type),
        ("process-max", spec.process_max),
    ]
    s: list[tuple[str, object]] = [("pg1-path", pg_path or p.data_dir)]
    if with_connection:
        s.append(("pg1-port", spec.port))
        if p.socket_dir is not None:
            s.append(("pg1-socket-path", p.socket_dir))
        s.append(("pg1-user", spec.user))
    lines = ["# written by vigil from the spec (backups.postgres); edits are overwritten", "[global]"]
    lines += [f"{k}={_conf_value(v)}" for k, v in g]
    lines += ["", f"[{spec.stanza}]"]
    lines += [f"{k}={_conf_value(v)}" for k, v in s]
    return "\n".join(lines) + "\n"


# --- what pgBackRest reports --------------------------------------------------------------------


def _ts(epoch: Any) -> datetime:
    """A backup's start or stop time (Unix seconds): pgBackRest records both for every backup."""
    if epoch is None:
        raise ValueError("a backup without its start or stop time")
    return datetime.fromtimestamp(int(epoch), tz=timezone.utc)


@dataclass(frozen=True)
class BackupInfo:
    label: str
    type: str
    repo: int
    start: datetime
    stop: datetime
    size: int | None
    repo_size: int | None
    wal_start: str | None
    wal_stop: str | None
    lsn_start: str | None
    lsn_stop: str | None
    prior: str | None
    error: bool
    database_id: int | None
    repo_delta: int | None = None

    def to_dict(self) -> dict:
        return {
            "label": self.label,
            "type": self.type,
            "repo": self.repo,
            "start": _iso(self.start),
            "stop": _iso(self.stop),
            "duration_seconds": (self.stop - self.start).total_seconds(),
            "size": self.size,
            "repo_size": self.repo_size,
            "repo_delta": self.repo_delta,
            "wal_start": self.wal_start,
            "wal_stop": self.wal_stop,
            "lsn_start": self.lsn_start,
            "lsn_stop": self.lsn_stop,
            "prior": self.prior,
            "error": self.error,
        }


@dataclass(frozen=True)
class ArchiveRange:
    repo: int
    id: str
    min: str | None
    max: str | None

    def to_dict(self) -> dict:
        return {"repo": self.repo, "id": self.id, "min": self.min, "max": self.max}


@dataclass(frozen=True)
class RepoStatus:
    key: int
    code: int
    message: str

    def to_dict(self) -> dict:
        return {"repo": self.key, "code": self.code, "message": self.message}


@dataclass
class StanzaInfo:
    name: str
    status_code: int
    status_message: str
    backups: list[BackupInfo] = field(default_factory=list)
    archives: list[ArchiveRange] = field(default_factory=list)
    repos: list[RepoStatus] = field(default_factory=list)
    raw: Any = None

    def backups_in(self, repo: int) -> list[BackupInfo]:
        return [b for b in self.backups if b.repo == repo]

    def newest(self, repo: int, type_: str | None = None) -> BackupInfo | None:
        cands = [b for b in self.backups_in(repo) if (type_ is None or b.type == type_) and not b.error]
        return max(cands, key=lambda b: b.stop) if cands else None

    def oldest(self, repo: int) -> BackupInfo | None:
        cands = [b for b in self.backups_in(repo) if not b.error]
        return min(cands, key=lambda b: b.start) if cands else None

    def archive(self, repo: int) -> list[ArchiveRange]:
        return [a for a in self.archives if a.repo == repo]

    def to_dict(self) -> dict:
        return {
            "stanza": self.name,
            "status": {"code": self.status_code, "message": self.status_message},
            "repos": [r.to_dict() for r in self.repos],
            "archives": [a.to_dict() for a in self.archives],
            "backups": [b.to_dict() for b in sorted(self.backups, key=lambda b: (b.repo, b.start))],
        }


def _iso(dt: datetime | None) -> str | None:
    return None if dt is None else dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_info(data: Any, stanza: str) -> StanzaInfo:
    """``pgbackrest info --output=json`` (already decoded) for one stanza. Raises PgBackRestError when
    the shape is not pgBackRest's."""
    try:
        entry = next((s for s in data if s.get("name") == stanza), None)
        if entry is None:
            return StanzaInfo(stanza, 1, "missing stanza (pgBackRest does not know it)", raw=data)
        info = StanzaInfo(stanza, int(entry["status"]["code"]), str(entry["status"]["message"]), raw=entry)
        db_repo: dict[int, int] = {}
        for r in entry.get("repo", []):
            info.repos.append(RepoStatus(int(r["key"]), int(r["status"]["code"]), str(r["status"]["message"])))
        for a in entry.get("archive", []):
            repo = int(a["database"]["repo-key"])
            info.archives.append(ArchiveRange(repo, str(a["id"]), a.get("min"), a.get("max")))
        for b in entry.get("backup", []):
            repo = int(b["database"]["repo-key"])
            db_repo[repo] = db_repo.get(repo, 0)
            arch = b.get("archive") or {}
            inf = b.get("info") or {}
            lsn = b.get("lsn") or {}
            info.backups.append(
                BackupInfo(
                    label=str(b["label"]),
                    type=str(b["type"]),
                    repo=repo,
                    start=_ts(b["timestamp"]["start"]),
                    stop=_ts(b["timestamp"]["stop"]),
                    size=inf.get("size"),
                    repo_size=(inf.get("repository") or {}).get("size"),
                    wal_start=arch.get("start"),
                    wal_stop=arch.get("stop"),
                    lsn_start=lsn.get("start"),
                    lsn_stop=lsn.get("stop"),
                    prior=b.get("prior"),
                    error=bool(b.get("error", False)),
                    database_id=(b.get("database") or {}).get("id"),
                    repo_delta=(inf.get("repository") or {}).get("delta"),
                )
            )
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise PgBackRestError(
            f"pgbackrest info returned JSON vigil cannot read ({e!r})",
            hint="vigil reads pgBackRest 2.x's `info --output=json`; check `pgbackrest version`",
        ) from None
    return info


def parse_ini(text: str) -> dict[str, dict[str, str]]:
    """pgBackRest's ``backup.info`` / ``archive.info`` (INI sections, values JSON-encoded) as raw
    strings per section and key. A repeated section (``[backrest]`` opens and closes the file) merges."""
    out: dict[str, dict[str, str]] = {}
    section: dict[str, str] | None = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = out.setdefault(line[1:-1], {})
        elif section is not None and "=" in line:
            k, _, v = line.partition("=")
            section[k.strip()] = v.strip()
    return out


def backups_from_info_file(text: str, repo: int) -> list[BackupInfo]:
    """The backup sets a repository's ``backup.info`` lists (what a restore from it can use)."""
    out = []
    try:
        for label, raw in parse_ini(text).get("backup:current", {}).items():
            b = json.loads(raw)
            out.append(BackupInfo(
                label=label, type=str(b.get("backup-type")), repo=repo,
                start=_ts(b["backup-timestamp-start"]), stop=_ts(b["backup-timestamp-stop"]),
                size=b.get("backup-info-size"), repo_size=b.get("backup-info-repo-size"),
                wal_start=b.get("backup-archive-start"), wal_stop=b.get("backup-archive-stop"),
                lsn_start=b.get("backup-lsn-start"), lsn_stop=b.get("backup-lsn-stop"),
                prior=b.get("backup-prior"), error=bool(b.get("backup-error", False)), database_id=b.get("db-id"),
                repo_delta=b.get("backup-info-repo-size-delta"),
            ))
    except (KeyError, TypeError, ValueError) as e:
        raise PgBackRestError(f"backup.info is not readable as pgBackRest's ({e!r})",
                              hint="check the repository with `vigil backup verify`") from None
    return out


def archive_id_from_info_file(text: str) -> str | None:
    """The current archive id (``<db-version>-<db-id>``, e.g. ``15-1``) from ``archive.info``."""
    db = parse_ini(text).get("db", {})
    try:
        return f"{json.loads(db['db-version'])}-{int(db['db-id'])}"
    except (KeyError, TypeError, ValueError):
        return None


@dataclass
class VerifyResult:
    repo: int
    ok: bool
    status: str
    backups: list[dict] = field(default_factory=list)
    archives: list[dict] = field(default_factory=list)
    output: str = ""

    def to_dict(self) -> dict:
        return {"repo": self.repo, "ok": self.ok, "status": self.status, "backups": self.backups, "archives": self.archives}


_V_STATUS = re.compile(r"^status:\s*(.+)$", re.M)
_V_BACKUP = re.compile(r"^\s*backup:\s*(\S+),\s*status:\s*([^,]+),\s*total files checked:\s*(\d+),\s*total valid files:\s*(\d+)", re.M)
_V_ARCHIVE = re.compile(r"^\s*archiveId:\s*(\S+),\s*total WAL checked:\s*(\d+),\s*total valid WAL:\s*(\d+)", re.M)
_V_COUNTS = re.compile(r"missing:\s*(\d+),\s*checksum invalid:\s*(\d+),\s*size invalid:\s*(\d+),\s*other:\s*(\d+)")


def parse_verify(text: str, repo: int, exit_code: int = 0) -> VerifyResult:
    """``pgbackrest verify --output=text --verbose`` for one repository."""
    m = _V_STATUS.search(text)
    status = m.group(1).strip() if m else ("ok" if exit_code == 0 else "error")
    res = VerifyResult(repo=repo, ok=(status == "ok" and exit_code == 0), status=status, output=text)
    lines = text.splitlines()
    for i, line in enumerate(lines):
        counts = _V_COUNTS.search(lines[i + 1]) if i + 1 < len(lines) else None
        c = dict(zip(("missing", "checksum_invalid", "size_invalid", "other"), map(int, counts.groups()))) if counts else {}
        if (b := _V_BACKUP.match(line)) is not None:
            res.backups.append({"label": b.group(1), "status": b.group(2).strip(), "checked": int(b.group(3)), "valid": int(b.group(4)), **c})
        elif (a := _V_ARCHIVE.match(line)) is not None:
            res.archives.append({"archive_id": a.group(1), "checked": int(a.group(2)), "valid": int(a.group(3)), **c})
    if any(row["status"] != "valid" for row in res.backups) or any(row["checked"] != row["valid"] for row in res.archives):
        res.ok = False
    return res


@dataclass
class CommandResult:
    command: list[str]
    exit_code: int
    output: str
    seconds: float

    def to_dict(self) -> dict:
        return {"command": " ".join(self.command), "exit_code": self.exit_code, "seconds": self.seconds, "output": self.output}


# --- running it ---------------------------------------------------------------------------------


_ERROR_LINE = re.compile(r"^.*\b(ERROR|WARN|ASSERT):.*$", re.M)


def error_summary(output: str) -> str:
    """pgBackRest's first ERROR (or WARN) line with its continuation lines (the cause often sits on
    the next line, e.g. ``[28] No space left on device``), without the timestamp and process id."""
    lines = output.splitlines()
    for i, line in enumerate(lines):
        if _ERROR_LINE.match(line):
            parts = [re.sub(r"^\S+ \S+ P\d+\s+", "", line).strip()]
            for nxt in lines[i + 1 :]:
                if nxt.startswith((" ", "\t")) and nxt.strip():
                    parts.append(nxt.strip())
                else:
                    break
            return " ".join(parts)
    tail = [x for x in lines if x.strip()]
    return tail[-1].strip() if tail else "(no output)"


_ERROR_CODE_LINE = re.compile(r"\bERROR: \[(\d+)\]: ")


def error_lines(output: str) -> list[str]:
    """Every distinct pgBackRest ``ERROR: [NNN]: ...`` in a text (a command's output, or a server log
    holding ``archive-get``'s console output), each joined with its continuation lines, oldest first."""
    lines = output.splitlines()
    out: list[str] = []
    for i, line in enumerate(lines):
        m = _ERROR_CODE_LINE.search(line)
        if m is None:
            continue
        parts = [line[m.start():].strip()]
        for nxt in lines[i + 1 :]:
            if nxt.startswith((" ", "\t")) and nxt.strip():
                parts.append(nxt.strip())
            else:
                break
        text = " ".join(parts)
        if text not in out:
            out.append(text)
    return out


def backup_for_target(backups: Sequence["BackupInfo"], target: datetime | None = None) -> "BackupInfo | None":
    """The backup set pgBackRest restores: the newest good one, or with a target time the newest
    that stopped before it."""
    good = [b for b in backups if not b.error and (target is None or b.stop < target)]
    return max(good, key=lambda b: b.stop) if good else None


def free_bytes(path: Path) -> int | None:
    """Bytes available to unprivileged writers on the filesystem holding ``path`` (or its nearest existing parent)."""
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        st = os.statvfs(p)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


LOW_SPACE = 64 * 1024 * 1024


def _full_disks(paths: "PgPaths | None") -> list[str]:
    if paths is None:
        return []
    out = []
    for name, p in [*((f"repo{i}", r) for i, r in enumerate(paths.repos, 1)), ("work_dir", paths.work)]:
        free = free_bytes(p)
        if free is not None and free < LOW_SPACE:
            out.append(f"{name} ({p}) has {free // 1024} KiB free")
    return out


DISK_FULL = "the disk is full: free space on the repository (or the spool/log) filesystem, or point repoN path at a larger one; the failed backup is not usable and the next one cleans it up"


def _diagnose(output: str, cmd: str, paths: "PgPaths | None" = None) -> str:
    low = output.lower()
    if "no space left on device" in low or "[28]" in output:
        return DISK_FULL
    if "unable to write" in low or "filewriteerror" in low:
        full = _full_disks(paths)
        if full:
            return f"{DISK_FULL} ({'; '.join(full)})"
    if "permission denied" in low or "[13]" in output:
        return "a file or directory is not accessible to the OS user pgBackRest runs as (backups.postgres.os_user): check owners and modes of the repository, config and data directory"
    if "unable to find primary cluster" in low or "could not connect" in low or "unable to connect" in low:
        return "PostgreSQL does not answer: check that it runs and backups.postgres.port / socket_dir / user"
    if "archive_mode" in low or "archive_command" in low or "wal segment" in low and "not archived" in low:
        return "WAL archiving is not working: run `vigil backup setup` and restart PostgreSQL if it says so"
    if "stanza" in low and ("does not exist" in low or "missing" in low):
        return "the stanza was not created: run `vigil backup setup`"
    if "no backup set found" in low or "no backup" in low:
        return "there is no backup to use in that repository: run `vigil backup run`"
    if "unable to find backup set with stop time" in low:
        return "no backup in that repository ends before the target time: pick a later target, or a repository holding an older backup"
    if "recovery target" in low:
        return "the target time is not covered by a backup plus archived WAL; pick another time or repository"
    return f"see pgBackRest's log in the work directory ({cmd})"


def _json_from(output: str, opener: str, what: str) -> Any:
    """The JSON document in a command's output (console warnings may precede it on their own lines)."""
    lines = output.splitlines(keepends=True)
    for i, line in enumerate(lines):
        if line.lstrip().startswith(opener):
            try:
                return json.loads("".join(lines[i:]))
            except ValueError:
                continue
    raise PgBackRestError(f"pgbackrest {what} did not print JSON: {output.strip()[:300]!r}",
                          hint="vigil reads pgBackRest 2.x JSON output; check `pgbackrest version`", output=output)


def _kill_group(proc: subprocess.Popen) -> None:
    """Stop a command we started (and its helpers: it leads its own process group), then reap it."""
    import signal

    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            proc.kill()
        proc.wait(timeout=10)


class PgBackRest:
    """pgBackRest for one stanza, configured from the spec."""

    def __init__(self, paths: PgPaths, *, os_user: str | None = None, resolve_user: bool = True, config: Path | None = None) -> None:
        self.paths = paths
        self.spec = paths.spec
        self.stanza = paths.spec.stanza
        self.os_user = osuser.effective_user(os_user if os_user is not None else paths.spec.os_user) if resolve_user else os_user
        self.config = config or paths.config
        self._bin: str | None = None

    # -- setup -----------------------------------------------------------------------------------

    def binary(self) -> str:
        if self._bin is None:
            found = shutil.which(self.spec.pgbackrest)
            if found is None:
                raise PgBackRestError(
                    f"pgBackRest is not installed: {self.spec.pgbackrest!r} was not found on PATH",
                    hint="install it (Debian: apt-get install pgbackrest; `make test` does it through scripts/system-deps.sh), "
                    "or set backups.postgres.pgbackrest to its path",
                )
            self._bin = found
        return self._bin

    def ensure_dirs(self) -> None:
        """pgBackRest's log, lock and spool directories, owned by the OS user it runs as."""
        try:
            for d in (self.paths.work, self.paths.log, self.paths.lock, self.paths.spool):
                osuser.make_dir(d, self.os_user)
        except OSError as e:
            raise PgBackRestError(f"cannot create pgBackRest's work directory {self.paths.work}: {e.strerror or e}",
                                  hint="point backups.postgres.work_dir at a writable place") from None

    def write_config(self, *, path: Path | None = None, repos: Sequence[int] | None = None, pg_path: Path | None = None,
                     with_connection: bool = True) -> Path:
        """Write the configuration (and create the work and repository directories). Returns its path."""
        target = path or self.config
        u = self.os_user
        self.ensure_dirs()
        try:
            for k in repos if repos is not None else self.paths.repo_keys():
                r = self.paths.repos[k - 1]
                if not r.exists():
                    osuser.make_dir(r, u)
            osuser.make_dir(target.parent, u, mode=0o755) if not target.parent.exists() else None
            text = render_config(self.paths, repos=repos, pg_path=pg_path, with_connection=with_connection)
            tmp = target.with_name(target.name + ".tmp")
            tmp.write_text(text)
            tmp.chmod(0o640)
            osuser.hand_over(tmp, u)
            tmp.replace(target)
        except OSError as e:
            raise PgBackRestError(
                f"cannot write the pgBackRest configuration {target}: {e.strerror or e}",
                hint="make backups.postgres.config and work_dir point at writable places",
            ) from None
        if not osuser.can_access(target, u):
            raise UsageError(
                f"the OS user {u or 'running vigil'!r} cannot read {target} (a parent directory is not traversable)",
                hint="set backups.postgres.config and work_dir to paths that user can reach, e.g. under /var/lib/pgbackrest",
            )
        return target

    def archive_command(self) -> str:
        """PostgreSQL's ``archive_command`` for this stanza (run by the server as its own user)."""
        return f"{self.binary()} --config={self.config} --stanza={self.stanza} archive-push %p"

    # -- commands ---------------------------------------------------------------------------------

    def run(self, command: str, *args: str, timeout: float | None = None, check: bool = True,
            config: Path | None = None, stanza: bool = True, params: Sequence[str] = ()) -> CommandResult:
        """``pgbackrest --config=... [--stanza=...] ARGS COMMAND PARAMS`` as the OS user."""
        cmd = [self.binary(), f"--config={config or self.config}"]
        if stanza:
            cmd.append(f"--stanza={self.stanza}")
        cmd += [*args, command, *params]
        full = osuser.wrap(cmd, self.os_user)
        limit = float(timeout if timeout is not None else self.spec.timeout)
        t0 = time.monotonic()
        # output goes to a file, not a pipe: pgBackRest's helper processes may outlive the command
        # for a while after an error, and a pipe would keep us waiting for them
        with tempfile.TemporaryFile() as buf:
            try:
                proc = subprocess.Popen(full, stdout=buf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=osuser.clean_env(),
                                        cwd=str(self.paths.work) if self.paths.work.is_dir() else "/", start_new_session=True)
            except FileNotFoundError as e:
                raise PgBackRestError(f"cannot run {full[0]}: {e.strerror}", hint="install pgBackRest (apt-get install pgbackrest)") from None
            try:
                code = proc.wait(timeout=limit)
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                buf.seek(0)
                raise PgBackRestError(
                    f"pgbackrest {command} did not finish within {limit:g}s and was stopped",
                    hint="raise backups.postgres.timeout, or look at pgBackRest's log in the work directory",
                    output=buf.read().decode(errors="replace"),
                    command=cmd,
                ) from None
            except BaseException:
                _kill_group(proc)
                raise
            buf.seek(0)
            out = buf.read().decode(errors="replace")
        secs = time.monotonic() - t0
        res = CommandResult(cmd, code, out, round(secs, 3))
        if check and code != 0:
            head = error_summary(out)
            raise PgBackRestError(
                f"pgbackrest {command} failed (exit {code}): {head[:600]}",
                hint=_diagnose(out, command, self.paths),
                output=out,
                command=cmd,
            )
        return res

    def stanza_create(self) -> CommandResult:
        return self.run("stanza-create", timeout=300)

    def check(self, *, timeout: float = 120) -> CommandResult:
        """``pgbackrest check``: the configuration, the connection, and a WAL segment archived now."""
        return self.run("check", f"--archive-timeout={int(max(1, timeout - 5))}", timeout=timeout)

    def backup(self, type_: str, repo: int) -> CommandResult:
        if type_ not in BACKUP_TYPES:
            raise UsageError(f"backup type {type_!r}: use full, diff or incr")
        self._repo(repo)
        return self.run("backup", f"--type={type_}", f"--repo={repo}")

    def expire(self, repo: int) -> CommandResult:
        self._repo(repo)
        return self.run("expire", f"--repo={repo}", timeout=3600)

    def info_raw(self, *, config: Path | None = None) -> Any:
        res = self.run("info", "--output=json", timeout=300, config=config)
        return _json_from(res.output, "[", "info --output=json")

    def info(self, *, config: Path | None = None) -> StanzaInfo:
        return parse_info(self.info_raw(config=config), self.stanza)

    def verify(self, repo: int) -> VerifyResult:
        self._repo(repo)
        res = self.run("verify", f"--repo={repo}", "--output=text", "--verbose", check=False)
        if res.exit_code != 0 and "status:" not in res.output:
            raise PgBackRestError(
                f"pgbackrest verify --repo={repo} failed (exit {res.exit_code}): {error_summary(res.output)[:600]}",
                hint=_diagnose(res.output, "verify", self.paths),
                output=res.output,
                command=res.command,
            )
        return parse_verify(res.output, repo, res.exit_code)

    def archive_files(self, repo: int) -> list[str]:
        """Every file under the stanza's archive in repo ``repo`` (relative names), via ``repo-ls``."""
        self._repo(repo)
        res = self.run("repo-ls", f"--repo={repo}", "--recurse", "--output=json", timeout=600, params=[f"archive/{self.stanza}"])
        data = _json_from(res.output, "{", "repo-ls --output=json")
        return sorted(k for k, v in data.items() if isinstance(v, dict) and v.get("type") == "file")

    def restore(
        self,
        pg_path: Path,
        *,
        repo: int,
        target_type: str = "default",
        target: str | None = None,
        target_action: str = "promote",
        archive_mode: str = "off",
        delta: bool = False,
        config: Path | None = None,
        timeout: float | None = None,
    ) -> CommandResult:
        """Restore into ``pg_path`` (empty, or ``delta``) from repository ``repo``.

        ``archive_mode='off'`` (the default) writes ``archive_mode = 'off'`` into the restored
        cluster's configuration, so it never archives into the repository it came from."""
        self._repo(repo)
        args = [f"--pg1-path={pg_path}", f"--repo={repo}", f"--type={target_type}", f"--archive-mode={archive_mode}"]
        if target_type in ("time", "lsn", "xid", "name"):
            if not target:
                raise UsageError(f"restore --type={target_type} needs a target")
            args += [f"--target={target}", f"--target-action={target_action}"]
        elif target_type == "immediate":
            args.append(f"--target-action={target_action}")
        if delta:
            args.append("--delta")
        return self.run("restore", *args, config=config, timeout=timeout)

    def _repo(self, repo: int) -> None:
        if not 1 <= repo <= len(self.paths.repos):
            raise UsageError(
                f"there is no repository {repo}: backups.postgres.repos has {len(self.paths.repos)}",
                hint=f"use --repo 1..{len(self.paths.repos)}",
            )
