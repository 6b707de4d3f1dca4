"""``vigil serve``: the JSON API over the store, with retention housekeeping."""

from __future__ import annotations

import os
import secrets
import threading
from pathlib import Path

import click

from vigil import exitcodes
from vigil.cli.common import db_option, emit, env, json_option, spec_option
from vigil.clock import FakeClock
from vigil.errors import UsageError


def resolve_token(token_file: str | None, spec_path: str) -> tuple[str, str]:
    """The single admin token and where it came from: --token-file (named explicitly, it wins),
    $VIGIL_TOKEN, or .vigil/token next to the spec (generated, mode 0600, when missing). A token
    file readable by others is refused."""
    from vigil.secrets import read_secret_file

    if token_file:
        return read_secret_file(token_file, "API token"), token_file
    tok = os.environ.get("VIGIL_TOKEN", "").strip()
    if tok:
        return tok, "$VIGIL_TOKEN"
    path = Path(spec_path).absolute().parent / ".vigil" / "token"
    if path.exists():
        return read_secret_file(path, "API token"), str(path)
    if not path.parent.exists():
        path.parent.mkdir(parents=True, mode=0o700)
    tok = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(tok + "\n")
    return tok, str(path)


def default_tokens_file(spec_path: str) -> Path:
    """Where `vigil token add` keeps named tokens by default: .vigil/tokens.yaml next to the spec."""
    return Path(spec_path).absolute().parent / ".vigil" / "tokens.yaml"


def resolve_tokens(token_file: str | None, tokens_file: str | None, spec_path: str):
    """The tokens the server accepts, and where they came from. What is named explicitly wins:
    --tokens-file, --token-file, $VIGIL_TOKENS_FILE, $VIGIL_TOKEN, then .vigil/tokens.yaml next to the
    spec (named tokens), then .vigil/token (one admin token, generated when missing)."""
    from vigil.auth import Tokens, load_tokens_file

    if tokens_file and token_file:
        raise UsageError("--token-file and --tokens-file exclude each other", hint="with a tokens file, every token is named in it")
    if tokens_file:
        return load_tokens_file(tokens_file), f"tokens file {tokens_file}"
    if token_file:
        tok, where = resolve_token(token_file, spec_path)
        return Tokens.single(tok), where
    env_file = os.environ.get("VIGIL_TOKENS_FILE", "").strip()
    if env_file:
        return load_tokens_file(env_file), f"tokens file {env_file} ($VIGIL_TOKENS_FILE)"
    if not os.environ.get("VIGIL_TOKEN", "").strip():
        default = default_tokens_file(spec_path)
        if default.exists():
            return load_tokens_file(default), f"tokens file {default}"
    tok, where = resolve_token(None, spec_path)
    return Tokens.single(tok), where


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on")
@click.option("--port", type=click.IntRange(0, 65535), default=8470, show_default=True)
@click.option("--token-file", type=click.Path(dir_okay=False), help="file holding the one admin API token (else $VIGIL_TOKEN, else .vigil/token, generated)")
@click.option("--tokens-file", type=click.Path(dir_okay=False), help="named tokens with roles (else $VIGIL_TOKENS_FILE); see vigil token add")
@click.option("--purge-every", type=click.IntRange(60, 86400), default=3600, show_default=True, help="seconds between retention passes")
@spec_option
@db_option
@json_option
def serve_cmd(host: str, port: int, token_file: str | None, tokens_file: str | None, purge_every: int) -> int:
    """Serve the JSON API (push, SLO status, deploy gate) on HOST:PORT."""
    import uvicorn

    from vigil.web.app import create_app

    e = env()
    loaded = e.loaded
    store = e.store
    tokens, where = resolve_tokens(token_file, tokens_file, e.spec_path)
    app = create_app(loaded, store, tokens, e.clock)
    stop = threading.Event()

    def housekeeping() -> None:
        while not stop.wait(purge_every):
            try:
                retention_pass(e.clock, loaded, store)
            except Exception as exc:  # keep serving; say what failed
                click.echo(f"retention pass failed: {exc}", err=True)

    if isinstance(e.clock, FakeClock):
        click.echo("retention is off: VIGIL_NOW pins the clock, and telemetry is deleted by the real clock only", err=True)
    else:
        threading.Thread(target=housekeeping, name="vigil-retention", daemon=True).start()
    alerting = _start_alerting(e, loaded, store)
    if alerting is not None:
        app.state.metrics.watch(alerting)  # /metrics: evaluations, dispatches, the lease
    emit(
        {"serving": e.spec_path, "url": f"http://{host}:{port}", "token_source": where},
        lambda: click.echo(f"vigil serving {e.spec_path} on http://{host}:{port} (token: {where})", err=True),
    )
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
    finally:
        stop.set()
        if alerting is not None:
            alerting.stop()
    return exitcodes.OK


def retention_pass(clock, loaded, store) -> int | None:
    """Delete telemetry older than the spec's retention, and expired idempotency keys; the minute
    rows deleted. None under a pinned clock (VIGIL_NOW): a server replaying another time deletes
    nothing (pinned a year ahead, it would delete every real sample of the store)."""
    if isinstance(clock, FakeClock):
        return None
    now = clock.now()
    cutoff = int(now.timestamp() - float(loaded.spec.retention_seconds())) // 60
    return store.purge_before(cutoff, now_ms=int(now.timestamp() * 1000))  # idempotency keys expire by the clock


def _start_alerting(e, loaded, store):
    """The lease keeper and, on the leader, the rule evaluator and the dispatcher
    (vigil.alerting.service); None when the spec has no alerts and no alerting section, or when
    VIGIL_NOW pins the clock (evaluations and notifications happen at the real clock)."""
    from vigil.clock import FakeClock

    spec = loaded.spec
    if not spec.alerts and spec.alerting is None:
        return None
    if isinstance(e.clock, FakeClock):
        click.echo("alerting is off: VIGIL_NOW pins the clock, and rules are evaluated and notifications sent at the real clock", err=True)
        return None
    from vigil.alerting.service import AlertingService

    return AlertingService(loaded, store, e.clock, log=lambda s: click.echo(s, err=True)).start()


COMMANDS = [serve_cmd]
