"""API keys cached in each replica, dropped when any key is revoked (issue
14): a key revoked by `promptgauge keys revoke` in another process fails on
every replica within a second, on PostgreSQL (NOTIFY) and on SQLite (the
feed's poll)."""

import subprocess
import sys
import threading
import time
from contextlib import ExitStack

import grpc
import pytest
from conftest import create_account, database_url, serve_process

from promptgauge.client import NO_RETRY, PromptGaugeClient, PromptGaugeError
from promptgauge.server.backends.base import ApiKeyRow
from promptgauge.server.keycache import KeyCache, revoked_here

REVOCATION_SECONDS = 1.0  # the bound: revoked on every replica within a second


class FakeStore:
    def __init__(self):
        self.lookups = 0
        self.revoked: set[str] = set()
        self.during_lookup = lambda: None

    def api_key(self, key_hash):
        self.lookups += 1
        self.during_lookup()
        return ApiKeyRow("key_" + key_hash, 1, key_hash, "then" if key_hash in self.revoked else None)


def test_cache_keeps_valid_keys_up_to_its_size_and_forgets_on_clear():
    store, cache = FakeStore(), KeyCache(2)
    for h in ("a", "b", "a", "c", "a"):
        assert cache.lookup(store, h).key_hash == h
    assert store.lookups == 3 and len(cache) == 2  # "b" was the least recently used
    cache.lookup(store, "b")
    assert store.lookups == 4
    revoked_here()  # every cache of the process
    assert len(cache) == 0
    store.revoked.add("a")
    assert cache.lookup(store, "a").revoke_time is not None
    cache.lookup(store, "a")
    assert store.lookups == 6  # a revoked key is never cached


def test_a_lookup_overtaken_by_a_revocation_caches_nothing():
    store, cache = FakeStore(), KeyCache(10)
    store.during_lookup = cache.clear  # the revocation lands while the row is being read
    cache.lookup(store, "a")
    assert len(cache) == 0


def test_size_zero_is_no_cache():
    store, cache = FakeStore(), KeyCache(0)
    cache.lookup(store, "a")
    cache.lookup(store, "a")
    assert (store.lookups, len(cache)) == (2, 0)


def _revoke(url: str, key_id: str) -> None:
    subprocess.run([sys.executable, "-m", "promptgauge.server.cli", "keys", "revoke", key_id,
                    "--database-url", url], check=True, capture_output=True, timeout=60)


@pytest.mark.parametrize("replicas", [2])
def test_key_revoked_by_another_process_fails_on_every_replica_within_a_second(backend, tmp_path, replicas):
    with database_url(backend, tmp_path) as url, ExitStack() as stack:
        key = create_account(url)
        targets = [stack.enter_context(serve_process(url))[1] for _ in range(replicas)]
        clients = [stack.enter_context(PromptGaugeClient(t, key, retry=NO_RETRY)) for t in targets]
        key_id = clients[0].create_prompt_version("guarded", "x").created_by
        for pg in clients:  # every replica has the key cached
            assert pg.get_prompt_version("guarded").version == 1
        _revoke(url, key_id)
        revoked_at = time.monotonic()
        for pg in clients:
            while True:
                try:
                    pg.get_prompt_version("guarded")
                except PromptGaugeError as error:
                    assert error.code == grpc.StatusCode.UNAUTHENTICATED
                    break
                assert time.monotonic() - revoked_at < REVOCATION_SECONDS, "still accepted after a second"
                threading.Event().wait(0.01)  # pace the probe, not a wait for the state
