"""Live comparisons: many streams, one computation per question per second.

Streams that ask the same thing (the same account and request bytes) share
one `_Shared`: a task that computes the answer on a worker thread at most
once per INTERVAL and wakes its watchers only when the answer changed. A
watcher is a coroutine waiting on a condition: an idle one holds neither a
thread nor a database connection, so hundreds of them cost hundreds of
waiting coroutines and one computation a second per distinct request.
"""

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Hashable

from .workers import Workers

log = logging.getLogger("promptgauge.watch")

INTERVAL = 1.0  # seconds between two computations of one shared answer, at least


class _Shared:
    def __init__(self):
        self.changed = asyncio.Condition()
        self.answer = None
        self.generation = 0  # how many distinct answers so far
        self.error: BaseException | None = None
        self.watchers = 0
        self.task: asyncio.Task | None = None


class ComparisonHub:
    """Shares each watched computation between the streams that watch it."""

    def __init__(self, workers: Workers, interval: float = INTERVAL):
        self.workers = workers
        self.interval = interval
        self._shared: dict[Hashable, _Shared] = {}
        self.computations = 0  # for tests and the benchmark: work done, not watchers served

    async def watch(self, key: Hashable, compute: Callable[[], object]) -> AsyncIterator:
        """The answer of `compute()` now, then each time it changes. `compute`
        blocks (it reads the database): it runs on a worker thread."""
        shared = self._shared.get(key)
        if shared is None:
            shared = self._shared[key] = _Shared()
            shared.task = asyncio.create_task(self._run(key, shared, compute))
        shared.watchers += 1
        seen = 0

        def news() -> bool:
            return shared.generation > seen or shared.error is not None

        try:
            while True:
                async with shared.changed:
                    await shared.changed.wait_for(news)
                    if shared.error is not None:
                        raise shared.error
                    seen, answer = shared.generation, shared.answer
                yield answer
        finally:
            shared.watchers -= 1
            if shared.watchers == 0 and self._shared.get(key) is shared:
                del self._shared[key]
                shared.task.cancel()

    async def _run(self, key: Hashable, shared: _Shared, compute: Callable[[], object]) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                began = loop.time()
                answer = await self.workers.run(compute)
                self.computations += 1
                if shared.generation == 0 or answer != shared.answer:
                    async with shared.changed:
                        shared.answer = answer
                        shared.generation += 1
                        shared.changed.notify_all()
                # A rate limit, not a wait for state: the next look at the data
                # is due one interval after this one began.
                await asyncio.sleep(max(0.0, self.interval - (loop.time() - began)))
        except asyncio.CancelledError:
            raise
        except BaseException as error:  # noqa: BLE001 - handed to every watcher, which ends with it
            if self._shared.get(key) is shared:
                del self._shared[key]  # the next watcher starts afresh
            async with shared.changed:
                shared.error = error
                shared.changed.notify_all()
