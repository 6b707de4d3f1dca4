"""Where texts to scan come from: files of a working tree, or the lines a git range adds.

The adapters of the secret scanner: they read files (any common text encoding, binary skipped) and
run ``git``; :func:`vigil.security.scanner.scan_text` does the finding.
"""

from __future__ import annotations

import fnmatch
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Iterable, Iterator, Sequence

from vigil.errors import ExternalError, NotFoundError, UsageError

MAX_FILE_BYTES = 10 * 1024 * 1024
SKIP_DIRS = frozenset({".git", ".hg", ".svn", "node_modules", ".venv", "venv", "__pycache__", ".tox", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".vigil"})
BINARY_EXT = frozenset(
    ".png .jpg .jpeg .gif .ico .webp .bmp .tif .tiff .pdf .zip .gz .tgz .bz2 .xz .7z .rar .jar .war .class .so .dylib .dll"
    " .exe .bin .o .a .pyc .pyo .whl .woff .woff2 .ttf .eot .otf .mp3 .mp4 .mov .avi .wav .flac .ogg .sqlite .db".split()
)


@dataclass
class Text:
    """One text to scan: a file, or the added lines of a file in one commit.

    ``lines`` maps each line of ``text`` to its line number in the file (None: text line i is file
    line i + 1)."""

    path: str
    text: str
    commit: str | None = None
    lines: list[int] | None = None
    encoding: str = "utf-8"

    def file_line(self, i: int) -> int:
        """The file's line number of the text's 1-based line ``i``."""
        if self.lines is None:
            return i
        return self.lines[i - 1] if 0 < i <= len(self.lines) else i


@dataclass
class Walk:
    texts: Iterable[Text] = field(default_factory=list)
    """The texts; from :func:`walk_path` a generator read as it is consumed (one file in memory at a
    time), so ``files``, ``bytes`` and ``skipped`` are complete once it has been consumed."""
    skipped: list[dict] = field(default_factory=list)
    files: int = 0
    bytes: int = 0
    commits: int = 0


def decode_bytes(data: bytes) -> tuple[str, str] | None:
    """The text of a file and the encoding it was read in; None for a binary file.

    A byte-order mark decides (UTF-8, UTF-16, UTF-32); UTF-16 without one is recognised by its
    zero bytes; otherwise UTF-8, else Latin-1 for a text with no zero byte."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", "replace"), "utf-8-sig"
    if data.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        try:
            return data.decode("utf-32"), "utf-32"
        except UnicodeDecodeError:
            return None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError:
            return None
    head = data[:8192]
    if b"\x00" in head:
        if len(head) >= 4 and head[1::2].count(0) >= len(head[1::2]) * 0.9:
            try:
                return data.decode("utf-16-le"), "utf-16-le"
            except UnicodeDecodeError:
                return None
        if len(head) >= 4 and head[0::2].count(0) >= len(head[0::2]) * 0.9:
            try:
                return data.decode("utf-16-be"), "utf-16-be"
            except UnicodeDecodeError:
                return None
        return None
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "latin-1"


def _excluded(rel: str, excludes: Sequence[str]) -> bool:
    parts = PurePosixPath(rel).parts
    for pat in excludes:
        p = pat.rstrip("/")
        if fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(rel, p + "/*") or any(fnmatch.fnmatch(x, p) for x in parts):
            return True
    return False


def walk_path(root: str, *, excludes: Sequence[str] = (), display_root: str | None = None) -> Walk:
    """Every text file under ``root`` (or ``root`` itself), skipping VCS and dependency folders,
    ``excludes`` (globs on the path relative to ``root`` or any of its parts), symlinks, binary
    files and files over :data:`MAX_FILE_BYTES` (those are listed in ``skipped``).

    Paths are relative to ``root``; with ``display_root`` (the CLI passes the working directory)
    they are relative to it when the file is under it, so ``scan .``, ``scan src`` and ``scan
    ./src/a.py`` name a file, and fingerprint its secrets, the same way."""
    excludes = list(excludes)
    base = Path(root)
    shown = _shown(display_root)
    if not base.exists():
        raise NotFoundError(f"{root}: no such file or directory", hint="pass a file or directory to scan, or --git BASE..HEAD")
    w = Walk()

    def gen() -> Iterator[Text]:
        if base.is_file():
            t = _read(w, base, shown(base, os.path.normpath(str(root))))
            if t is not None:
                yield t
            return
        for dirpath, dirnames, filenames in os.walk(base, followlinks=False):
            rel_dir = os.path.relpath(dirpath, base)
            dirnames[:] = sorted(
                d for d in dirnames
                if d not in SKIP_DIRS and not os.path.islink(os.path.join(dirpath, d))
                and not _excluded(os.path.normpath(os.path.join(rel_dir, d)).replace(os.sep, "/"), excludes)
            )
            for name in sorted(filenames):
                p = Path(dirpath) / name
                rel = os.path.normpath(os.path.join(rel_dir, name)).replace(os.sep, "/")
                if _excluded(rel, excludes) or p.is_symlink():
                    continue
                t = _read(w, p, shown(p, rel))
                if t is not None:
                    yield t

    w.texts = gen()
    return w


def _shown(display_root: str | None):
    def shown(p: Path, rel: str) -> str:
        if display_root is None:
            return rel
        r = os.path.relpath(os.path.abspath(p), os.path.abspath(display_root))
        return rel if r.startswith("..") else r.replace(os.sep, "/")

    return shown


def _read(w: Walk, p: Path, rel: str) -> Text | None:
    if p.suffix.lower() in BINARY_EXT:
        return None
    try:
        size = p.stat().st_size
        if size > MAX_FILE_BYTES:
            w.skipped.append({"path": rel, "reason": f"larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB"})
            return None
        data = p.read_bytes()
    except PermissionError:
        w.skipped.append({"path": rel, "reason": "permission denied"})
        return None
    except OSError as e:
        w.skipped.append({"path": rel, "reason": f"unreadable: {e.strerror or e}"})
        return None
    dec = decode_bytes(data)
    if dec is None:
        return None
    w.files += 1
    w.bytes += len(data)
    return Text(rel, dec[0], encoding=dec[1])


# --- git ----------------------------------------------------------------------------------------

_RANGE = re.compile(r"^([^\s.][^\s]*?)\.\.([^\s.][^\s]*)$")
_HUNK = re.compile(r"^@@@* (?:-\d+(?:,\d+)? )+\+(\d+)(?:,(\d+))? @@@*")


def _git(args: list[str], cwd: str, *, check: bool = True) -> subprocess.CompletedProcess:
    try:
        cp = subprocess.run(
            ["git", "-c", "core.quotepath=false", *args], cwd=cwd, capture_output=True, timeout=600,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"},
        )
    except FileNotFoundError:
        raise ExternalError("git is not installed", hint="install git, or scan a path instead of --git") from None
    except subprocess.TimeoutExpired:
        raise ExternalError("git did not answer within 600 s") from None
    if check and cp.returncode != 0:
        err = cp.stderr.decode("utf-8", "replace").strip().splitlines()
        raise UsageError(f"git {' '.join(args[:2])} failed: {err[-1] if err else 'exit ' + str(cp.returncode)}")
    return cp


def parse_range(spec: str) -> tuple[str, str]:
    m = _RANGE.match(spec.strip())
    if not m or "..." in spec:
        raise UsageError(f"--git takes a range BASE..HEAD, got {spec!r}", hint="e.g. --git origin/main..HEAD (two dots)")
    return m.group(1), m.group(2)


def walk_git(spec: str, repo: str = ".", *, excludes: Sequence[str] = ()) -> Walk:
    """The lines every commit of ``BASE..HEAD`` adds (history included: a secret added in one
    commit and removed in the next is still found), each with its commit, path and line number.
    Merge commits contribute the lines they add beyond all their parents (conflict resolutions)."""
    base, head = parse_range(spec)
    if _git(["rev-parse", "--is-inside-work-tree"], repo, check=False).returncode != 0:
        raise UsageError(f"{os.path.abspath(repo)} is not a git repository", hint="run in the repository, or pass --repo DIR")
    for rev in (base, head):
        if _git(["rev-parse", "--verify", "--quiet", rev + "^{commit}"], repo, check=False).returncode != 0:
            raise UsageError(f"unknown revision {rev!r} in --git {spec}", hint="fetch the base first (git fetch origin main), or check the range")
    cp = _git(
        ["log", "--reverse", "--format=%x00commit %H", "-p", "--cc", "-M", "--unified=0", "--no-color", "--no-ext-diff",
         "--no-textconv", "--src-prefix=a/", "--dst-prefix=b/", f"{base}..{head}"],
        repo,
    )
    return parse_log(cp.stdout, excludes=list(excludes))


def parse_log(out: bytes, *, excludes: Sequence[str] = ()) -> Walk:
    """The added lines of ``git log -p --cc --unified=0`` output, per commit and file."""
    w = Walk()
    commit: str | None = None
    path: str | None = None
    cur: dict[tuple[str, str], tuple[list[str], list[int]]] = {}
    order: list[tuple[str, str]] = []
    parents = 1
    next_line = 0
    skip_file = False
    for raw in out.split(b"\n"):
        if raw.startswith(b"\x00commit "):
            commit = raw[8:].decode().strip()
            w.commits += 1
            path = None
            continue
        if raw.startswith(b"diff --git ") or raw.startswith(b"diff --cc ") or raw.startswith(b"diff --combined "):
            path = None
            skip_file = False
            parents = 2 if not raw.startswith(b"diff --git ") else 1
            continue
        if raw.startswith(b"+++ "):
            name = raw[4:].decode("utf-8", "replace").removesuffix("\t")  # git ends a name with a space by a tab
            if name == "/dev/null":
                path = None
                continue
            name = _unquote(name)
            path = name[2:] if name.startswith("b/") else name
            skip_file = _excluded(path, list(excludes)) or PurePosixPath(path).suffix.lower() in BINARY_EXT
            continue
        if raw.startswith(b"Binary files "):
            path = None
            continue
        if raw.startswith(b"@@"):
            m = _HUNK.match(raw.decode("utf-8", "replace"))
            if m:
                parents = max(1, raw.split(b" ", 1)[0].count(b"@") - 1)
                next_line = int(m.group(1))
            continue
        if path is None or commit is None or skip_file:
            continue
        prefix = raw[:parents]
        if len(prefix) == parents and prefix == b"+" * parents:
            key = (commit, path)
            if key not in cur:
                cur[key] = ([], [])
                order.append(key)
            dec = decode_bytes(raw[parents:])
            cur[key][0].append(dec[0] if dec else "")
            cur[key][1].append(next_line)
            next_line += 1
        elif prefix and b"-" not in prefix:
            next_line += 1  # a context line (not with --unified=0, but merges may show some)
    texts: list[Text] = []
    for key in order:
        lines, numbers = cur[key]
        text = "\n".join(lines)
        w.bytes += len(text)
        texts.append(Text(key[1], text, commit=key[0], lines=numbers))
    w.texts = texts
    w.files = len({k[1] for k in order})
    return w


def _unquote(name: str) -> str:
    """git's C-style quoting of unusual paths (``"b/caf\\303\\251.txt"``)."""
    if not (name.startswith('"') and name.endswith('"')):
        return name
    body = name[1:-1]
    out = bytearray()
    i = 0
    esc = {"n": 10, "t": 9, '"': 34, "\\": 92, "a": 7, "b": 8, "f": 12, "r": 13, "v": 11}
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body):
            n = body[i + 1]
            if n in esc:
                out.append(esc[n])
                i += 2
                continue
            if n.isdigit() and i + 3 < len(body) + 1:
                out.append(int(body[i + 1:i + 4], 8))
                i += 4
                continue
        out.extend(c.encode())
        i += 1
    return out.decode("utf-8", "replace")


def iter_texts(w: Walk) -> Iterator[Text]:
    yield from w.texts
