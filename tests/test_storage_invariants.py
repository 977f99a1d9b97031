"""The five storage invariants of DESIGN.md ("Storage and sketches"), each
proven against a real database: separate server processes, restarts, a
rebuild from rows, counted statements, and two replicas on PostgreSQL."""

import datetime
import logging
import threading
import uuid

from conftest import (
    checkpoint_tails,
    comparison_snapshot,
    create_account,
    database_url,
    in_batches,
    new_trace,
    read_sql,
    serve_process,
    trace_outcome,
    usage_record,
)

from promptgauge.client import PromptGaugeClient
from promptgauge.server import accounts, storage
from promptgauge.server.analytics import FOLD_AT, Analytics
from promptgauge.server.models import Observation, Prompt, PromptVersion, VersionBucket, VersionCheckpoint
from promptgauge.server.tally import TALLY_FIELDS


def _workload(name: str, n: int, versions=(1, 2)):
    """n traces spread over the versions, each with an outcome whose cost and
    duration are exactly representable: sums are exact in any order, so
    averages can be compared with ==."""
    traces = [new_trace() for _ in range(n)]
    usage = [usage_record(name, versions[i % len(versions)], t, "root") for i, t in enumerate(traces)]
    outcomes = [
        trace_outcome(t, i % 3 != 0, (i % 8) / 8, float(1 + (i * 37) % 500)) for i, t in enumerate(traces)
    ]
    return traces, usage, outcomes


def _expected(name: str, n: int, versions=(1, 2)) -> list[tuple]:
    """total, success rate, avg cost and avg latency per version of _workload."""
    out = []
    for k, version in enumerate(versions):
        idx = [i for i in range(n) if i % len(versions) == k]
        out.append((
            version,
            len(idx),
            sum(i % 3 != 0 for i in idx) / len(idx),
            sum((i % 8) / 8 for i in idx) / len(idx),
            sum(float(1 + (i * 37) % 500) for i in idx) / len(idx),
        ))
    return out


# -- 1. OK means committed ----------------------------------------------------


def test_a_stream_that_returned_ok_is_visible_to_another_server_process(backend, tmp_path):
    with database_url(backend, tmp_path) as url, serve_process(url) as (_, a), serve_process(url) as (_, b):
        key = create_account(url)
        with PromptGaugeClient(a, key) as pa, PromptGaugeClient(b, key) as pb:
            pa.create_prompt_version("committed", "one")
            pa.create_prompt_version("committed", "two")
            _, usage, outcomes = _workload("committed", 400)
            for step in range(4):  # after each stream, at once, on the other process
                summary = pa.stream_usage(in_batches(usage[step * 100 : (step + 1) * 100], 30))
                assert summary.recorded == 100
                assert sum(m.total_traces for m in pb.compare_prompt_versions("committed").versions) == (
                    (step + 1) * 100
                )
            summary = pa.stream_trace_outcomes(in_batches(outcomes, 150))
            assert summary.recorded == 400
            got = [row[:5] for row in comparison_snapshot(pb, "committed")]
            assert got == _expected("committed", 400)
            unary = new_trace()
            assert pa.record_usage("committed", 2, unary) == "recorded"
            assert pb.compare_prompt_versions("committed").versions[1].total_traces == 201


# -- 2. idempotency through unique keys, across a restart ---------------------


def test_a_stream_sent_again_after_a_restart_is_all_duplicates(backend, tmp_path):
    with database_url(backend, tmp_path) as url:
        _, usage, outcomes = _workload("restarted", 900)
        with serve_process(url) as (proc, target):
            key = create_account(url)
            with PromptGaugeClient(target, key) as pg:
                pg.create_prompt_version("restarted", "one")
                pg.create_prompt_version("restarted", "two")
                first_u = pg.stream_usage(in_batches(usage, 250))
                first_o = pg.stream_trace_outcomes(in_batches(outcomes, 250))
                before = comparison_snapshot(pg, "restarted")
        assert proc.returncode is not None  # that server is gone
        assert (first_u.recorded, first_o.recorded) == (900, 900)
        with serve_process(url) as (_, target), PromptGaugeClient(target, key) as pg:
            again_u = pg.stream_usage(in_batches(usage, 250))
            again_o = pg.stream_trace_outcomes(in_batches(outcomes, 250))
            for s in (again_u, again_o):
                assert (s.received, s.recorded, s.duplicates, s.rejected) == (900, 0, 900, 0)
            assert comparison_snapshot(pg, "restarted") == before
        assert [row[:5] for row in before] == _expected("restarted", 900)
        (count,) = read_sql(url, "SELECT COUNT(*) FROM observation")[0]
        assert count == 2 * 900  # one linked and one outcome row per trace, never more


# -- 3. sketches survive a restart and equal a rebuild --------------------------


def test_checkpoints_survive_a_restart_without_a_full_rescan(backend, tmp_path):
    n = 3 * FOLD_AT + 321
    with database_url(backend, tmp_path) as url:
        _, usage, outcomes = _workload("survivor", n)
        with serve_process(url) as (_, target):
            key = create_account(url)
            with PromptGaugeClient(target, key) as pg:
                pg.create_prompt_version("survivor", "one")
                pg.create_prompt_version("survivor", "two")
                pg.stream_usage(in_batches(usage, 1000))
                pg.stream_trace_outcomes(in_batches(outcomes, 1000))
                before = comparison_snapshot(pg, "survivor")
        tails = checkpoint_tails(url)
        assert len(tails) == 2
        for last, tail in tails.values():
            assert last > 0  # the checkpoint advanced and is stored
            assert tail < FOLD_AT  # all a new process has to read besides it
        with serve_process(url) as (_, target), PromptGaugeClient(target, key) as pg:
            assert comparison_snapshot(pg, "survivor") == before
        assert checkpoint_tails(url) == tails  # reading folded nothing new
        assert [row[:5] for row in before] == _expected("survivor", n)
        assert all(row[5] is not None for row in before)


def _checkpoints(version_ids: list) -> dict:
    query = VersionCheckpoint.select().where(VersionCheckpoint.version.in_(version_ids))
    return {cp.version: cp for cp in query}


def _state(cp) -> tuple:
    """Everything a checkpoint stores, its sketches' bytes included."""
    return (cp.last_observation_id, *(getattr(cp, name) for name in TALLY_FIELDS), bytes(cp.sketch or b""),
            bytes(cp.cost_sketch or b""))


def _buckets(version_ids: list) -> dict:
    """Everything the versions' hourly buckets store."""
    query = VersionBucket.select().where(VersionBucket.version.in_(version_ids))
    return {
        (str(b.version), b.start_time): (*(getattr(b, name) for name in TALLY_FIELDS), bytes(b.sketch or b""),
                                         bytes(b.cost_sketch or b""))
        for b in query
    }


def test_a_rebuild_from_rows_equals_the_incremental_checkpoint_byte_for_byte(server, client):
    # 4,000 durations a version: the sketch folds its exact values into
    # centroids a few times, as checkpoints do in production.
    n = 8000
    name = f"rebuilt-{uuid.uuid4().hex[:12]}"  # unique on the shared session database
    _, usage, outcomes = _workload(name, n)
    # Spread over 30 hours, out of order, so that folds touch many buckets.
    base = datetime.datetime(2026, 11, 1, 0, 0, 0)
    for i, outcome in enumerate(outcomes):
        offset = datetime.timedelta(seconds=(i * 7919) % (30 * 3600), microseconds=i)
        outcome.end_time.FromDatetime(base + offset)
    client.create_prompt_version(name, "one")
    client.create_prompt_version(name, "two")
    client.stream_usage(in_batches(usage, 1000))
    client.stream_trace_outcomes(in_batches(outcomes, 1000))
    before = comparison_snapshot(client, name)
    with storage.db.connection_context():
        ids = [
            v.id for v in PromptVersion.select().join(Prompt)
            .where(Prompt.name == name).order_by(PromptVersion.version)
        ]
        assert len(ids) == 2
        analytics = Analytics(storage.store())
        # The checkpoints as ingestion folded them, then folded on to the end
        # in other steps: incremental folding, whatever the chunks.
        for vid in ids:
            while analytics.fold(vid, limit=137):
                pass
        incremental = {vid: _state(cp) for vid, cp in _checkpoints(ids).items()}
        incremental_buckets = _buckets(ids)
        for vid in ids:
            analytics.rebuild(vid)
        rebuilt = {vid: _state(cp) for vid, cp in _checkpoints(ids).items()}
        rebuilt_buckets = _buckets(ids)
    assert rebuilt == incremental
    assert rebuilt_buckets == incremental_buckets
    # The 30 hours of end times, and the hour the links came in, where the
    # links counted each trace until its outcome moved it (net 0 there).
    assert len({hour for _, hour in rebuilt_buckets}) in (31, 32)  # 32: links straddled an hour
    assert all(len(state[-1]) > 0 for state in rebuilt.values())
    assert comparison_snapshot(client, name) == before
    assert [row[:5] for row in before] == _expected(name, n)


# -- 4. the work of a comparison does not grow with history ----------------------


class _StatementCounter(logging.Handler):
    """Peewee logs every statement it runs at DEBUG: count this thread's."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.thread = threading.get_ident()
        self.statements: list = []

    def emit(self, record):
        if record.thread == self.thread:
            self.statements.append(record.msg)


def _count_statements(call) -> int:
    logger = logging.getLogger("peewee")
    handler, level = _StatementCounter(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        call()
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    return len(handler.statements)


def _ingest_in_process(caller, name: str, traces: int) -> None:
    """`traces` traces, each linked to versions 1 and 2 and with an outcome:
    four observations per trace. Through the domain, 1000 records a batch."""
    analytics = Analytics(storage.store())
    for start in range(0, traces, 500):
        ids = [uuid.uuid4().hex for _ in range(start, min(start + 500, traces))]
        with storage.db.connection_context():
            links = [(name, version, t, None) for t in ids for version in (1, 2)]
            assert set(analytics.record_usage(caller, links)) == {"recorded"}
            results = analytics.record_outcomes(
                caller, [(t, i % 2 == 0, 0.5, float(i % 300)) for i, t in enumerate(ids)]
            )
            assert set(results) == {"recorded"}


def _rows_a_compare_reads(name: str, account_id: int) -> dict[int, int]:
    """Per version: the observations after its checkpoint, i.e. the tail a
    comparison folds on top of the stored checkpoint, as of now."""
    out = {}
    versions = (
        PromptVersion.select(PromptVersion.id, PromptVersion.version).join(Prompt)
        .where((Prompt.account == account_id) & (Prompt.name == name))
    )
    for v in versions:
        cp = VersionCheckpoint.get_by_id(v.id)
        out[v.version] = (
            Observation.select()
            .where((Observation.version == v.id) & (Observation.id > cp.last_observation_id))
            .count()
        )
    return out


def test_comparison_work_does_not_grow_with_history(server):
    with storage.db.connection_context():
        account_id, key_id, key = accounts.create_account(f"scale-{uuid.uuid4().hex[:12]}")
    caller = accounts.Caller(account_id, key_id)
    with PromptGaugeClient(server.target, key) as pg:
        for name in ("small", "large"):
            pg.create_prompt_version(name, "one")
            pg.create_prompt_version(name, "two")
    small = FOLD_AT // 4  # 4 * small observations, half a fold per version: all tail
    _ingest_in_process(caller, "small", small)
    _ingest_in_process(caller, "large", 25_000)  # 100k observations
    analytics = Analytics(storage.store())
    counts, reads, totals = {}, {}, {}
    with storage.db.connection_context():
        for name in ("small", "large"):
            reads[name] = _rows_a_compare_reads(name, account_id)
            result: list = []
            counts[name] = _count_statements(
                lambda n=name, out=result: out.extend(analytics.compare(caller, n))
            )
            totals[name] = sum(m.total_traces for m in result)
            assert _rows_a_compare_reads(name, account_id) == reads[name]  # the compare folded nothing
        observed = (
            Observation.select().join(PromptVersion, on=Observation.version == PromptVersion.id).join(Prompt)
            .where((Prompt.account == account_id) & (Prompt.name == "large")).count()
        )
    assert totals == {"small": 2 * small, "large": 2 * 25_000}
    assert observed == 100_000
    assert sum(reads["small"].values()) == 4 * small  # nothing folded yet: all tail
    assert all(rows < FOLD_AT for rows in reads["large"].values()), reads
    assert counts["small"] == counts["large"] > 0


# -- 5. two server processes on one PostgreSQL -------------------------------------


def test_two_servers_on_one_postgres_fed_the_same_streams_count_once(tmp_path):
    n = 4000
    with (
        database_url("postgres", tmp_path) as url,
        serve_process(url) as (_, a),
        serve_process(url) as (_, b),
    ):
        key = create_account(url)
        with PromptGaugeClient(a, key) as pa, PromptGaugeClient(b, key) as pb:
            pa.create_prompt_version("replicas", "one")
            pa.create_prompt_version("replicas", "two")
            traces, usage, outcomes = _workload("replicas", n)
            # Spread over ten hours, so that both replicas' folds fill buckets.
            base = datetime.datetime(2026, 11, 2)
            ends = [base + datetime.timedelta(seconds=(i * 7919) % 36_000, microseconds=i) for i in range(n)]
            for outcome, end in zip(outcomes, ends, strict=True):
                outcome.end_time.FromDatetime(end)
            # A second span per trace for some: links that must not count twice.
            usage += [usage_record("replicas", 1 + i % 2, traces[i], "child") for i in range(0, n, 5)]
            barrier = threading.Barrier(4)
            summaries: dict = {}
            failures: list = []

            def feed(label, send, items):
                try:
                    barrier.wait(timeout=30)
                    summaries[label] = send(in_batches(items, 250), timeout=120)
                except Exception as error:  # noqa: BLE001 - reported below
                    failures.append((label, error))

            threads = [
                threading.Thread(target=feed, args=("usage-a", pa.stream_usage, usage)),
                threading.Thread(target=feed, args=("usage-b", pb.stream_usage, usage)),
                threading.Thread(target=feed, args=("outcomes-a", pa.stream_trace_outcomes, outcomes)),
                threading.Thread(target=feed, args=("outcomes-b", pb.stream_trace_outcomes, outcomes)),
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=180)
            assert not failures, failures
            for kind, total in (("usage", len(usage)), ("outcomes", n)):
                sa, sb = summaries[f"{kind}-a"], summaries[f"{kind}-b"]
                assert sa.rejected == sb.rejected == 0
                # Every record stored exactly once, by one of the two.
                assert sa.recorded + sb.recorded == total, kind
                assert sa.duplicates + sb.duplicates == total, kind
            from_a, from_b = comparison_snapshot(pa, "replicas"), comparison_snapshot(pb, "replicas")
            low = base + datetime.timedelta(hours=2, minutes=30)
            high = base + datetime.timedelta(hours=7, minutes=15)
            windowed = [
                [(m.version, m.total_traces, m.outcome_count, m.success_count, m.p95_latency_ms)
                 for m in pg.compare_prompt_versions("replicas", start_time=low, end_time=high).versions]
                for pg in (pa, pb)
            ]
        assert windowed[0] == windowed[1]
        inside = [sum(1 for i in range(k, n, 2) if low <= ends[i] < high) for k in (0, 1)]
        assert [(row[1], row[2]) for row in windowed[0]] == [(c, c) for c in inside]
        assert from_a == from_b
        assert [row[:5] for row in from_a] == _expected("replicas", n)
        (count,) = read_sql(url, "SELECT COUNT(*) FROM observation")[0]
        assert count == 2 * n
        (dupes,) = read_sql(
            url, "SELECT COUNT(*) FROM (SELECT version_id, trace_id, kind FROM observation "
            "GROUP BY version_id, trace_id, kind HAVING COUNT(*) > 1) d"
        )[0]
        assert dupes == 0
        for last, tail in checkpoint_tails(url).values():
            assert last > 0 and tail < FOLD_AT
        # The checkpoints, with their tails, count every trace once.
        checkpoint_totals = read_sql(url, "SELECT SUM(total_traces) FROM version_checkpoint")[0][0]
        (linked_in_tail,) = read_sql(
            url,
            "SELECT COUNT(*) FROM observation o "
            "JOIN version_checkpoint c ON c.version_id = o.version_id "
            "WHERE o.id > c.last_observation_id AND o.kind = 1"
        )[0]
        assert checkpoint_totals + linked_in_tail == n

