"""``vigil token add | list | remove``: named API tokens with roles, kept as SHA-256 in a tokens file."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import click

from vigil import exitcodes
from vigil.cli.common import emit, env, json_option, spec_option
from vigil.errors import NotFoundError, UsageError


def _tokens_path(tokens_file: str | None) -> Path:
    from vigil.cli.serve import default_tokens_file

    named = tokens_file or os.environ.get("VIGIL_TOKENS_FILE", "").strip()
    return Path(named) if named else default_tokens_file(env().spec_path)


def _read(path: Path) -> list[dict]:
    from vigil.auth import load_tokens_file

    if not path.exists():
        return []
    return [{"name": e.name, "role": e.role, "sha256": e.sha256} for e in load_tokens_file(path).entries]


def _write(path: Path, entries: list[dict]) -> None:
    """Write the tokens file atomically, mode 0600, in a 0700 directory when vigil makes it."""
    try:
        _write_file(path, entries)
    except OSError as e:
        raise UsageError(
            f"cannot write the tokens file {path}: {e.strerror or e}", hint="pass --tokens-file a path in a directory you can write"
        ) from None


def _write_file(path: Path, entries: list[dict]) -> None:
    if not path.parent.exists():
        path.parent.mkdir(parents=True, mode=0o700)
    lines = ["# vigil API tokens: names, roles and SHA-256 digests (never the tokens). Managed by `vigil token`.", "tokens:"]
    for e in entries:
        lines.append(f"  - {{name: {e['name']}, role: {e['role']}, sha256: {e['sha256']}}}")
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


tokens_file_option = click.option(
    "--tokens-file", type=click.Path(dir_okay=False), help="the tokens file (default $VIGIL_TOKENS_FILE, else .vigil/tokens.yaml next to the spec)"
)


@click.group("token")
def token_group() -> None:
    """API tokens with names and roles for vigil serve (a tokens file)."""


@token_group.command("add")
@click.option("--name", required=True, metavar="NAME", help="who or what uses the token; recorded as the actor of what it does")
@click.option("--role", required=True, type=click.Choice(["viewer", "pusher", "deployer", "admin"]), help="what the token may do")
@tokens_file_option
@spec_option
@json_option
def add_cmd(name: str, role: str, tokens_file: str | None) -> int:
    """Make a new token, print it once, and keep only its SHA-256 in the tokens file."""
    from vigil.auth import NAME, digest

    if not NAME.match(name):
        raise UsageError(f"token name {name!r} must be 1-64 letters, digits, '.', '_', '@' or '-'")
    path = _tokens_path(tokens_file)
    entries = _read(path)
    if any(e["name"] == name for e in entries):
        raise UsageError(f"a token named {name!r} exists already in {path}", hint=f"vigil token remove --name {name} first")
    token = secrets.token_urlsafe(32)
    entries.append({"name": name, "role": role, "sha256": digest(token)})
    _write(path, entries)

    def text() -> None:
        click.echo(token)
        click.echo(
            f"token {name!r} ({role}) added to {path}; it is shown only now. vigil serve reads this file"
            " (restart it to pick up a change).",
            err=True,
        )

    emit({"name": name, "role": role, "token": token, "tokens_file": str(path)}, text)
    return exitcodes.OK


@token_group.command("list")
@tokens_file_option
@spec_option
@json_option
def list_cmd(tokens_file: str | None) -> int:
    """The named tokens and their roles (never the tokens)."""
    path = _tokens_path(tokens_file)
    entries = [{"name": e["name"], "role": e["role"], "sha256_prefix": e["sha256"][:12]} for e in _read(path)]

    def text() -> None:
        if not entries:
            click.echo(f"no named tokens in {path} (vigil serve then uses one admin token)")
        for e in entries:
            click.echo(f"{e['name']:<24} {e['role']:<9} sha256:{e['sha256_prefix']}…")

    emit({"tokens_file": str(path), "tokens": entries}, text)
    return exitcodes.OK


@token_group.command("remove")
@click.option("--name", required=True, metavar="NAME", help="the token to remove")
@tokens_file_option
@spec_option
@json_option
def remove_cmd(name: str, tokens_file: str | None) -> int:
    """Remove a named token (vigil serve stops accepting it when restarted)."""
    path = _tokens_path(tokens_file)
    entries = _read(path)
    kept = [e for e in entries if e["name"] != name]
    if len(kept) == len(entries):
        raise NotFoundError(f"no token named {name!r} in {path}")
    if not kept:
        path.unlink()
    else:
        _write(path, kept)
    emit({"removed": name, "tokens_file": str(path)}, f"token {name!r} removed from {path}")
    return exitcodes.OK
