"""The change feed: one listener per process that hears of every committed
change, from any replica, and hands it to the watch streams on the event loop.

- PostgreSQL: LISTEN on one dedicated connection, read on the event loop
  (loop.add_reader: no thread). A change's NOTIFY is sent in its transaction,
  so it arrives only once the change is committed; its payload is the account
  id, and the feed reads that account's events after the last one it handed
  out, from the table (Store.append_event keeps an account's sequences in
  commit order), so nothing is missed or reordered however notifications
  are coalesced.
- SQLite: a change made by this process wakes the feed at once (the
  registry's on_change); a change made by another process on the same file
  (the CLI) is found by polling the events table every `poll_seconds`.

A watcher holds an asyncio queue, never a thread or a database connection:
the feed reads an account's new events once, on a worker, for all its
watchers. Key revocations ride the same feed: they clear the key cache.
"""

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from playhouse.db_url import parse

from .backends.postgres import KEYS_CHANGED, feed_channel
from .models import ApiKey, PromptEvent
from .registry import EventView, PromptRegistry, PromptStateView
from .workers import Workers

log = logging.getLogger("promptgauge.feed")

CLOSED = object()  # what a watcher's queue receives when the server stops
# Events read per fetch; a watcher resuming further back than this gets
# fresh states instead of the events it missed.
MAX_EVENTS = 1000
_RECONNECT_SECONDS = (0.1, 0.5, 1.0, 2.0, 5.0)


@dataclass(eq=False)  # each watcher is its own: hashed by identity
class Watcher:
    """One watch stream's end of the feed."""

    account_id: int
    names: frozenset[str]  # empty: every prompt of the account
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)

    def wants(self, name: str) -> bool:
        return not self.names or name in self.names


@dataclass(frozen=True)
class Changes:
    """Events of an account in sequence order, and the states of the prompts
    they changed, read after them."""

    events: list[EventView]
    states: list[PromptStateView]


def read_changes(registry: PromptRegistry, account_id: int, after: int, limit: int = MAX_EVENTS) -> Changes:
    """On a worker: an account's events after `after`, with the current
    states of the prompts they touched."""
    events = registry.events_after(account_id, after, limit)
    names = sorted({e.name for e in events})
    states = registry.states(account_id, names)[0] if names else []
    # Read after the events, the states are at least as new as the last of
    # them: what a client resuming from that sequence must have.
    return Changes(events, [replace(s, sequence=events[-1].sequence) for s in states])


class ChangeFeed:
    """The process's listener and its watchers. Runs on the server's loop;
    `changed` and `keys_changed` may be called from any thread."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        workers: Workers,
        registry: PromptRegistry,
        database_url: str,
        poll_seconds: float = 0.5,
        on_keys_changed: Callable[[], None] = lambda: None,
    ):
        self.loop = loop
        self.workers = workers
        self.registry = registry
        self.url = database_url
        self.postgres = not database_url.startswith("sqlite")
        self.poll_seconds = poll_seconds
        self.on_keys_changed = on_keys_changed
        self.watchers: dict[int, set[Watcher]] = {}
        self.last: dict[int, int] = {}  # per watched account, the last sequence handed out
        self._fetching: dict[int, asyncio.Task] = {}
        self._again: set[int] = set()
        self._task: asyncio.Task | None = None
        self._conn = None
        self.closed = False

    # -- life ------------------------------------------------------------------

    async def start(self) -> None:
        self._task = asyncio.ensure_future(self._listen() if self.postgres else self._poll())

    async def close(self) -> None:
        """End every watch stream (they answer UNAVAILABLE) and stop listening."""
        self.closed = True
        if self._task is not None:
            self._task.cancel()
        self._drop_connection()
        for watchers in self.watchers.values():
            for watcher in watchers:
                watcher.queue.put_nowait(CLOSED)

    # -- watchers ---------------------------------------------------------------

    def subscribe(self, account_id: int, names: Sequence[str]) -> Watcher:
        watcher = Watcher(account_id, frozenset(names))
        if self.closed:
            watcher.queue.put_nowait(CLOSED)
        self.watchers.setdefault(account_id, set()).add(watcher)
        return watcher

    def caught_up(self, watcher: Watcher, sequence: int) -> None:
        """A new watcher has read everything up to `sequence`: the feed hands
        it what follows (and reads at once, in case a change was heard
        before the account had a watcher)."""
        if watcher.account_id not in self.last:
            self.last[watcher.account_id] = sequence
        self._wake(watcher.account_id)

    def unsubscribe(self, watcher: Watcher) -> None:
        watchers = self.watchers.get(watcher.account_id)
        if watchers is None:
            return
        watchers.discard(watcher)
        if not watchers:
            del self.watchers[watcher.account_id]
            self.last.pop(watcher.account_id, None)

    # -- hearing of changes -------------------------------------------------------

    def changed(self, account_id: int) -> None:
        """A change of this process committed (any thread)."""
        if not self.closed:
            self.loop.call_soon_threadsafe(self._wake, account_id)

    def _wake(self, account_id: int) -> None:
        if account_id not in self.watchers or account_id not in self.last:
            return
        if account_id in self._fetching:
            self._again.add(account_id)  # read once more when this read ends
            return
        self._fetching[account_id] = asyncio.ensure_future(self._fetch(account_id))

    async def _fetch(self, account_id: int) -> None:
        try:
            while True:
                self._again.discard(account_id)
                after = self.last.get(account_id)
                if after is None:
                    return
                try:
                    changes = await self.workers.run(read_changes, self.registry, account_id, after)
                except Exception as error:  # noqa: BLE001 - read again in a second
                    log.warning("change feed: cannot read account %s's events: %s", account_id, error)
                    self.loop.call_later(1.0, self._wake, account_id)
                    return
                if changes.events and account_id in self.last:
                    self.last[account_id] = changes.events[-1].sequence
                    for watcher in list(self.watchers.get(account_id, ())):
                        watcher.queue.put_nowait(changes)
                if len(changes.events) < MAX_EVENTS and account_id not in self._again:
                    return
        finally:
            del self._fetching[account_id]

    # -- PostgreSQL: LISTEN ------------------------------------------------------

    def _connect(self):
        import psycopg2
        import psycopg2.extensions

        conn = psycopg2.connect(**parse(self.url))
        conn.set_isolation_level(psycopg2.extensions.ISOLATION_LEVEL_AUTOCOMMIT)
        with conn.cursor() as cursor:
            cursor.execute("SELECT current_schema()")
            channel = feed_channel(cursor.fetchone()[0])
            cursor.execute(f'LISTEN "{channel}"')
        return conn

    async def _listen(self) -> None:
        attempt = 0
        while not self.closed:
            try:
                conn = await self.loop.run_in_executor(None, self._connect)
            except Exception as error:  # noqa: BLE001 - retried with backoff
                delay = _RECONNECT_SECONDS[min(attempt, len(_RECONNECT_SECONDS) - 1)]
                log.warning("change feed: cannot listen (%s); again in %g s", error, delay)
                attempt += 1
                await asyncio.sleep(delay)
                continue
            if self.closed:
                conn.close()
                return
            attempt = 0
            self._conn = conn
            lost = self.loop.create_future()
            self.loop.add_reader(conn.fileno(), self._notified, conn, lost)
            # What happened while not listening: every watched account reads
            # again, and cached keys may have been revoked.
            self.on_keys_changed()
            for account_id in list(self.watchers):
                self._wake(account_id)
            await lost
            self._drop_connection()

    def _notified(self, conn, lost: asyncio.Future) -> None:
        try:
            conn.poll()
        except Exception as error:  # noqa: BLE001 - the connection is gone: listen again
            log.warning("change feed: lost the listening connection: %s", error)
            if not lost.done():
                lost.set_result(None)
            return
        accounts = set()
        while conn.notifies:
            payload = conn.notifies.pop().payload
            if payload == KEYS_CHANGED:
                self.on_keys_changed()
            elif payload.isdigit():
                accounts.add(int(payload))
        for account_id in accounts:
            self._wake(account_id)

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                self.loop.remove_reader(conn.fileno())
            except (ValueError, OSError):
                pass
            conn.close()

    # -- SQLite: polling -----------------------------------------------------------

    async def _poll(self) -> None:
        seen = None
        while not self.closed:
            try:
                now = await self.workers.run(_poll_marks)
            except Exception as error:  # noqa: BLE001 - the database may come back
                log.debug("change feed: poll failed: %s", error)
                now = None
            if now is not None:
                if seen is not None and now[1] != seen[1]:
                    self.on_keys_changed()
                if seen is None or now[0] != seen[0]:
                    for account_id in list(self.watchers):
                        self._wake(account_id)
                seen = now
            await asyncio.sleep(self.poll_seconds)


def _poll_marks() -> tuple[int, int]:
    """The newest event's sequence and the number of revoked keys: when
    either moves, another process changed something."""
    newest = PromptEvent.select(PromptEvent.id).order_by(PromptEvent.id.desc()).scalar() or 0
    revoked = ApiKey.select().where(ApiKey.revoke_time.is_null(False)).count()
    return newest, revoked
