"""Usage links and outcomes of the same traces from several clients at once,
on every backend. Writers lock trace rows in one order (trace_id), whichever
RPC they come through and whether the traces are new or not: no call fails
(a PostgreSQL deadlock would come back as UNAVAILABLE), and every trace
counts once, with its outcome, in every version it was linked to."""

import random
import threading

from conftest import in_batches, new_trace, trace_outcome, usage_record

from promptgauge.client import PromptGaugeClient

THREADS = 4
ROUNDS = 8
PER_STREAM = 200


def test_links_and_outcomes_of_shared_traces_from_many_clients_at_once(server, api_key, client):
    for text in ("a {x}", "b {x}"):
        client.create_prompt_version("shared", text)
    old = [new_trace() for _ in range(300)]
    fresh = [new_trace() for _ in range(300)]  # created during the race, by links or by outcomes
    assert client.stream_usage([[usage_record("shared", 1, t) for t in old]]).recorded == len(old)
    everyone = old + fresh
    outcome_of = {t: (i % 3 != 0, 0.25 * (i % 4), float(10 + i % 50)) for i, t in enumerate(everyone)}
    linked = {1: set(old), 2: set()}
    lock = threading.Lock()
    failures: list = []

    def writer(seed: int) -> None:
        rng = random.Random(seed)
        try:
            with PromptGaugeClient(server.target, api_key) as pg:
                for _ in range(ROUNDS):
                    traces = rng.sample(everyone, PER_STREAM)  # old and new, in no order
                    if rng.random() < 0.5:
                        version = rng.choice((1, 2))
                        records = [usage_record("shared", version, t) for t in traces]
                        summary = pg.stream_usage(in_batches(records, 50))
                        with lock:
                            linked[version].update(traces)
                    else:
                        outcomes = [trace_outcome(t, *outcome_of[t]) for t in traces]
                        summary = pg.stream_trace_outcomes(in_batches(outcomes, 50))
                    assert summary.rejected == 0 and summary.received == PER_STREAM, summary
        except BaseException as error:  # noqa: BLE001 - reported by the test thread
            failures.append(error)

    threads = [threading.Thread(target=writer, args=(seed,)) for seed in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures

    # Every outcome once more (the ones recorded in the race come back duplicate).
    outcomes = [trace_outcome(t, *outcome_of[t]) for t in everyone]
    summary = client.stream_trace_outcomes(in_batches(outcomes, 500))
    assert summary.recorded + summary.duplicates == len(everyone) and summary.rejected == 0, summary
    metrics = {m.version: m for m in client.compare_prompt_versions("shared").versions}
    for version, traces in linked.items():
        m = metrics[version]
        assert m.total_traces == len(traces)
        if traces:
            successes = sum(outcome_of[t][0] for t in traces)
            assert m.success_rate == successes / len(traces)
            costs = [outcome_of[t][1] for t in traces]
            assert abs(m.avg_cost_usd - sum(costs) / len(costs)) < 1e-9
