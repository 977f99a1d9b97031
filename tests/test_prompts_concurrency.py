"""Many callers at once on one prompt name: no duplicate versions, never two
active ones, and a loser of a race fails cleanly (never INTERNAL/UNKNOWN)."""

import threading
from concurrent.futures import ThreadPoolExecutor

import grpc

from promptgauge.client import PromptGaugeClient, PromptGaugeError

THREADS = 16
# Statuses a racing call may cleanly end with besides OK.
CLEAN_FAILURES = {grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED}


def run_together(server, api_key, work) -> list:
    """Call work(client, i) from THREADS threads released at once, each on its
    own channel; returns each call's result or PromptGaugeError."""
    barrier = threading.Barrier(THREADS)

    def one(i):
        with PromptGaugeClient(server.target, api_key, timeout=30) as pg:
            barrier.wait(timeout=30)
            try:
                return work(pg, i)
            except PromptGaugeError as error:
                return error

    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(one, range(THREADS)))


def split(results):
    ok = [r for r in results if not isinstance(r, PromptGaugeError)]
    errors = [r for r in results if isinstance(r, PromptGaugeError)]
    unclean = [e for e in errors if e.code not in CLEAN_FAILURES]
    assert not unclean, unclean
    return ok, errors


def test_concurrent_auto_versions_of_a_new_name_are_distinct_with_one_active(server, api_key, client):
    results = run_together(
        server, api_key, lambda pg, i: pg.create_prompt_version("racy", f"text {i}")
    )
    ok, _ = split(results)
    assert ok, "no create succeeded"
    assert sorted(v.version for v in ok) == list(range(1, len(ok) + 1))
    stored = list(client.iter_prompt_versions("racy"))
    assert [v.version for v in stored] == list(range(len(ok), 0, -1))
    assert sum(v.is_active for v in stored) == 1
    # Each stored version holds the text of the call that was told it made it.
    assert {v.version: v.template_text for v in stored} == {v.version: v.template_text for v in ok}


def test_concurrent_auto_versions_of_an_existing_name_are_distinct(server, api_key, client):
    client.create_prompt_version("racy", "first")
    results = run_together(
        server, api_key, lambda pg, i: pg.create_prompt_version("racy", f"text {i}", activate=i % 2 == 0)
    )
    ok, _ = split(results)
    stored = list(client.iter_prompt_versions("racy"))
    assert [v.version for v in stored] == list(range(len(ok) + 1, 0, -1))
    assert sum(v.is_active for v in stored) == 1


def test_concurrent_creates_of_one_explicit_version_let_exactly_one_win(server, api_key, client):
    results = run_together(
        server, api_key, lambda pg, i: pg.create_prompt_version("racy", f"text {i}", version=3)
    )
    ok, errors = split(results)
    assert len(ok) == 1
    assert [e.code for e in errors] == [grpc.StatusCode.ALREADY_EXISTS] * (THREADS - 1)
    stored = list(client.iter_prompt_versions("racy"))
    assert [(v.version, v.template_text, v.is_active) for v in stored] == [(3, ok[0].template_text, True)]


def test_concurrent_activations_leave_exactly_one_active(server, api_key, client):
    for i in range(4):
        client.create_prompt_version("racy", f"v{i + 1}")
    results = run_together(
        server, api_key, lambda pg, i: pg.activate_prompt_version("racy", i % 4 + 1)
    )
    ok, _ = split(results)
    assert ok
    stored = list(client.iter_prompt_versions("racy"))
    active = [v.version for v in stored if v.is_active]
    assert len(active) == 1
    assert client.get_prompt_version("racy").version == active[0]
    assert [v.version for v in stored] == [4, 3, 2, 1]


def test_concurrent_creates_and_activations_never_give_two_active(server, api_key, client):
    client.create_prompt_version("racy", "v1")

    def work(pg, i):
        if i % 2:
            return pg.activate_prompt_version("racy", 1)
        return pg.create_prompt_version("racy", f"text {i}")

    ok, _ = split(run_together(server, api_key, work))
    stored = list(client.iter_prompt_versions("racy"))
    assert sum(v.is_active for v in stored) == 1
    versions = [v.version for v in stored]
    assert versions == sorted(set(versions), reverse=True)
