"""``vigil push FILE|-``: push telemetry (NDJSON or a JSON array) into the store or to a server.

The input is read once, in chunks, and cut into batches (50,000 lines or 8 MiB). Each batch is
keyed by a hash chain over its bytes and stored in one transaction with its key, locally or by a
server (the key is the request's Idempotency-Key), so pushing the same content again stores nothing,
and a push that failed part-way -- a crash, a full disk, a server error -- is finished by running the
same command again: the batches stored are skipped, the rest is stored.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, BinaryIO

import click

from vigil import exitcodes
from vigil.cli.common import db_option, emit, env, json_option, spec_option
from vigil.errors import ExternalError, StoreError, VigilError

if TYPE_CHECKING:
    from vigil.telemetry.push import PushResult


@dataclass
class Progress:
    """What a push has done so far: reported on success and on every failure."""

    result: PushResult
    batches: int = 0  # stored by this command
    skipped_batches: int = 0  # stored by an earlier push of the same content
    skipped_lines: int = 0
    committed_through: int = 0  # every line up to here is stored (or was already)
    already: dict = field(default_factory=lambda: {"accepted": 0, "rejected": 0})

    def to_dict(self) -> dict:
        d = self.result.to_dict()
        d.update(
            {
                "batches": self.batches,
                "already_stored": {"batches": self.skipped_batches, "lines": self.skipped_lines, **self.already},
                "committed_through_line": self.committed_through,
            }
        )
        return d


class PushIncomplete(VigilError):
    """A push failed part-way: says exactly what was stored, and that re-running stores the rest."""

    code = "push-incomplete"

    def __init__(self, cause: VigilError, progress: Progress, failed_lines: tuple[int, int] | None) -> None:
        self.cause = cause
        self.progress = progress
        self.exit_code = cause.exit_code
        self.http_status = cause.http_status
        res = progress.result
        where = f" at lines {failed_lines[0]}-{failed_lines[1]}" if failed_lines else ""
        if progress.committed_through:
            done = (
                f"lines 1-{progress.committed_through} are stored ({res.accepted} samples accepted, "
                f"{res.rejected_count} lines rejected by this run"
                + (f"; {progress.skipped_batches} batches were already stored" if progress.skipped_batches else "")
                + f"); nothing after line {progress.committed_through} was stored"
            )
        else:
            done = "nothing of this push was stored"
        super().__init__(
            f"push failed{where}: {cause.message} -- {done}",
            hint=(cause.hint + "; then " if cause.hint else "")
            + "run the same command again: what was stored is skipped (already stored), the rest is stored",
        )

    def to_dict(self) -> dict:
        d = super().to_dict()
        d["cause"] = self.cause.to_dict()
        d.update(self.progress.to_dict())
        return d


@click.command("push")
@click.argument("file", type=click.File("rb"), metavar="FILE|-")
@click.option("--url", metavar="URL", help="push to a vigil server (its /api/v1/push) instead of the local store")
@click.option("--token-file", type=click.Path(dir_okay=False), help="file holding the server's API token (or $VIGIL_TOKEN)")
@click.option(
    "--retries", type=click.IntRange(0, 20), default=3, show_default=True,
    help="with --url: retry a batch that failed with a network error, a timeout, 429 or 5xx this often (backoff 0.5s, 1s, 2s, ...; same key, so never stored twice)",
)
@spec_option
@db_option
@json_option
def push_cmd(file: BinaryIO, url: str | None, token_file: str | None, retries: int) -> int:
    """Push telemetry: one JSON object per line, or a JSON array.

    Each line is {"ts", "metric", "labels", and one of "inc" | "observe" (+ "count") | "set"}.
    Bad lines are reported with their line numbers; every good line is stored. Exit 2 if any
    line was rejected. Pushing the same content again stores nothing ("already stored"); after a
    failure, run the same command again to store the rest.
    """
    from vigil.telemetry.push import PushResult, batches

    e = env()
    progress = Progress(result=PushResult())
    read = getattr(file, "read1", None) or file.read
    show = not e.json_mode and sys.stderr.isatty()
    current: tuple[int, int] | None = None
    try:
        if url:
            from vigil.client import VigilClient, read_token, with_retries

            client = VigilClient(url, read_token(token_file))
            try:
                for b in batches(read):
                    current = (b.first, b.last)
                    (resp, replayed), tries = with_retries(partial(client.push_keyed, b.body, b.key, chain=True), retries=retries)
                    _is_push_result(resp, b, url)
                    rel = {n - b.first + 1: err for n, err in b.local_errors.items()}
                    if replayed and tries == 0:  # stored by an earlier push of this content
                        _skipped(progress, b, resp, rel)
                    else:  # (a replay after a retry is this push's own first attempt)
                        progress.result.add_remote(resp, b.first - 1, replace=rel)
                        progress.batches += 1
                    progress.committed_through = b.last
                    current = None
                    if show:
                        click.echo(f"\rstored through line {b.last:,}", nl=False, err=True)
            finally:
                client.close()
        else:
            from vigil.store.ingest_txn import KeyRow

            ing = _ingestor(e)
            for b in batches(read, keep_body=False):
                current = (b.first, b.last)
                row = e.store.ingest_key(b.key)
                if row is None:
                    s = ing.session(e.clock.now(), key=b.key, source="push", flush_lines=2**62)
                    try:
                        s.feed(b.items)
                        out = s.finish(body_sha256=b.body_sha256)
                    except BaseException:
                        s.abort()
                        raise
                    if isinstance(out, KeyRow):
                        row = out  # another push of the same content stored it just now
                    else:
                        progress.result.merge(out)
                        progress.batches += 1
                if row is not None:
                    _same_content(row, b)
                    _skipped(progress, b, row.result.get("body", {}), {})
                progress.committed_through = b.last
                current = None
                if show:
                    click.echo(f"\rstored through line {b.last:,}", nl=False, err=True)
    except VigilError as err:
        if show and progress.committed_through:
            click.echo("", err=True)
        raise PushIncomplete(err, progress, current) from None
    except OSError as err:  # reading the input failed
        if show and progress.committed_through:
            click.echo("", err=True)
        cause = ExternalError(f"reading the input failed: {err.strerror or err}")
        raise PushIncomplete(cause, progress, current) from None
    if show and progress.committed_through:
        click.echo("", err=True)
    result = progress.result
    d = progress.to_dict()

    def text() -> None:
        click.echo(f"accepted {result.accepted} samples, rejected {result.rejected_count}")
        if progress.skipped_batches:
            click.echo(
                f"already stored: {progress.skipped_batches} batches skipped ({progress.skipped_lines} lines,"
                f" {progress.already['accepted']} samples stored by an earlier push of the same content)"
            )
        for r in result.rejected[:20]:
            click.echo(f"  line {r.line}: {r.error}", err=True)
        if result.rejected_count > 20:
            click.echo(f"  ... and {result.rejected_count - 20} more (use --json to see up to 1000)", err=True)

    emit(d, text)
    return exitcodes.USAGE if result.rejected_count else exitcodes.OK


def _ingestor(e):
    from vigil.telemetry.push import Ingestor

    return Ingestor(e.loaded.spec, e.store)


def _is_push_result(resp: object, b, url: str) -> None:
    """The server's answer must be a push result for exactly the lines sent (accepted + rejected =
    the batch's non-blank lines): anything else -- a proxy's page, another service on that port --
    stored nothing we know of, and is never reported as stored."""
    sent = 0
    for n, raw in b.items:
        if n in b.local_errors:
            continue  # sent as a blank line, judged here
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        if isinstance(text, str) and text and not text.isspace():
            sent += 1
    ok = (
        isinstance(resp, dict)
        and all(type(resp.get(k)) is int and resp[k] >= 0 for k in ("accepted", "rejected"))
        and resp["accepted"] + resp["rejected"] == sent
    )
    if not ok:
        raise ExternalError(
            f"{url} answered lines {b.first}-{b.last} with something that is not a vigil push result for them"
            f" ({sent} lines sent; answer {str(resp)[:120]!r}): nothing of this batch is known to be stored",
            hint="check --url: it must be a vigil server (vigil serve), not a proxy's page or another service",
        )


def _same_content(row, b) -> None:
    """A batch is "already stored" only when the stored key holds this batch's bytes: a key taken by
    other content (an API client that sent this chain key as its Idempotency-Key) is an error, never
    a silent skip (the server's route answers 422 for the same reason)."""
    if row.body_sha256 and row.body_sha256 != b.body_sha256:
        raise StoreError(
            f"the key {row.key[:12]}... of lines {b.first}-{b.last} is held in the store by a different body"
            f" (SHA-256 {row.body_sha256[:12]}...; this batch {b.body_sha256[:12]}...):"
            " nothing of this batch was stored",
            hint="another client sent this push's chain key as its Idempotency-Key; an operator must find and remove"
            " that key (table ingest_keys) before this content can be stored",
        )


def _skipped(progress: Progress, b, first: dict, rel: dict) -> None:
    """``rel``: lines this side rejected (sent to a server as blank lines, which it does not count)."""
    progress.skipped_batches += 1
    progress.skipped_lines += b.last - b.first + 1
    progress.already["accepted"] += int(first.get("accepted", 0))
    progress.already["rejected"] += int(first.get("rejected", 0)) + len(rel)


COMMANDS = [push_cmd]
