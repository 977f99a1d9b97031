"""The worker threads that run blocking work (the database) for RPCs.

The event loop serves every call; what blocks runs here, one unit of work at
a time (a unary call, or one batch of a stream), each inside one pooled
connection. So the number of threads and of connections bounds the work in
progress, not the number of calls open: an idle stream holds neither.
"""

import asyncio
import contextvars
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager

from . import storage


class Workers:
    """`scope` makes the context each unit of work runs in: a pooled
    connection (storage.connection), unless a test says otherwise."""

    def __init__(self, threads: int, scope: Callable[[], AbstractContextManager] = storage.connection):
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="rpc")
        self.scope = scope

    def _scoped(self, function: Callable, *args):
        with self.scope():
            return function(*args)

    async def run(self, function: Callable, *args):
        """`function(*args)` on a worker thread, in a pooled connection and in
        the caller's context (contextvars: the RPC's caller, its call record)."""
        context = contextvars.copy_context()
        return await asyncio.get_running_loop().run_in_executor(
            self.pool, context.run, self._scoped, function, *args
        )

    def shutdown(self) -> None:
        self.pool.shutdown(wait=True)
