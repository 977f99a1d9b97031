"""The Python client's PromptCache (issue 14): reads from memory that follow
every change, the promotion race, stale while unreachable, reconnect and
resume, version texts fetched once."""

import threading
import time

import grpc
import pytest
from conftest import create_account, serve_process

from promptgauge.client import PromptGaugeClient, PromptGaugeError

# The feed delay a read may lag an acknowledged promotion by, at most, in the
# race test: generous against the measured p99 (docs/performance.md) so that
# a busy CI machine does not fail it, and far below a TTL cache's minutes.
FEED_DELAY_BOUND = 1.0
PROMOTIONS = 20
READS = 1000


def test_cache_serves_get_render_resolve_and_follows_changes(client):
    client.create_prompt_version("support", "one {q}")
    client.create_prompt_version("support", "two {q}", activate=False)
    with client.prompt_cache(names=["support"]) as cache:
        assert not cache.stale
        assert cache.get("support").version == 1
        assert cache.render("support", {"q": "x"}) == "one x"
        assert cache.get("support", label="latest").version == 2
        client.activate_prompt_version("support", 2)
        assert cache.wait_for(lambda c: c.get("support").version == 2, 10)
        assert cache.get("support").is_active and not cache.get("support", 1).is_active
        client.set_prompt_label("support", "stable", 1)
        assert cache.wait_for(lambda c: "stable" in c.get("support", 1).labels, 10)
        assert cache.render("support", {"q": "y"}, label="stable") == "one y"
        client.set_traffic_split("support", {1: 1, 2: 1})
        assert cache.wait_for(lambda c: c.sequence >= max(e.sequence for e in client.iter_prompt_history(
            "support")), 10)
        # The split resolves locally exactly as on the server.
        for n in range(30):
            subject = f"user-{n}"
            local = cache.resolve("support", subject=subject, variables={"q": "z"})
            remote = client.resolve_prompt("support", subject=subject, variables={"q": "z"})
            assert (local.prompt_version.version, local.rendered_text) == (
                remote.prompt_version.version, remote.rendered_text)
        with pytest.raises(PromptGaugeError) as missing:
            cache.render("support", {})
        assert missing.value.code == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(PromptGaugeError) as unknown:
            cache.get("other")
        assert unknown.value.code == grpc.StatusCode.NOT_FOUND


def test_version_texts_are_fetched_once(client, monkeypatch):
    client.create_prompt_version("once", "text {q}")
    fetched = []
    real = client.get_prompt_version
    monkeypatch.setattr(client, "get_prompt_version", lambda *a, **k: fetched.append(a) or real(*a, **k))
    with client.prompt_cache() as cache:
        for _ in range(50):
            cache.render("once", {"q": "a"})
            cache.resolve("once", subject="s")
    assert fetched == [("once", 1)]


def test_promotion_race_never_reads_older_than_an_acknowledged_promotion(client):
    client.create_prompt_version("race", "v1")
    for n in range(2, PROMOTIONS + 2):
        client.create_prompt_version("race", f"v{n}", activate=False)
    acked: list[tuple[float, int]] = []  # (when ActivatePromptVersion returned, version)
    reads: list[tuple[float, int]] = []  # (when the read began, version read)
    with client.prompt_cache(names=["race"]) as cache:
        for n in range(2, PROMOTIONS + 2):  # every text fetched once, before the race
            cache.get("race", n)
        done = threading.Event()

        def promote():
            for n in range(2, PROMOTIONS + 2):
                client.activate_prompt_version("race", n)
                acked.append((time.monotonic(), n))
            done.set()

        promoter = threading.Thread(target=promote)
        promoter.start()
        while not done.is_set() or len(reads) < READS:
            began = time.monotonic()
            reads.append((began, cache.get("race").version))
            if len(reads) % (READS // PROMOTIONS) == 0:
                done.wait(0.005)  # spread the reads over the promotions
        promoter.join()
        assert cache.wait_for(lambda c: c.get("race").version == PROMOTIONS + 1, 10)
    versions = [v for _, v in reads]
    assert versions == sorted(versions), "a read went back to an older version"
    for began, version in reads:
        due = [n for t, n in acked if t <= began - FEED_DELAY_BOUND]
        assert version >= max(due, default=1)
    assert len(reads) >= READS and len(set(versions)) > 1


def test_cache_is_stale_while_the_server_is_down_and_resumes_after(tmp_path):
    url = f"sqlite:///{tmp_path / 'cache.db'}"
    key = create_account(url)
    with serve_process(url) as (_, target):
        with PromptGaugeClient(target, key) as pg:
            pg.create_prompt_version("kept", "one")
            pg.create_prompt_version("kept", "two", activate=False)
    port = int(target.rsplit(":", 1)[1])  # the server comes back where it was
    with PromptGaugeClient(target, key) as pg:
        with serve_process(url, port=port):
            cache = pg.prompt_cache(names=["kept"], backoff_seconds=(0.05, 0.1, 0.2))
        try:
            assert cache.wait_for(lambda c: c.stale, 30)
            assert cache.get("kept").version == 1  # the last known state, from memory
            seen = cache.sequence
            with serve_process(url, port=port):
                # A change the cache may hear of only after it reconnects: it resumes past it.
                pg.activate_prompt_version("kept", 2)
                assert cache.wait_for(lambda c: not c.stale and c.get("kept").version == 2, 30)
                assert cache.sequence > seen
        finally:
            cache.close()


def test_a_cache_with_a_revoked_or_bad_key_stops_with_the_reason(server):
    with PromptGaugeClient(server.target, "pgk_unknown") as stranger:
        with pytest.raises(PromptGaugeError) as err:
            stranger.prompt_cache()
    assert err.value.code == grpc.StatusCode.UNAUTHENTICATED
