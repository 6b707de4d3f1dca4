"""What every command shares: the spec and store options, the clock, output in text or JSON."""

from __future__ import annotations

import getpass
import json
import os
import sys
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any, Callable

import click

from vigil.clock import Clock, FakeClock, SystemClock, parse_time
from vigil.errors import UsageError
from vigil.spec import LoadedSpec, load_spec
from vigil.store import Store, default_db_url, open_store


def make_clock() -> Clock:
    """The system clock, or a pinned one when ``VIGIL_NOW`` is set (replays, tests, demos)."""
    pinned = os.environ.get("VIGIL_NOW")
    if pinned:
        return FakeClock(parse_time(pinned))
    return SystemClock()


@dataclass
class Env:
    """Per-invocation state, built lazily from the options."""

    spec_path: str = "vigil.yaml"
    db_url: str | None = None
    json_mode: bool = False
    debug: bool = False
    clock: Clock = field(default_factory=make_clock)
    _store: Store | None = None

    @cached_property
    def loaded(self) -> LoadedSpec:
        return load_spec(self.spec_path)

    @property
    def store(self) -> Store:
        if self._store is None:
            url = self.db_url or os.environ.get("VIGIL_DB") or default_db_url(self.spec_path)
            self._store = open_store(url)
        return self._store

    def at(self, text: str | None) -> datetime:
        now = self.clock.now()
        return parse_time(text, now=now) if text else now

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


def env() -> Env:
    ctx = click.get_current_context()
    root = ctx.find_root()
    if root.obj is None:
        root.obj = Env()
    return root.obj


def actor() -> str | None:
    """Who runs the command, for the record: $VIGIL_ACTOR, the CI's user, or the login name."""
    for k in ("VIGIL_ACTOR", "GITHUB_ACTOR", "GITLAB_USER_LOGIN", "USER"):
        if os.environ.get(k):
            return os.environ[k]
    try:
        return getpass.getuser()
    except Exception:
        return None


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


def emit(data: Any, text: Callable[[], None] | str | None = None) -> None:
    """Print ``data`` as JSON in --json mode, else the readable form."""
    if env().json_mode:
        click.echo(json.dumps(data, indent=2, sort_keys=False, default=str))
    elif callable(text):
        text()
    elif text is not None:
        click.echo(text)


def console():
    from rich.console import Console

    return Console(highlight=False, soft_wrap=False, width=None if sys.stdout.isatty() else 200)


def require(cond: bool, message: str, hint: str | None = None) -> None:
    if not cond:
        raise UsageError(message, hint=hint)
