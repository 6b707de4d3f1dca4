"""``vigil serve``: the JSON API over the store, with retention housekeeping."""

from __future__ import annotations

import os
import secrets
import threading
from pathlib import Path

import click

from vigil import exitcodes
from vigil.cli.common import db_option, emit, env, json_option, spec_option
from vigil.errors import UsageError


def resolve_token(token_file: str | None, spec_path: str) -> tuple[str, str]:
    """The API token and where it came from: $VIGIL_TOKEN, --token-file, or a generated one
    written (mode 0600) to .vigil/token next to the spec."""
    tok = os.environ.get("VIGIL_TOKEN", "").strip()
    if tok:
        return tok, "$VIGIL_TOKEN"
    path = Path(token_file) if token_file else Path(spec_path).absolute().parent / ".vigil" / "token"
    if path.exists():
        tok = path.read_text().strip()
        if not tok:
            raise UsageError(f"the token file {path} is empty")
        return tok, str(path)
    if token_file:
        raise UsageError(f"the token file {token_file} does not exist")
    path.parent.mkdir(parents=True, exist_ok=True)
    tok = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(tok + "\n")
    return tok, str(path)


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on")
@click.option("--port", type=click.IntRange(0, 65535), default=8470, show_default=True)
@click.option("--token-file", type=click.Path(dir_okay=False), help="file holding the API token (else $VIGIL_TOKEN, else generated)")
@click.option("--purge-every", type=click.IntRange(60, 86400), default=3600, show_default=True, help="seconds between retention passes")
@spec_option
@db_option
@json_option
def serve_cmd(host: str, port: int, token_file: str | None, purge_every: int) -> int:
    """Serve the JSON API (push, SLO status, deploy gate) on HOST:PORT."""
    import uvicorn

    from vigil.web.app import create_app

    e = env()
    loaded = e.loaded
    store = e.store
    token, where = resolve_token(token_file, e.spec_path)
    app = create_app(loaded, store, token, e.clock)
    stop = threading.Event()

    def housekeeping() -> None:
        while not stop.wait(purge_every):
            try:
                cutoff = int(e.clock.now().timestamp() - float(loaded.spec.retention_seconds())) // 60
                store.purge_before(cutoff)
            except Exception as exc:  # keep serving; say what failed
                click.echo(f"retention pass failed: {exc}", err=True)

    threading.Thread(target=housekeeping, name="vigil-retention", daemon=True).start()
    emit(
        {"serving": e.spec_path, "url": f"http://{host}:{port}", "token_source": where},
        lambda: click.echo(f"vigil serving {e.spec_path} on http://{host}:{port} (token: {where})", err=True),
    )
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
    finally:
        stop.set()
    return exitcodes.OK


COMMANDS = [serve_cmd]
