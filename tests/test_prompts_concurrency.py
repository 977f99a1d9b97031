"""Many callers at once on one prompt name: no duplicate versions, and a loser
of a race fails cleanly (never INTERNAL/UNKNOWN). Which version is active is
one column, so "never two active" holds by construction; what these check is
that writers of one prompt serialize: the active version is the one the last
committed writer chose, and every read agrees on it."""

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


def test_concurrent_auto_versions_of_a_new_name_are_distinct_and_the_last_is_active(server, api_key, client):
    results = run_together(
        server, api_key, lambda pg, i: pg.create_prompt_version("racy", f"text {i}")
    )
    ok, _ = split(results)
    assert ok, "no create succeeded"
    assert sorted(v.version for v in ok) == list(range(1, len(ok) + 1))
    stored = list(client.iter_prompt_versions("racy"))
    assert [v.version for v in stored] == list(range(len(ok), 0, -1))
    # Each create activated its own version, and they committed in version
    # order (each read the highest under the prompt's lock): the last wins.
    assert [v.version for v in stored if v.is_active] == [len(ok)]
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
    # The highest version created with activate=True (even i) is active;
    # staged ones (odd i) never are.
    activated = [v.version for v in ok if int(v.template_text.split()[1]) % 2 == 0]
    assert [v.version for v in stored if v.is_active] == [max(activated, default=1)]


def test_concurrent_creates_of_one_explicit_version_let_exactly_one_win(server, api_key, client):
    results = run_together(
        server, api_key, lambda pg, i: pg.create_prompt_version("racy", f"text {i}", version=3)
    )
    ok, errors = split(results)
    assert len(ok) == 1
    assert [e.code for e in errors] == [grpc.StatusCode.ALREADY_EXISTS] * (THREADS - 1)
    stored = list(client.iter_prompt_versions("racy"))
    assert [(v.version, v.template_text, v.is_active) for v in stored] == [(3, ok[0].template_text, True)]


def test_concurrent_activations_leave_one_that_every_read_agrees_on(server, api_key, client):
    for i in range(4):
        client.create_prompt_version("racy", f"v{i + 1}")
    results = run_together(
        server, api_key, lambda pg, i: pg.activate_prompt_version("racy", i % 4 + 1)
    )
    ok, _ = split(results)
    assert ok and all(v.is_active for v in ok)
    stored = list(client.iter_prompt_versions("racy"))
    assert [v.version for v in stored] == [4, 3, 2, 1]
    # Every read agrees on which one the last activation chose.
    (active,) = [v.version for v in stored if v.is_active]
    assert active in {v.version for v in ok}
    assert client.get_prompt_version("racy").version == active
    assert client.render_prompt("racy", {}).version == active
    assert [v.version for v in client.iter_prompts() if v.name == "racy" and v.is_active] == [active]


def test_concurrent_creates_and_activations_leave_the_last_writers_choice_active(server, api_key, client):
    client.create_prompt_version("racy", "v1")

    def work(pg, i):
        if i % 2:
            return pg.activate_prompt_version("racy", 1)
        return pg.create_prompt_version("racy", f"text {i}")

    ok, _ = split(run_together(server, api_key, work))
    stored = list(client.iter_prompt_versions("racy"))
    versions = [v.version for v in stored]
    assert versions == list(range(len(versions), 0, -1))
    # They serialize on the prompt: the last committed was an activation of
    # version 1, or a create, which made the highest version and activated it.
    (active,) = [v.version for v in stored if v.is_active]
    assert active in (1, versions[0])
    assert client.get_prompt_version("racy").version == active
