"""Dynamic batching, gated by events (never by sleeps): who is batched with whom is decided."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from couturier.serving._batching import Batcher, OverloadedError


class Gated:
    """A model whose first call blocks until the test opens the gate; records batch sizes."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.sizes: list[int] = []
        self.fail = False

    def __call__(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.sizes.append(len(feeds["x"]))
        if len(self.sizes) == 1:
            self.entered.set()
            self.gate.wait(10)
        if self.fail:
            raise RuntimeError("model failed")
        return {"y": feeds["x"] * 2, "n": np.full(len(feeds["x"]), len(feeds["x"]))}


async def _until(event: threading.Event) -> None:
    await asyncio.get_running_loop().run_in_executor(None, event.wait, 10)


def test_concurrent_callers_share_a_call_and_get_their_own_rows_in_order() -> None:
    async def scenario() -> None:
        model = Gated()
        batcher = Batcher(model, max_batch=10, max_wait_ms=0)
        first = asyncio.ensure_future(batcher.submit({"x": np.array([[100.0]])}))
        await _until(model.entered)  # the first call is running and blocked
        batcher.max_wait_ms = 60_000  # from now on a batch leaves only when full
        calls = [
            asyncio.ensure_future(batcher.submit({"x": np.array([[i], [i + 0.5]])}))
            for i in range(5)
        ]
        await asyncio.sleep(0)  # every caller is queued (10 rows: a full batch)
        model.gate.set()
        results = await asyncio.gather(first, *calls)
        assert model.sizes == [1, 10]
        assert results[0]["y"].tolist() == [[200.0]]
        for i, out in enumerate(results[1:]):
            assert out["y"].tolist() == [[2 * i], [2 * i + 1.0]]
            assert out["n"].tolist() == [10, 10]

    asyncio.run(scenario())


def test_a_full_batch_bypasses_the_queue() -> None:
    async def scenario() -> None:
        model = Gated()
        batcher = Batcher(model, max_batch=4, executor=ThreadPoolExecutor(2))
        blocked = asyncio.ensure_future(batcher.submit({"x": np.ones((1, 1))}))
        await _until(model.entered)
        full = await batcher.submit({"x": np.ones((4, 1))})  # returns while the other waits
        assert full["y"].shape == (4, 1) and not blocked.done()
        model.gate.set()
        await blocked

    asyncio.run(scenario())


def test_a_full_queue_refuses_at_once() -> None:
    async def scenario() -> None:
        model = Gated()
        batcher = Batcher(model, max_batch=100, max_wait_ms=0, max_queue=3)
        running = asyncio.ensure_future(batcher.submit({"x": np.ones((1, 1))}))
        await _until(model.entered)
        batcher.max_wait_ms = 60_000
        queued = [asyncio.ensure_future(batcher.submit({"x": np.ones((1, 1))})) for _ in range(3)]
        await asyncio.sleep(0)
        with pytest.raises(OverloadedError) as err:
            await batcher.submit({"x": np.ones((1, 1))})
        assert err.value.http_status == 503 and err.value.retry_after > 0
        batcher.max_batch = 3  # limits change at run time: the three now fill a batch
        model.gate.set()
        await asyncio.gather(running, *queued)
        assert model.sizes == [1, 3]

    asyncio.run(scenario())


def test_a_request_that_would_wait_past_its_budget_is_refused_at_once() -> None:
    async def scenario() -> None:
        model = Gated()
        batcher = Batcher(model, max_batch=2, max_wait_ms=0, max_queue_ms=100, call_s=0.03)
        running = asyncio.ensure_future(batcher.submit({"x": np.ones((1, 1))}))
        await _until(model.entered)  # one call running: 30 ms ahead of anyone
        batcher.max_wait_ms = 60_000
        # 30 ms running + one call of 2 rows (30 ms) = 60 ms: admitted
        queued = [asyncio.ensure_future(batcher.submit({"x": np.ones((1, 1))})) for _ in range(2)]
        await asyncio.sleep(0)
        assert batcher.estimated_wait_s(1) == pytest.approx(0.09)  # a third call's worth
        batcher.call_s = 0.05  # slower calls: 3 x 50 = 150 ms > the 100 ms budget
        with pytest.raises(OverloadedError, match="would wait about 150 ms") as err:
            await batcher.submit({"x": np.ones((1, 1))})
        assert err.value.retry_after == pytest.approx(0.15)
        assert batcher.queued_rows == 2  # the refused request left nothing behind
        model.gate.set()
        await asyncio.gather(running, *queued)
        assert model.sizes == [1, 2]

    asyncio.run(scenario())


def test_requests_of_different_shapes_are_never_mixed() -> None:
    async def scenario() -> None:
        model = Gated()
        batcher = Batcher(model, max_batch=4, max_wait_ms=0)
        running = asyncio.ensure_future(batcher.submit({"x": np.ones((1, 2))}))
        await _until(model.entered)
        a = asyncio.ensure_future(batcher.submit({"x": np.ones((1, 2))}))
        b = asyncio.ensure_future(batcher.submit({"x": np.ones((1, 3))}))
        await asyncio.sleep(0)
        model.gate.set()
        out = await asyncio.gather(running, a, b)
        assert sorted(model.sizes) == [1, 1, 1]
        assert out[2]["y"].shape == (1, 3)

    asyncio.run(scenario())


def test_a_failed_call_fails_every_caller_in_it() -> None:
    async def scenario() -> None:
        model = Gated()
        model.fail = True
        batcher = Batcher(model, max_batch=8, max_wait_ms=0)
        running = asyncio.ensure_future(batcher.submit({"x": np.ones((1, 1))}))
        await _until(model.entered)
        batcher.max_wait_ms = 60_000
        waiting = [asyncio.ensure_future(batcher.submit({"x": np.ones((4, 1))})) for _ in range(2)]
        await asyncio.sleep(0)
        model.gate.set()
        results = await asyncio.gather(running, *waiting, return_exceptions=True)
        assert all(isinstance(r, RuntimeError) for r in results)
        assert model.sizes == [1, 8]

    asyncio.run(scenario())
