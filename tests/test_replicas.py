"""Several replicas: three `promptgauge serve` processes on one PostgreSQL, a
client spreading a concurrent ingest over them, and the same exact answer
from each. Only PostgreSQL is for several replicas, so only it runs here."""

import queue
import random
import subprocess
import sys
import threading
import uuid
from contextlib import ExitStack

import grpc
import pytest
from conftest import (
    checkpoint_tails,
    create_account,
    database_url,
    in_batches,
    read_sql,
    serve_process,
    skip_without_postgres,
    trace_outcome,
    usage_record,
)
from test_sketch import _exact_p95

from promptgauge.client import PromptGaugeClient, PromptGaugeError
from promptgauge.server.analytics import FOLD_AT

pytestmark = pytest.mark.postgres


@pytest.fixture(autouse=True)
def _postgres():
    skip_without_postgres()

REPLICAS = 3
TRACES = 24_000
VERSIONS = (1, 2, 3)
THREADS = 6
RECORDS_PER_STREAM = 1_500
RECORDS_PER_MESSAGE = 500


def _signals(i: int) -> tuple:
    """Trace i's outcome (success, cost, duration), or None when it has none.
    Some lack one signal; costs are multiples of 1/16 and durations
    whole milliseconds, so every sum is exact whatever the order of folding,
    and averages can be compared with ==."""
    if i % 19 == 0:
        return None
    success, cost, duration = (i * 7) % 5 != 0, (i % 16) / 16, float(1 + (i * 37) % 1000)
    if i % 17 == 0:
        return None, cost, duration
    if i % 11 == 0:
        return success, None, duration
    if i % 13 == 0:
        return success, cost, None
    return success, cost, duration


def _workload(name: str):
    """Links and outcomes of TRACES traces, with what each version must show.

    Every trace is linked to one version at the span "root"; every 4th again
    at "child" (it must still count once); every 10th also to the next
    version (it counts for both)."""
    traces = [str(uuid.uuid4()) for _ in range(TRACES)]
    links: dict[int, set[int]] = {v: set() for v in VERSIONS}
    usage = []
    for i, trace in enumerate(traces):
        version = VERSIONS[i % len(VERSIONS)]
        usage.append(usage_record(name, version, trace, "root"))
        links[version].add(i)
        if i % 4 == 0:
            usage.append(usage_record(name, version, trace, "child"))
        if i % 10 == 0:
            other = VERSIONS[(i + 1) % len(VERSIONS)]
            usage.append(usage_record(name, other, trace))
            links[other].add(i)
    outcomes = [
        trace_outcome(trace, *_signals(i)) for i, trace in enumerate(traces) if _signals(i) is not None
    ]
    return usage, outcomes, links


def _expected(links: dict[int, set[int]]) -> dict[int, tuple]:
    """Per version: total traces, success rate, avg cost, avg latency, and
    the exact p95 of its durations, computed from what was sent."""
    out = {}
    for version, linked in links.items():
        signals = [_signals(i) for i in sorted(linked) if _signals(i) is not None]
        success = [s for s, _, _ in signals if s is not None]
        costs = [c for _, c, _ in signals if c is not None]
        durations = [d for _, _, d in signals if d is not None]
        out[version] = (
            len(linked),
            sum(success) / len(success),
            sum(costs) / len(costs),
            sum(durations) / len(durations),
            _exact_p95(durations),
        )
    return out


def _jobs(usage: list, outcomes: list) -> list[tuple[str, list]]:
    """Streams to send: every record once, every 5th link and 7th outcome
    twice (the copy in another stream, so on another replica), in a shuffled
    order that puts outcomes before their links for many traces."""
    chunks = [("usage", c) for c in in_batches(usage, RECORDS_PER_STREAM)]
    chunks += [("outcomes", c) for c in in_batches(outcomes, RECORDS_PER_STREAM)]
    chunks += [("usage", c) for c in in_batches(usage[::5], RECORDS_PER_STREAM)]
    chunks += [("outcomes", c) for c in in_batches(outcomes[::7], RECORDS_PER_STREAM)]
    random.Random(20240611).shuffle(chunks)
    # The first stream out carries outcomes of traces not linked yet.
    first = next(i for i, (kind, _) in enumerate(chunks) if kind == "outcomes")
    chunks.insert(0, chunks.pop(first))
    return chunks


def _ingest(clients: list[PromptGaugeClient], jobs: list) -> dict[str, list]:
    """THREADS threads take the streams in turn; stream n goes to replica
    n % REPLICAS. Returns the summaries by kind."""
    todo: queue.Queue = queue.Queue()
    for number, job in enumerate(jobs):
        todo.put((number, job))
    summaries: dict[str, list] = {"usage": [], "outcomes": []}
    failures: list = []
    start = threading.Barrier(THREADS)

    def worker():
        try:
            start.wait(timeout=60)
            while True:
                try:
                    number, (kind, records) = todo.get_nowait()
                except queue.Empty:
                    return
                client = clients[number % REPLICAS]
                send = client.stream_usage if kind == "usage" else client.stream_trace_outcomes
                summaries[kind].append(send(in_batches(records, RECORDS_PER_MESSAGE), timeout=240))
        except Exception as error:  # noqa: BLE001 - reported below
            failures.append(error)

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert not failures, failures
    assert todo.empty() and not any(t.is_alive() for t in threads)
    return summaries


def _revoke(url: str, key_id: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "promptgauge.server.cli", "keys", "revoke", key_id, "--database-url", url],
        capture_output=True, text=True, timeout=60, check=True,
    )


def _new_key(url: str, account: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "promptgauge.server.cli", "keys", "create", account, "--database-url", url],
        capture_output=True, text=True, timeout=60, check=True,
    )
    return done.stdout.strip().splitlines()[-1]


def test_three_replicas_on_one_postgres_count_exactly_and_answer_alike(tmp_path):
    name = "fleet"
    with ExitStack() as stack:
        url = stack.enter_context(database_url("postgres", tmp_path))
        targets = [stack.enter_context(serve_process(url))[1] for _ in range(REPLICAS)]
        account = f"replicas-{uuid.uuid4().hex[:12]}"
        key = create_account(url, account)
        clients = [stack.enter_context(PromptGaugeClient(t, key)) for t in targets]
        created = [clients[0].create_prompt_version(name, f"v{v}: {{ticket}}") for v in VERSIONS]
        usage, outcomes, links = _workload(name)
        jobs = _jobs(usage, outcomes)

        summaries = _ingest(clients, jobs)

        # Each record stored once, by whichever replica came first; every
        # copy anywhere else a duplicate.
        for kind, records in (("usage", usage), ("outcomes", outcomes)):
            sent = sum(len(r) for k, r in jobs if k == kind)
            got = summaries[kind]
            assert sum(s.received for s in got) == sent
            assert sum(s.rejected for s in got) == 0, [e for s in got for e in s.errors][:5]
            assert sum(s.recorded for s in got) == len(records), kind
            assert sum(s.duplicates for s in got) == sent - len(records), kind
        # Outcomes did arrive before their links, for some traces.
        (early,) = read_sql(
            url,
            "SELECT COUNT(*) FROM trace t WHERE t.outcome_time < "
            "(SELECT MIN(l.create_time) FROM usage_link l WHERE l.trace_id = t.id)",
        )[0]
        assert early > 0
        # The checkpoints advanced and their tails are short: a comparison
        # now reads and folds nothing new, so every replica sees one state.
        tails = checkpoint_tails(url)
        assert len(tails) == len(VERSIONS)
        assert all(last > 0 and tail < FOLD_AT for last, tail in tails.values()), tails

        answers = [c.compare_prompt_versions(name) for c in clients]
        serialized = {a.SerializeToString(deterministic=True) for a in answers}
        assert len(serialized) == 1  # byte for byte the same from every replica
        expected = _expected(links)
        for metrics in answers[0].versions:
            total, success_rate, avg_cost, avg_latency, p95 = expected[metrics.version]
            assert metrics.total_traces == total
            assert metrics.success_rate == success_rate
            assert metrics.avg_cost_usd == avg_cost
            assert metrics.avg_latency_ms == avg_latency
            # The t-digest's estimate: within the half percent tests/test_sketch.py holds it to.
            assert metrics.p95_latency_ms == pytest.approx(p95, rel=0.005)
        assert [m.version for m in answers[0].versions] == list(VERSIONS)

        # A key revoked through one path (the command, straight on the
        # database) is refused at once by every replica; another key of the
        # same account still works everywhere.
        second = _new_key(url, account)
        _revoke(url, created[0].created_by)
        for target in targets:
            with PromptGaugeClient(target, key) as revoked:
                with pytest.raises(PromptGaugeError) as err:
                    revoked.compare_prompt_versions(name)
                assert err.value.code == grpc.StatusCode.UNAUTHENTICATED, target
            with PromptGaugeClient(target, second) as fresh:
                again = fresh.compare_prompt_versions(name)
                assert again.SerializeToString(deterministic=True) in serialized
