"""Dynamic batching: concurrent requests for one model run as one ONNX Runtime call.

A request waits at most ``max_wait_ms`` for others to join it, up to ``max_batch`` rows; a
request that is already a full batch bypasses the queue. Both limits can be changed while the
server runs. The queue is bounded twice, and a request refused is refused at once with
:class:`OverloadedError` (HTTP 503 with ``Retry-After``) instead of waiting without bound: by
rows (``max_queue``) and by time (``max_queue_ms``: the wait a request would have, estimated
as the calls ahead of it, including the one running, times the measured seconds per call).

A model whose single-row call is cheap (``inline_below_ms``, measured once when the batcher is
made) is never queued: it runs at once in the event loop itself, because a thread hop or a
wait for company costs more than such a call (single-row throughput 1,033 req/s with a hop per
request in the serving benchmark). Heavier models are batched and run in a worker thread, so
the loop keeps accepting requests that join the next batch.

Rows are concatenated along the first axis per input and the outputs are split back by each
request's row count, so every caller gets its own rows, in order. Requests whose inputs differ
in names, dtypes or trailing shapes are never mixed in one call.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from couturier.errors import CouturierError

__all__ = ["Batcher", "OverloadedError"]

Run = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]


class OverloadedError(CouturierError):
    """The queue is full: come back later (``retry_after`` seconds)."""

    http_status = 503

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message, retry_after=retry_after)
        self.retry_after = retry_after


@dataclass
class _Item:
    feeds: dict[str, np.ndarray]
    rows: int
    future: asyncio.Future[dict[str, np.ndarray]]
    enqueued: float = field(default_factory=time.perf_counter)
    signature: tuple[Any, ...] = ()  # names, dtypes, trailing shapes: who may share a call

    def __post_init__(self) -> None:
        self.signature = tuple((k, v.dtype.str, v.shape[1:]) for k, v in sorted(self.feeds.items()))


@dataclass
class Batching:
    """Dynamic batching limits for every model (``docs/serving.md``)."""

    max_batch: int = 64
    max_wait_ms: float = 2.0
    max_queue: int = 1024
    max_queue_ms: float = 250.0  # refuse (503) a request whose estimated wait is longer
    inline_below_ms: float = 0.5  # cheaper models run at once in the event loop, unqueued


class Batcher:
    """One per loaded model version. ``observe`` receives (rows, queue seconds) per call."""

    def __init__(  # noqa: PLR0913 - every batching limit is a keyword of its own
        self,
        run: Run,
        *,
        max_batch: int = 64,
        max_wait_ms: float = 2.0,
        max_queue: int = 1024,
        executor: ThreadPoolExecutor | None = None,
        observe: Callable[[int, float], None] | None = None,
        inline: bool = False,
        max_queue_ms: float = 250.0,
        call_s: float | None = None,
    ) -> None:
        self.run = run
        self.inline = inline
        self.max_batch = max_batch
        self.max_wait_ms = max_wait_ms
        self.max_queue = max_queue
        self.max_queue_ms = max_queue_ms
        #: seconds per model call (moving average); None until measured
        self.call_s = call_s
        self._running = 0
        self._executor = executor or ThreadPoolExecutor(max_workers=1)
        self._observe = observe
        self._pending: list[_Item] = []
        self._wake: asyncio.Event | None = None
        self._worker: asyncio.Task[None] | None = None
        self.queued_rows = 0
        self.calls = 0

    async def submit(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows = len(next(iter(feeds.values())))
        loop = asyncio.get_running_loop()
        # already a full batch, or a model cheaper than any wait: run now
        if rows >= self.max_batch or self.inline:
            self.calls += 1
            if self._observe:
                self._observe(rows, -1.0)  # never queued
            if self.inline:
                return self.run(feeds)
            return await loop.run_in_executor(self._executor, self.run, feeds)
        if self.queued_rows + rows > self.max_queue:
            raise OverloadedError(
                f"{self.queued_rows} rows are already waiting (the limit is {self.max_queue}); "
                "retry shortly",
                retry_after=1.0,
            )
        wait_s = self.estimated_wait_s(rows)
        if wait_s * 1000 > self.max_queue_ms:
            raise OverloadedError(
                f"this request would wait about {wait_s * 1000:.0f} ms (the budget is "
                f"{self.max_queue_ms:.0f} ms); retry shortly",
                retry_after=wait_s,
            )
        item = _Item(feeds, rows, loop.create_future())
        self._pending.append(item)
        self.queued_rows += rows
        self._ensure_worker()
        assert self._wake is not None
        self._wake.set()
        return await item.future

    def estimated_wait_s(self, rows: int) -> float:
        """How long ``rows`` more would wait: the calls ahead of them, the running one included,
        times the measured seconds per call (0 until a call has been measured)."""
        if self.call_s is None:
            return 0.0
        calls = -(-(self.queued_rows + rows) // self.max_batch) + self._running
        return calls * self.call_s

    def _ensure_worker(self) -> None:
        if self._worker is None or self._worker.done():
            self._wake = asyncio.Event()
            self._worker = asyncio.get_running_loop().create_task(self._loop())

    async def _loop(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                first = self._pending[0]
                deadline = first.enqueued + self.max_wait_ms / 1000.0
                while self._rows_like(first) < self.max_batch:
                    left = deadline - time.perf_counter()
                    if left <= 0:
                        break
                    try:
                        await asyncio.wait_for(self._wake.wait(), timeout=left)
                    except TimeoutError:
                        break
                    self._wake.clear()
                batch = self._take(first)
                await self._execute(batch)

    def _rows_like(self, first: _Item) -> int:
        sig = first.signature
        return sum(i.rows for i in self._pending if i.signature == sig)

    def _take(self, first: _Item) -> list[_Item]:
        sig, rows = first.signature, 0
        batch: list[_Item] = []
        keep: list[_Item] = []
        for item in self._pending:
            if item.signature == sig and (not batch or rows + item.rows <= self.max_batch):
                batch.append(item)
                rows += item.rows
            else:
                keep.append(item)
        self._pending = keep
        self.queued_rows -= rows
        return batch

    async def _execute(self, batch: list[_Item]) -> None:
        now = time.perf_counter()
        names = list(batch[0].feeds)
        feeds = {n: np.concatenate([i.feeds[n] for i in batch]) for n in names}
        rows = sum(i.rows for i in batch)
        if self._observe:
            self._observe(rows, max(now - i.enqueued for i in batch))
        self.calls += 1
        loop = asyncio.get_running_loop()
        self._running += 1
        try:
            if self.inline:
                out = self.run(feeds)
            else:
                out = await loop.run_in_executor(self._executor, self.run, feeds)
        except Exception as exc:  # every caller of the batch gets the error
            for item in batch:
                if not item.future.done():
                    item.future.set_exception(exc)
            return
        finally:
            self._running -= 1
            took = time.perf_counter() - now
            self.call_s = took if self.call_s is None else 0.8 * self.call_s + 0.2 * took
        start = 0
        for item in batch:
            end = start + item.rows
            if not item.future.done():
                item.future.set_result({k: v[start:end] for k, v in out.items()})
            start = end
