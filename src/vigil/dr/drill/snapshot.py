"""The repository as it was at the disaster instant: a snapshot the restore reads instead of the
live repository, so WAL the primary archives after the disaster (in ``declare`` mode it keeps
running; in the other modes an ``archive-push`` may still finish) can never reach the restore.

pgBackRest writes archived WAL and its ``archive.info`` / ``backup.info`` under a temporary name
and renames them into place (``<name>.pgbackrest.tmp``), and never rewrites a finished file; the
files of a backup still being taken may be written in place, but a restore uses a backup set only
once ``backup.info`` lists it. So a tree of hard links taken at an instant holds exactly the WAL
and the backup sets that were complete at that instant, and stays as it was afterwards.
Hard links cost a directory entry per file; when the snapshot directory is on another filesystem
the files are copied instead (the evidence says which, and how many bytes). I/O.
"""

from __future__ import annotations

import errno
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from vigil.dr.postgres import osuser
from vigil.errors import ExternalError

TMP_SUFFIX = ".pgbackrest.tmp"


class RepoSnapshotError(ExternalError):
    code = "drill-repo-snapshot"


@dataclass
class RepoSnapshot:
    path: Path  # a repository path: <path>/archive/<stanza>, <path>/backup/<stanza>
    stanza: str
    files: int = 0
    linked: int = 0
    copied: int = 0
    bytes_copied: int = 0
    seconds: float = 0.0
    vanished: list[str] = field(default_factory=list)  # removed (expired) while the snapshot was taken
    archive_files: list[str] = field(default_factory=list)  # relative to archive/<stanza>/
    backup_info: str | None = None
    archive_info: str | None = None
    excluded: list[str] = field(default_factory=list)  # segments archived after the disaster, taken out again
    cut: str | None = None  # the last segment kept: the primary's last archived one at the disaster

    @property
    def method(self) -> str:
        if self.copied and self.linked:
            return "hardlink+copy"
        return "copy" if self.copied else "hardlink"

    def to_dict(self) -> dict:
        return {"path": str(self.path), "method": self.method, "files": self.files, "linked": self.linked,
                "copied": self.copied, "bytes_copied": self.bytes_copied, "seconds": round(self.seconds, 3),
                "archive_files": len(self.archive_files), "vanished": self.vanished[:20],
                "cut_at_segment": self.cut, "excluded_after_disaster": self.excluded[:50]}

    def exclude_after(self, last_segment: str, segment_size: int) -> list[str]:
        """Take out of the snapshot every WAL segment after ``last_segment`` (the primary's last
        archived segment at the disaster, from ``pg_stat_archiver``): the links are made file by
        file, so on a big repository the walk outlasts an archive_timeout and would otherwise catch
        segments the primary pushed after the disaster. Returns their names (relative to
        ``archive/<stanza>/``). Only the snapshot's links are removed, never the repository's files."""
        from vigil.dr.postgres.wal import parse_segment

        last = parse_segment(last_segment, segment_size)
        if last is None:
            raise ValueError(f"not a WAL segment name: {last_segment!r}")
        keep, out = [], []
        for name in self.archive_files:
            seg = parse_segment(name, segment_size)
            if seg is not None and (seg[1], seg[0]) > (last[1], last[0]):
                (self.path / "archive" / self.stanza / name).unlink(missing_ok=True)
                out.append(name)
            else:
                keep.append(name)
        self.archive_files = keep
        self.excluded.extend(out)
        self.cut = last_segment
        return out


def _read(p: Path) -> str | None:
    try:
        return p.read_text()
    except FileNotFoundError:
        return None


def snapshot_repository(repo: Path, dest: Path, stanza: str, *, os_user: str | None, repo_name: str = "the repository") -> RepoSnapshot:
    """Snapshot ``repo``'s ``archive/<stanza>`` and ``backup/<stanza>`` into ``dest`` (created; must
    not exist). Raises :class:`RepoSnapshotError` when the repository cannot be read."""
    t0 = time.monotonic()
    snap = RepoSnapshot(path=dest, stanza=stanza)
    for part in ("backup", "archive"):
        src_root = repo / part / stanza
        try:
            if not src_root.is_dir():
                raise RepoSnapshotError(f"{repo_name} ({repo}) has no {part}/{stanza} directory at the disaster",
                                    hint="check the repository's path and mount, and that `vigil backup setup` created the stanza")
        except PermissionError as e:
            raise RepoSnapshotError(f"{repo_name} ({repo}) cannot be read: {e.strerror}", hint="check the repository's permissions") from None
        _copy_tree(src_root, dest / part / stanza, snap, os_user, archive=(part == "archive"))
    for p in [dest, dest / "backup", dest / "archive"]:
        osuser.hand_over(p, os_user)
    snap.backup_info = _read(dest / "backup" / stanza / "backup.info")
    snap.archive_info = _read(dest / "archive" / stanza / "archive.info")
    snap.archive_files.sort()
    snap.seconds = time.monotonic() - t0
    return snap


def _copy_tree(src_root: Path, dst_root: Path, snap: RepoSnapshot, os_user: str | None, *, archive: bool) -> None:
    def fail(e: OSError) -> None:
        raise RepoSnapshotError(f"cannot read the repository at {e.filename or src_root}: {e.strerror or e}",
                            hint="check the repository's path, mount and permissions") from None

    dst_root.mkdir(parents=True, exist_ok=False)
    osuser.hand_over(dst_root, os_user)
    for dirpath, dirnames, filenames in os.walk(src_root, onerror=fail):
        rel = Path(dirpath).relative_to(src_root)
        target_dir = dst_root / rel
        if rel != Path("."):
            target_dir.mkdir(exist_ok=True)
            osuser.hand_over(target_dir, os_user)
        for d in list(dirnames):
            sp = Path(dirpath) / d
            if sp.is_symlink():  # pgBackRest's `latest` link: recreate, do not follow
                dirnames.remove(d)
                os.symlink(os.readlink(sp), target_dir / d)
        for name in filenames:
            if name.endswith(TMP_SUFFIX):
                continue  # not complete at the instant
            sp, dp = Path(dirpath) / name, target_dir / name
            if sp.is_symlink():
                os.symlink(os.readlink(sp), dp)
                continue
            try:
                os.link(sp, dp)
                snap.linked += 1
            except FileNotFoundError:
                snap.vanished.append(str(rel / name))
                continue
            except OSError as e:
                if e.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EACCES):
                    fail(e)
                try:
                    shutil.copy2(sp, dp)
                except FileNotFoundError:
                    snap.vanished.append(str(rel / name))
                    continue
                except OSError as e2:
                    fail(e2)
                osuser.hand_over(dp, os_user)
                snap.copied += 1
                snap.bytes_copied += dp.stat().st_size
            snap.files += 1
            if archive:
                snap.archive_files.append((rel / name).as_posix())
