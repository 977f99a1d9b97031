"""The storage invariants of DESIGN.md hold for agent versions as for prompt
versions: runs linked by ResolveAgent count exactly once per agent version
across a restart, on two servers sharing one PostgreSQL, and whichever of a
run's link and its outcome arrives first."""

import threading

import pytest
from conftest import create_account, database_url, new_trace, read_sql, serve_process, skip_without_postgres

from promptgauge.client import PromptGaugeClient
from promptgauge.server import accounts, storage
from promptgauge.server.analytics import FOLD_AT, Analytics
from promptgauge.server.models import VersionCheckpoint
from promptgauge.server.tally import TALLY_FIELDS
from promptgauge.v1 import agents_pb2

# Past one fold of the checkpoint, so that a comparison reads a checkpoint
# and a tail, not a tail alone.
RUNS = FOLD_AT + 60


def _config(*prompts: str) -> agents_pb2.AgentConfig:
    return agents_pb2.AgentConfig(
        kind=agents_pb2.AGENT_KIND_CHAIN,
        prompts=[agents_pb2.PromptLink(prompt_name=p, role=p, sort_order=i) for i, p in enumerate(prompts)],
    )


def _setup(client: PromptGaugeClient) -> None:
    client.create_prompt_version("plan", "Plan: {goal}")
    client.create_prompt_version("act", "Act on {goal}")
    client.create_agent_version("runner", _config("plan", "act"), version="1.0.0")
    client.create_agent_version("runner", _config("act"), version="2.0.0", promote=False)


def _outcome(i: int) -> dict:
    # Exactly representable costs and durations: sums are exact in any order.
    return {"success": i % 3 != 0, "total_cost_usd": (i % 8) / 8, "duration_ms": float(1 + (i * 37) % 500)}


def _expected(indexes: list[int]) -> tuple:
    return (
        len(indexes),
        sum(i % 3 != 0 for i in indexes) / len(indexes),
        sum((i % 8) / 8 for i in indexes) / len(indexes),
        sum(float(1 + (i * 37) % 500) for i in indexes) / len(indexes),
    )


def _run(clients: list[PromptGaugeClient], traces: list[str]) -> None:
    """Each run resolved (on every client, so links repeat) and its outcome
    recorded: the outcome first for every third run, after for the rest."""
    errors: list = []

    def work(client: PromptGaugeClient, offset: int) -> None:
        try:
            for i, trace in enumerate(traces):
                version = "1.0.0" if i % 2 == 0 else "2.0.0"
                client.resolve_agent("runner", version=version, trace_id=trace)
                if i % 3 != 0 and (i + offset) % len(clients) == 0:
                    client.record_trace_outcome(trace, **_outcome(i))
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    # Every third run's outcome must exist before any of its links, so those
    # go first, on their own.
    for i, trace in enumerate(traces):
        if i % 3 == 0:
            clients[0].record_trace_outcome(trace, **_outcome(i))
    threads = [threading.Thread(target=work, args=(c, n)) for n, c in enumerate(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors


def _snapshot(client: PromptGaugeClient) -> list[tuple]:
    return [
        (m.version, m.total_traces, m.success_rate, m.avg_cost_usd, m.avg_latency_ms, m.p95_latency_ms)
        for m in client.compare_agent_versions("runner").versions
    ]


def _check(rows: list[tuple]) -> None:
    evens = [i for i in range(RUNS) if i % 2 == 0]
    odds = [i for i in range(RUNS) if i % 2 == 1]
    assert [row[0] for row in rows] == ["1.0.0", "2.0.0"]
    assert [tuple(row[1:5]) for row in rows] == [_expected(evens), _expected(odds)]


def _no_duplicates(url: str) -> None:
    (dupes,) = read_sql(
        url, "SELECT COUNT(*) FROM (SELECT version_id, trace_id, kind FROM observation "
        "GROUP BY version_id, trace_id, kind HAVING COUNT(*) > 1) d"
    )[0]
    assert dupes == 0


def test_agent_comparison_survives_a_restart_and_repeated_links_change_nothing(backend, tmp_path):
    with database_url(backend, tmp_path) as url:
        key = create_account(url)
        traces = [new_trace() for _ in range(RUNS)]
        with serve_process(url) as (_, target), PromptGaugeClient(target, key) as client:
            _setup(client)
            _run([client], traces)
            before = _snapshot(client)
            prompt_totals = [m.total_traces for m in client.compare_prompt_versions("act").versions]
        _check(before)
        assert prompt_totals == [RUNS]  # every run used "act", through either agent version
        with serve_process(url) as (_, target), PromptGaugeClient(target, key) as client:
            assert _snapshot(client) == before
            for trace in traces[:50]:  # the same runs linked again, after the restart
                client.resolve_agent("runner", version="1.0.0", trace_id=trace)
            # Runs 1, 3, 5 ... were version 2.0.0's; linking them to 1.0.0 now
            # counts them there too (a run may use two versions), once.
            after = _snapshot(client)
        assert after[1] == before[1]
        assert after[0][1] == before[0][1] + 25
        _no_duplicates(url)


@pytest.mark.postgres
def test_two_servers_on_one_postgres_count_each_agent_run_once(tmp_path):
    skip_without_postgres()
    with (
        database_url("postgres", tmp_path) as url,
        serve_process(url) as (_, a),
        serve_process(url) as (_, b),
    ):
        key = create_account(url)
        with PromptGaugeClient(a, key) as pa, PromptGaugeClient(b, key) as pb:
            _setup(pa)
            _run([pa, pb], [new_trace() for _ in range(RUNS)])
            from_a, from_b = _snapshot(pa), _snapshot(pb)
        assert from_a == from_b
        _check(from_a)
        _no_duplicates(url)
        (links,) = read_sql(url, "SELECT COUNT(*) FROM usage_link")[0]
        # Each run: its agent version, and "plan" and "act" (1.0.0) or "act" (2.0.0).
        assert links == sum(3 if i % 2 == 0 else 2 for i in range(RUNS))


def _checkpoint_state(version_id) -> tuple:
    cp = VersionCheckpoint.get_by_id(version_id)
    return (cp.last_observation_id, *(getattr(cp, name) for name in TALLY_FIELDS), bytes(cp.sketch or b""))


def test_an_agent_versions_checkpoint_rebuilt_from_rows_equals_the_incremental_one(server, client, api_key):
    # 1,500 durations: the sketch compresses its exact values, as in production.
    runs = 1500
    _setup(client)
    agent_version = client.get_agent_version("runner", "1.0.0")
    with storage.db.connection_context():
        caller = accounts.authenticate(storage.store(), f"Bearer {api_key}")
        analytics = Analytics(storage.store())
        traces = [new_trace() for _ in range(runs)]
        # Links through the code ResolveAgent uses, outcomes in batches, mixed orders.
        outcomes = [(t, *_outcome(i).values()) for i, t in enumerate(traces)]
        assert set(analytics.record_outcomes(caller, outcomes[: runs // 3])) == {"recorded"}
        for trace in traces:
            analytics.link_trace(caller, trace, [agent_version.id])
        assert set(analytics.record_outcomes(caller, outcomes[runs // 3 :])) == {"recorded"}
    before = _snapshot(client)
    with storage.db.connection_context():
        while analytics.fold(agent_version.id, limit=137):
            pass
        incremental = _checkpoint_state(agent_version.id)
        analytics.rebuild(agent_version.id)
        rebuilt = _checkpoint_state(agent_version.id)
    assert rebuilt == incremental and len(rebuilt[-1]) > 0
    assert _snapshot(client) == before
    assert before[0][1:5] == _expected(list(range(runs)))
