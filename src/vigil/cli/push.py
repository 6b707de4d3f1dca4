"""``vigil push FILE|-``: push telemetry (NDJSON or a JSON array) into the store or to a server."""

from __future__ import annotations

from typing import BinaryIO, Iterator

import click

from vigil import exitcodes
from vigil.cli.common import db_option, emit, env, json_option, spec_option
from vigil.errors import UsageError
from vigil.telemetry.push import DEFAULT_MAX_BODY, Ingestor, PushResult

BATCH_LINES = 50_000


def _batches(f: BinaryIO) -> Iterator[list[tuple[int, bytes]]]:
    batch: list[tuple[int, bytes]] = []
    for n, line in enumerate(f, 1):
        batch.append((n, line))
        if len(batch) >= BATCH_LINES:
            yield batch
            batch = []
    if batch:
        yield batch


@click.command("push")
@click.argument("file", type=click.File("rb"), metavar="FILE|-")
@click.option("--url", metavar="URL", help="push to a vigil server (its /api/v1/push) instead of the local store")
@click.option("--token-file", type=click.Path(dir_okay=False), help="file holding the server's API token (or $VIGIL_TOKEN)")
@spec_option
@db_option
@json_option
def push_cmd(file: BinaryIO, url: str | None, token_file: str | None) -> int:
    """Push telemetry: one JSON object per line, or a JSON array.

    Each line is {"ts", "metric", "labels", and one of "inc" | "observe" (+ "count") | "set"}.
    Bad lines are reported with their line numbers; every good line is stored. Exit 2 if any
    line was rejected.
    """
    e = env()
    result = PushResult()
    if url:
        from vigil.client import VigilClient, read_token

        client = VigilClient(url, read_token(token_file))
        for batch, first in _http_batches(file):
            result.add_remote(client.push(batch), first - 1)
    else:
        ing = Ingestor(e.loaded.spec, e.store)
        head = file.peek(64) if hasattr(file, "peek") else b""
        if head.lstrip()[:1] == b"[":
            res = ing.push_body(file.read(DEFAULT_MAX_BODY * 64 + 1), e.clock.now(), max_bytes=DEFAULT_MAX_BODY * 64)
            result = res
        else:
            for batch in _batches(file):
                result.add(ing.push_lines(batch, e.clock.now()))
    d = result.to_dict()

    def text() -> None:
        click.echo(f"accepted {result.accepted} samples, rejected {result.rejected_count}")
        for r in result.rejected[:20]:
            click.echo(f"  line {r.line}: {r.error}", err=True)
        if result.rejected_count > 20:
            click.echo(f"  ... and {result.rejected_count - 20} more (use --json to see up to 1000)", err=True)

    emit(d, text)
    return exitcodes.USAGE if result.rejected_count else exitcodes.OK


def _http_batches(f: BinaryIO) -> Iterator[tuple[bytes, int]]:
    """Chunks of whole lines under the server's body limit, with the first line's number."""
    limit = DEFAULT_MAX_BODY // 2
    buf: list[bytes] = []
    size = 0
    first = 1
    n = 0
    for n, line in enumerate(f, 1):
        if size + len(line) > limit and buf:
            yield b"".join(buf), first
            buf, size, first = [], 0, n
        buf.append(line if line.endswith(b"\n") else line + b"\n")
        size += len(line) + 1
    if buf:
        yield b"".join(buf), first
    if n == 0:
        raise UsageError("the input is empty")


COMMANDS = [push_cmd]

