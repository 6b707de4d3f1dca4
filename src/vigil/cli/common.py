"""What every command shares: the spec and store options, the clock, output in text or JSON."""

from __future__ import annotations

import getpass
import json
import os
import sys
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, Callable, Literal

import click

from vigil.clock import Clock, FakeClock, SystemClock, parse_time
from vigil.errors import UsageError

if TYPE_CHECKING:
    from vigil.spec import LoadedSpec
    from vigil.store import Store

StoreMode = Literal["read", "write", "create"]


def make_clock() -> Clock:
    """The system clock, or a pinned one when ``VIGIL_NOW`` is set (replays, tests, demos).

    A pinned clock never decides anything that is recorded: see :meth:`Env.decision_clock`."""
    pinned = os.environ.get("VIGIL_NOW")
    if pinned:
        return FakeClock(parse_time(pinned))
    return SystemClock()


STORE_MODES: dict[str, StoreMode] = {
    # writers that bring data in create the store when it is missing
    "push": "create",
    "serve": "create",
    "simulate": "create",
    "store init": "create",
    "backup run": "create",
    "backup status": "create",
    "drill run": "create",
    "canary judge": "create",
    "canary run": "create",
    "migrate verify": "create",
    "findings import": "create",
    "cost import": "create",
    # readers never create, never migrate, never take a write lock
    "slo status": "read",
    "gate log": "read",
    "check": "read",
    "canary history": "read",
    "drill history": "read",
    "store status": "read",
    "findings list": "read",
    "findings show": "read",
    "cost imports": "read",
    "cost breaches": "read",
    "alerts log": "read",
    "silence list": "read",
}
"""How each command opens the store (see :data:`vigil.store.Mode`). A command not listed opens an
existing store for writing (``gate deploy`` records its decision there) and never creates one."""


@dataclass
class Env:
    """Per-invocation state, built lazily from the options."""

    spec_path: str = "vigil.yaml"
    db_url: str | None = None
    json_mode: bool = False
    debug: bool = False
    clock: Clock = field(default_factory=make_clock)
    _store: Store | None = None
    _store_mode: str | None = None

    @cached_property
    def loaded(self) -> LoadedSpec:
        from vigil.spec import load_spec

        return load_spec(self.spec_path)

    @property
    def store_url(self) -> str:
        from vigil.store import default_db_url

        return self.db_url or os.environ.get("VIGIL_DB") or default_db_url(self.spec_path)

    @property
    def store(self) -> Store:
        """The store, opened the way the running command may use it (:data:`STORE_MODES`)."""
        return self.open_store(command_store_mode())

    def open_store(self, mode: StoreMode) -> Store:
        if self._store is not None:
            if self._store_mode == mode or self._store_mode != "read":
                return self._store
            self._store.close()  # a reader asked for more: reopen
            self._store = None
        from vigil.store import open_store

        self._store = open_store(self.store_url, mode=mode)
        self._store_mode = mode
        return self._store

    def at(self, text: str | None) -> datetime:
        now = self.clock.now()
        return parse_time(text, now=now) if text else now

    def decision_clock(self, what: str, *, hint: str | None = None) -> Clock:
        """The clock of a decision that is recorded: the real one, always. ``VIGIL_NOW`` pins the
        clock for replays and tests; a recorded decision under it is refused."""
        if isinstance(self.clock, FakeClock):
            raise UsageError(
                f"{what} is recorded, and a recorded decision is made at the real clock, but VIGIL_NOW pins the clock"
                f" to {os.environ.get('VIGIL_NOW')}",
                hint=hint or "unset VIGIL_NOW, or pass --what-if to ask what the answer would be (never recorded)",
            )
        return self.clock

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


def command_store_mode() -> StoreMode:
    """The store mode of the command running now (``write`` for a command not in STORE_MODES)."""
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return "write"
    path = ctx.command_path.split()[1:]  # drop the program name
    return STORE_MODES.get(" ".join(path), "write")


def env() -> Env:
    ctx = click.get_current_context()
    root = ctx.find_root()
    if root.obj is None:
        root.obj = Env()
    return root.obj


def actor() -> str | None:
    """Who runs the command, for the record: the operating-system login of the process.

    A CI's own identity ($GITHUB_ACTOR, $GITLAB_USER_LOGIN) or $VIGIL_ACTOR is something the caller
    sets, so it is recorded beside, never instead: ``alice (claims GITHUB_ACTOR=bob)``. Over the API
    the actor is the token's name, never a field of the request."""
    who = _os_login()
    for k in ("VIGIL_ACTOR", "GITHUB_ACTOR", "GITLAB_USER_LOGIN", "LOGNAME", "USER"):
        v = os.environ.get(k, "").strip()
        if v and v != who:
            return f"{who} (claims {k}={v[:100]})"
    return who


def _os_login() -> str:
    """The process's user as the operating system knows it (its effective uid's name), not $LOGNAME
    or $USER, which getpass.getuser() believes first and the caller sets."""
    try:
        import pwd

        return pwd.getpwuid(os.geteuid()).pw_name
    except (ImportError, KeyError, AttributeError):  # no pwd (Windows), or a uid without a name
        try:
            return getpass.getuser()
        except Exception:
            return f"uid {os.getuid()}" if hasattr(os, "getuid") else "unknown"


def spec_option(f: Callable) -> Callable:
    def cb(ctx: click.Context, _p: Any, value: str | None) -> str | None:
        if value is not None:
            env().spec_path = value
        return value

    return click.option(
        "--spec",
        envvar="VIGIL_SPEC",
        expose_value=False,
        callback=cb,
        is_eager=True,
        metavar="PATH",
        help="the spec file (default ./vigil.yaml, or $VIGIL_SPEC)",
    )(f)


def db_option(f: Callable) -> Callable:
    def cb(ctx: click.Context, _p: Any, value: str | None) -> str | None:
        if value is not None:
            env().db_url = value
        return value

    return click.option(
        "--db",
        envvar="VIGIL_DB",
        expose_value=False,
        callback=cb,
        metavar="URL",
        help="state database URL (default sqlite:///<spec dir>/.vigil/vigil.db, or $VIGIL_DB)",
    )(f)


def json_option(f: Callable) -> Callable:
    def cb(ctx: click.Context, _p: Any, value: bool) -> bool:
        if value:
            env().json_mode = True
        return value

    return click.option("--json", "json_", is_flag=True, expose_value=False, callback=cb, is_eager=True, help="print JSON (stable field names)")(f)


def at_option(f: Callable) -> Callable:
    return click.option(
        "--at", "at", metavar="TIME", default=None, help="evaluate at this time: RFC 3339, 'now' or relative like now-1h (default now)"
    )(f)


def write_out(dest: str | None, text: str) -> bool:
    """``text`` to ``dest`` (a path), or to stdout when ``dest`` is None or ``-``; True when it went to
    stdout (the command's document then is this one). A path that cannot be written is exit 2."""
    from pathlib import Path

    if dest is None or dest == "-":
        click.echo(text, nl=False)
        return True
    try:
        Path(dest).write_text(text, encoding="utf-8")
    except OSError as err:
        raise UsageError(f"cannot write {dest}: {err.strerror or err}") from None
    return False


def emit(data: Any, text: Callable[[], None] | str | None = None) -> None:
    """Print ``data`` as JSON in --json mode, else the readable form."""
    if env().json_mode:
        click.echo(json.dumps(data, indent=2, sort_keys=False, default=str))
    elif callable(text):
        text()
    elif text is not None:
        click.echo(text)


def terminal_width() -> int:
    """Columns to lay text out in: the terminal's, or $COLUMNS; piped output is not wrapped."""
    cols = os.environ.get("COLUMNS", "")
    if cols.isdigit() and int(cols) >= 20:
        return int(cols)
    if sys.stdout.isatty():
        import shutil

        return max(20, shutil.get_terminal_size((100, 24)).columns)
    return 10_000


def wrap(text: str, width: int, *, first: str = "", rest: str = "") -> str:
    """``text`` wrapped to ``width`` with a hanging indent, words never split."""
    import textwrap

    if len(first) + len(text) <= width:
        return first + text
    return textwrap.fill(
        text, width=max(width, len(first) + 20), initial_indent=first, subsequent_indent=rest,
        break_long_words=False, break_on_hyphens=False,
    )


def console():
    from rich.console import Console

    tty = sys.stdout.isatty()
    width = terminal_width()
    return Console(highlight=False, soft_wrap=False, width=width if width < 10_000 else 400, no_color=not tty, force_terminal=tty)


def require(cond: bool, message: str, hint: str | None = None) -> None:
    if not cond:
        raise UsageError(message, hint=hint)
