"""API keys cached in each replica, so that an authenticated call costs no
database round trip.

Safe only because revocation is pushed: `revoke_key` notifies every replica
in its transaction (PostgreSQL NOTIFY; on SQLite the feed polls the count of
revoked keys), and the change feed clears this cache (feed.py). A lookup
that began before a clear never stores what it read after it (the
generation check), so a key revoked while its lookup was in flight is not
cached as valid. While the feed is not listening (the PostgreSQL listener
reconnecting) nothing tells the cache of a revocation; it is cleared when
the listener is back.
"""

import threading
import weakref
from collections import OrderedDict

from .backends.base import ApiKeyRow, Store

_caches: weakref.WeakSet = weakref.WeakSet()  # every cache of this process


def revoked_here() -> None:
    """A key was revoked by this process, and committed: its own caches
    forget at once, without waiting for the feed."""
    for cache in list(_caches):
        cache.clear()


class KeyCache:
    """Valid API keys by hash, the `size` most recently used (0: no cache)."""

    def __init__(self, size: int):
        self.size = size
        self._rows: OrderedDict[str, ApiKeyRow] = OrderedDict()
        self._lock = threading.Lock()
        self._generation = 0
        _caches.add(self)

    def lookup(self, store: Store, key_hash: str) -> ApiKeyRow | None:
        """The key with this hash, from the cache or the database."""
        if self.size == 0:
            return store.api_key(key_hash)
        with self._lock:
            row = self._rows.get(key_hash)
            if row is not None:
                self._rows.move_to_end(key_hash)
                return row
            generation = self._generation
        row = store.api_key(key_hash)
        if row is not None and row.revoke_time is None:
            with self._lock:
                if generation == self._generation:
                    self._rows[key_hash] = row
                    if len(self._rows) > self.size:
                        self._rows.popitem(last=False)
        return row

    def clear(self) -> None:
        """Forget every key (a key was revoked somewhere); any thread."""
        with self._lock:
            self._rows.clear()
            self._generation += 1

    def __len__(self) -> int:
        return len(self._rows)
