"""WAL segment names and the continuity check over an archive. Pure: names in, findings out.

A WAL segment file is named ``TTTTTTTTXXXXXXXXYYYYYYYY``: timeline, then the segment number split
in two (``XXXXXXXX`` = segno // segments-per-xlogid, ``YYYYYYYY`` = segno % segments-per-xlogid,
with 256 segments per xlogid at the default 16 MiB). pgBackRest stores each as
``<name>-<sha1>[.gz|.lz4|.zst|.bz2]``; ``.partial``, ``.backup`` and ``.history`` files are not
segments of the stream.

Continuity: every segment number from the start (the oldest backup's first WAL) to the newest
archived one must be present on some timeline; a timeline switch repeats the switch segment on the
new timeline, which the union of segment numbers absorbs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable

DEFAULT_SEGMENT_SIZE = 16 * 1024 * 1024
SEGMENT = re.compile(r"^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})(?:-[0-9a-f]{40})?(?:\.(?:gz|lz4|zst|bz2))?$")


def segments_per_id(segment_size: int = DEFAULT_SEGMENT_SIZE) -> int:
    return 0x100000000 // segment_size


def parse_segment(name: str, segment_size: int = DEFAULT_SEGMENT_SIZE) -> tuple[int, int] | None:
    """``(timeline, segno)`` of a segment file name (with or without pgBackRest's suffix), else None."""
    base = name.rsplit("/", 1)[-1]
    m = SEGMENT.match(base)
    if not m:
        return None
    tli, hi, lo = (int(g, 16) for g in m.groups())
    per = segments_per_id(segment_size)
    if lo >= per:
        return None
    return tli, hi * per + lo


def segment_name(tli: int, segno: int, segment_size: int = DEFAULT_SEGMENT_SIZE) -> str:
    per = segments_per_id(segment_size)
    return f"{tli:08X}{segno // per:08X}{segno % per:08X}"


def lsn_to_int(lsn: str) -> int:
    """``'0/3000050'`` -> an integer byte position."""
    hi, _, lo = lsn.partition("/")
    return (int(hi, 16) << 32) | int(lo, 16)


@dataclass(frozen=True)
class WalGap:
    after: str  # the last segment present before the gap
    before: str  # the first segment present after it
    missing: int  # how many segment numbers are missing

    def to_dict(self) -> dict:
        return {"after": self.after, "before": self.before, "missing": self.missing}

    def __str__(self) -> str:
        return f"{self.missing} segment(s) missing between {self.after} and {self.before}"


@dataclass
class WalCheck:
    ok: bool
    first: str | None = None
    last: str | None = None
    segments: int = 0
    timelines: list[int] = field(default_factory=list)
    gaps: list[WalGap] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "ok": self.ok,
            "first": self.first,
            "last": self.last,
            "segments": self.segments,
            "timelines": self.timelines,
            "gaps": [g.to_dict() for g in self.gaps],
            "problems": list(self.problems),
        }


def check_continuity(
    names: Iterable[str], *, start: str | None = None, segment_size: int = DEFAULT_SEGMENT_SIZE,
    history: str | None = None,
) -> WalCheck:
    """Check that the archive holds every segment from ``start`` (a segment name, e.g. the oldest
    backup's ``archive.start``) to the newest one. Without ``start``, from the oldest archived.

    Across timelines every segment number is owned by exactly one timeline of the newest one's
    ``history`` (the content of its ``.history`` file): the parent up to the segment holding the
    switch, the child from it (PostgreSQL reads the switch segment from the new timeline). A parent's
    segments after the switch (an old primary that archived on before it was fenced) are not part of
    the history and never fill a gap of the new timeline. Several timelines without the history:
    the check cannot tell, and says so (not ok)."""
    present: set[tuple[int, int]] = set()
    tlis: set[int] = set()
    for n in names:
        p = parse_segment(n, segment_size)
        if p is None:
            continue
        present.add(p)
        tlis.add(p[0])
    switches = [(parent, lsn_to_int(lsn) // segment_size) for parent, lsn, _ in parse_history(history or "")]
    newest = max(tlis) if tlis else 0
    seen: dict[int, int] = {}  # segno -> the timeline it is read from
    if len(tlis) > 1 and switches:
        def owner(segno: int) -> int:
            for parent, switch_segno in switches:
                if segno < switch_segno:
                    return parent
            return newest

        for tli, segno in present:
            if tli == owner(segno):
                seen[segno] = tli
    else:
        for tli, segno in present:
            if segno not in seen or tli > seen[segno]:
                seen[segno] = tli
    check = WalCheck(ok=True, timelines=sorted(tlis))
    if len(tlis) > 1 and not switches:
        check.ok = False
        check.problems.append(
            f"{len(tlis)} timelines ({', '.join(map(str, sorted(tlis)))}) and no timeline history: which segments a "
            "restore reads across the switch is unknown, so a gap on the newest timeline cannot be ruled out"
        )
    start_no = None
    if start is not None:
        ps = parse_segment(start, segment_size)
        if ps is None:
            check.ok = False
            check.problems.append(f"start {start!r} is not a WAL segment name")
            return check
        start_no = ps[1]
    nums = sorted(s for s in seen if start_no is None or s >= start_no)
    if not nums:
        check.ok = False
        check.problems.append("no WAL segment in the archive" + (f" from {start}" if start else ""))
        return check
    if start_no is not None and nums[0] != start_no:
        check.gaps.append(WalGap(f"(start {start})", segment_name(seen[nums[0]], nums[0], segment_size), nums[0] - start_no))
    for a, b in zip(nums, nums[1:]):
        if b != a + 1:
            check.gaps.append(
                WalGap(segment_name(seen[a], a, segment_size), segment_name(seen[b], b, segment_size), b - a - 1)
            )
    check.first = segment_name(seen[nums[0]], nums[0], segment_size)
    check.last = segment_name(seen[nums[-1]], nums[-1], segment_size)
    check.segments = len(nums)
    if check.gaps:
        check.ok = False
        check.problems.extend(f"WAL gap: {g}" for g in check.gaps)
    return check


def newest_history_name(names: Iterable[str]) -> str | None:
    """The newest timeline's ``.history`` file among archive names (``<archive id>/0000000N.history``,
    compressed or not), or None."""
    hist = [n for n in names if n.rsplit("/", 1)[-1].split(".", 1)[0].isalnum() and ".history" in n.rsplit("/", 1)[-1]]
    return max(hist, key=lambda n: n.rsplit("/", 1)[-1][:8]) if hist else None


def read_history(data: bytes, name: str) -> str:
    """A history file's text (pgBackRest may store it compressed)."""
    if name.endswith(".gz"):
        import gzip

        data = gzip.decompress(data)
    elif name.endswith((".lz4", ".zst", ".bz2")):
        raise ValueError(f"{name}: a compressed history file vigil does not read ({name.rsplit('.', 1)[-1]})")
    return data.decode("utf-8", errors="replace")


# --- where recovery ended ------------------------------------------------------------------------


def parse_history(text: str) -> list[tuple[int, str, str]]:
    """A timeline history file (``0000000N.history``): ``(parent timeline, switch LSN, reason)`` per
    line, oldest first. The last line is where the newest timeline branched off: the end of recovery."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 2)
        if len(parts) < 2 or not parts[0].isdigit() or "/" not in parts[1]:
            continue
        out.append((int(parts[0]), parts[1], parts[2] if len(parts) > 2 else ""))
    return out


def segment_before(lsn: str, tli: int, segment_size: int = DEFAULT_SEGMENT_SIZE) -> str:
    """The segment holding the last byte before ``lsn`` on timeline ``tli`` (the last segment a
    recovery that ended at ``lsn`` read)."""
    pos = lsn_to_int(lsn)
    return segment_name(tli, max(0, pos - 1) // segment_size, segment_size)


@dataclass(frozen=True)
class RecoveryEnd:
    """Whether recovery replayed the archive to its end. ``ok`` is None when that could not be told."""

    ok: bool | None
    expected_last: str | None  # the last segment archived before the disaster
    reached: str | None  # the last segment recovery read
    switch_lsn: str | None
    note: str

    def to_dict(self) -> dict:
        return {"ok": self.ok, "expected_last_segment": self.expected_last, "reached_segment": self.reached,
                "switch_lsn": self.switch_lsn, "note": self.note}


def recovery_end(expected_last: str | None, history: str | None, *, segment_size: int = DEFAULT_SEGMENT_SIZE) -> RecoveryEnd:
    """Compare where recovery ended (the newest timeline's switch point, from its history file) with
    the last segment archived before the disaster. Pure."""
    if expected_last is None or parse_segment(expected_last, segment_size) is None:
        return RecoveryEnd(None, expected_last, None, None, "the last archived segment before the disaster is unknown")
    lines = parse_history(history or "")
    if not lines:
        return RecoveryEnd(None, expected_last, None, None,
                           "the restored cluster has no timeline history: where recovery ended is unknown")
    parent, lsn, _reason = lines[-1]
    try:
        reached = segment_before(lsn, parent, segment_size)
    except ValueError:
        return RecoveryEnd(None, expected_last, None, lsn, f"unreadable switch point {lsn!r} in the timeline history")
    exp = parse_segment(expected_last, segment_size)
    got = parse_segment(reached, segment_size)
    assert exp is not None and got is not None
    if got[1] >= exp[1]:
        return RecoveryEnd(True, expected_last, reached, lsn, f"recovery replayed the archive to its end ({expected_last})")
    return RecoveryEnd(
        False, expected_last, reached, lsn,
        f"recovery stopped at {reached} (switch point {lsn}); the archive at the disaster ended at {expected_last}: "
        f"{exp[1] - got[1]} segment(s) of archived WAL were not replayed",
    )
