"""Running PostgreSQL tools as the right OS user.

PostgreSQL refuses to run as root, and pgBackRest must read the data directory, so when vigil runs
as root both run as the cluster's OS user (``postgres`` unless the spec says otherwise) through
``runuser``; otherwise they run as vigil's own user. Files vigil creates for them are handed over.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from pathlib import Path

from vigil.errors import ExternalError, UsageError

DEFAULT_SERVER_USER = "postgres"


def is_root() -> bool:
    return os.geteuid() == 0


def effective_user(configured: str | None) -> str | None:
    """The OS user to run tools as: ``None`` means vigil's own user (no ``runuser``)."""
    if not is_root():
        if configured and configured != _me():
            raise UsageError(
                f"backups.postgres.os_user is {configured!r} but vigil runs as {_me()!r} without root",
                hint="run vigil as that user, or as root (it then uses runuser), or remove os_user",
            )
        return None
    user = configured or DEFAULT_SERVER_USER
    if user == "root":
        raise UsageError("os_user root: PostgreSQL refuses to run as root", hint="use the cluster's owner, usually postgres")
    try:
        pwd.getpwnam(user)
    except KeyError:
        raise UsageError(
            f"there is no OS user {user!r} to run PostgreSQL tools as",
            hint="set backups.postgres.os_user to the owner of the data directory (installing postgresql creates `postgres`)",
        ) from None
    if shutil.which("runuser") is None:
        raise ExternalError("vigil runs as root but `runuser` is missing", hint="install util-linux, or run vigil as the postgres user")
    return user


def _me() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.geteuid())


def wrap(cmd: list[str], user: str | None) -> list[str]:
    return ["runuser", "-u", user, "--", *cmd] if user else list(cmd)


def hand_over(path: Path, user: str | None, *, recursive: bool = False) -> None:
    """Make ``path`` (and with ``recursive`` everything under it) belong to ``user`` (root only)."""
    if not user:
        return
    pw = pwd.getpwnam(user)
    os.chown(path, pw.pw_uid, pw.pw_gid)
    if recursive and path.is_dir():
        for root, dirs, files in os.walk(path):
            for n in dirs + files:
                os.chown(os.path.join(root, n), pw.pw_uid, pw.pw_gid, follow_symlinks=False)


def make_dir(path: Path, user: str | None, mode: int = 0o750) -> Path:
    """Create ``path`` (and parents), the last level owned by ``user``."""
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    path.mkdir(parents=True, exist_ok=True)
    for m in missing:
        hand_over(m, user)
    if missing:
        os.chmod(path, mode)
    return path


def can_access(path: Path, user: str | None, *, write: bool = False) -> bool:
    """Whether ``user`` (None: ourselves) can read (or write) ``path``, every parent included."""
    flag = "-w" if write else "-r"
    if not user:
        return os.access(path, os.W_OK if write else os.R_OK)
    p = subprocess.run(wrap(["test", flag, str(path)], user), capture_output=True, timeout=15)
    return p.returncode == 0


def clean_env() -> dict[str, str]:
    """The environment for PostgreSQL tools: no PG* or PGBACKREST_* variables (the spec rules), C locale, UTC."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "PGBACKREST_"))}
    env.update(LC_ALL="C", LANG="C", TZ="UTC")
    return env
