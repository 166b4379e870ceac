"""Micro-batching for the HTTP service: the texts of concurrent requests go through the model in
one forward pass, and each request gets back exactly its own texts' predictions, in order.

Requests are queued on the event loop (`submit`); one asyncio task (`run`) takes them off the
queue in arrival order and hands each batch to one worker thread, which runs the model (so the
event loop keeps reading and answering requests while a pass runs, and only one pass runs at a
time). A batch holds whole requests, never part of one: requests are added while the batch's
texts stay within `max_texts` (a single request with more texts than that is a batch of its
own). Requests that queued while a pass ran form the next batch at once. Beyond those, the
batcher waits, at most `wait_s`, for the requests the service has admitted and is still reading
(counted by `arriving`), and for as many requests as the last pass served: concurrent clients
send their next requests right after their answers, so a pass of 8 requests is followed by one
that waits for 8, while a lone client's request (the last pass served one) never waits. It stops
waiting as soon as the batch is full. `max_texts=1` turns batching off: one request per pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class ShuttingDown(Exception):
    """The batcher stopped before it answered this request."""


@dataclass
class _Item:
    texts: Sequence[str]
    future: asyncio.Future


class MicroBatcher(Generic[T]):
    """Gathers the texts of concurrent `submit` calls into batches for `predict` (one call per
    batch, in a worker thread) and gives each caller its own slice of the results."""

    def __init__(
        self,
        predict: Callable[[list[str]], list[T]],
        max_texts: int,
        wait_s: float,
        on_batch: Callable[[int, int, float], Any] | None = None,
    ):
        if max_texts < 1 or wait_s < 0:
            raise ValueError("max_texts must be >= 1 and wait_s >= 0")
        self.predict = predict
        self.max_texts = max_texts
        self.wait_s = wait_s
        self.on_batch = on_batch  # (requests, texts, seconds) of each pass, e.g. for metrics
        self.arriving = 0  # requests admitted and still being read: they may join a batch soon
        self._queue: deque[_Item] = deque()
        self._queued_texts = 0
        self._last_requests = 0  # requests in the last pass
        self._gathering: list[_Item] = []  # the next pass's requests, while it waits for more
        self._gathering_texts = 0
        self._event: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None

    # -- the event loop's side ---------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def queued_requests(self) -> int:
        """Requests waiting for a forward pass (queued, or in the batch being gathered)."""
        return len(self._queue) + len(self._gathering)

    @property
    def queued_texts(self) -> int:
        return self._queued_texts + self._gathering_texts

    def start(self) -> None:
        """Start the batching task on the running event loop (and the worker thread)."""
        self._event = asyncio.Event()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="agnews-forward")
        self._task = asyncio.get_running_loop().create_task(self._run(), name="agnews-batcher")

    async def call(self, fn: Callable[[], Any]) -> Any:
        """Run `fn` on the worker thread (between batches): e.g. a warm-up pass."""
        assert self._executor is not None, "start() first"
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def stop(self) -> None:
        """Stop taking batches; requests still queued fail with ShuttingDown."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        while self._queue:
            item = self._queue.popleft()
            if not item.future.done():
                item.future.set_exception(ShuttingDown("the service is shutting down"))
        self._queued_texts = 0
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)

    def wake(self) -> None:
        """Tell the batcher that something it may be waiting for changed (`arriving` fell)."""
        if self._event is not None:
            self._event.set()

    def submit(self, texts: Sequence[str]) -> asyncio.Future:
        """Queue `texts`; the future resolves to their results, in order. Cancelling it (say,
        on a time limit) drops the request from the queue if its pass has not begun."""
        if not self.running:
            raise ShuttingDown("the batcher is not running")
        future = asyncio.get_running_loop().create_future()
        self._queue.append(_Item(texts, future))
        self._queued_texts += len(texts)
        self.wake()
        return future

    # -- the batching task -------------------------------------------------------------------

    def _take(self, batch: list[_Item], count: int) -> int:
        """Move queued requests into `batch` while they fit; the new count of texts."""
        while self._queue:
            item = self._queue[0]
            if item.future.done():  # cancelled while queued (time limit): drop it
                self._queue.popleft()
                self._queued_texts -= len(item.texts)
                continue
            if batch and count + len(item.texts) > self.max_texts:
                break
            self._queue.popleft()
            self._queued_texts -= len(item.texts)
            batch.append(item)
            count += len(item.texts)
        return count

    async def _run(self) -> None:
        assert self._event is not None
        loop = asyncio.get_running_loop()
        while True:
            batch = self._gathering = []
            count = self._gathering_texts = self._take(batch, 0)
            if not batch:
                self._event.clear()
                await self._event.wait()
                continue
            deadline = loop.time() + self.wait_s
            # wait for requests being read, and for as many requests as the last pass served
            # (concurrent clients send their next ones after their answers)
            while (
                count < self.max_texts
                and (self.arriving > 0 or len(batch) < self._last_requests)
                and not self._queue
            ):
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                self._event.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(remaining):
                        await self._event.wait()
                count = self._gathering_texts = self._take(batch, count)
            if count < self.max_texts:
                count = self._take(batch, count)
            self._gathering, self._gathering_texts = [], 0
            live = [item for item in batch if not item.future.done()]
            self._last_requests = len(live)
            if not live:
                continue
            texts = [text for item in live for text in item.texts]
            start = time.perf_counter()
            try:
                results = await loop.run_in_executor(self._executor, self.predict, texts)
            except Exception as exc:  # the model failed: every request of the pass is told
                for item in live:
                    if not item.future.done():
                        item.future.set_exception(exc)
                continue
            if self.on_batch is not None:
                self.on_batch(len(live), len(texts), time.perf_counter() - start)
            offset = 0
            for item in live:
                n = len(item.texts)
                if not item.future.done():
                    item.future.set_result(results[offset : offset + n])
                offset += n
