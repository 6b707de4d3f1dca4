"""Small asyncio helpers shared by the HTTP edges (kernel: no dependencies)."""

from __future__ import annotations

import asyncio
from typing import AsyncIterable, AsyncIterator, Callable


async def idle_chunks(stream: AsyncIterable[bytes], idle: float, stalled: Callable[[], BaseException]) -> AsyncIterator[bytes]:
    """The chunks of ``stream``; when it sends nothing for ``idle`` seconds, ``stalled()`` is raised,
    so a client that stops sending a body cannot hold what it was given (an ingest slot) for ever."""
    it = stream.__aiter__()
    while True:
        try:
            chunk = await asyncio.wait_for(it.__anext__(), idle)
        except StopAsyncIteration:
            return
        except (asyncio.TimeoutError, TimeoutError):
            raise stalled() from None
        yield chunk
