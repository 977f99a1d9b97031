"""OTLP/gRPC TraceService/Export on the server's port, through a real channel,
on SQLite and PostgreSQL: spans become links and outcomes through the same
ingestion as the streams, once, in either order; unusable spans are counted
in partial_success and change nothing; same auth, limits, logs and metrics
as every other RPC. (tests/test_otlp_sdk.py drives it with the real SDK.)"""

import json
import random
import secrets
import threading
import urllib.request

import grpc
import pytest
from conftest import (
    comparison_snapshot,
    create_account,
    otlp_export,
    otlp_span,
    read_sql,
    serve_process,
    trace_outcome,
    usage_record,
)
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.trace.v1 import trace_pb2
from prometheus_client.parser import text_string_to_metric_families

from promptgauge.client import PromptGaugeClient, PromptGaugeError
from promptgauge.client.client import NO_RETRY

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
ERROR = trace_pb2.Status.STATUS_CODE_ERROR
START = 1_767_225_600_000_000_000
MS = 1_000_000


def _prompt(client, versions: int = 2) -> str:
    name = f"otlp-{secrets.token_hex(4)}"
    for v in range(versions):
        client.create_prompt_version(name, f"v{v + 1} {{q}}")
    return name


def _link(name: str, version) -> dict:
    return {"promptgauge__prompt__name": name, "promptgauge__prompt__version": version}


def _run(name: str, version: int, *, ms: int, cost: float, status: int = 0) -> tuple[bytes, list]:
    """One agent run: a root span (its outcome) and a child that used the prompt version."""
    t = secrets.token_bytes(16)
    root = otlp_span(t, start_ns=START, end_ns=START + ms * MS, status=status, promptgauge__cost_usd=cost)
    llm = otlp_span(t, parent=root.span_id, **_link(name, version))
    tool = otlp_span(t, parent=root.span_id, **{"tool__name": "search"})
    return t, [root, llm, tool]


def test_an_export_of_runs_makes_the_comparison(client):
    name = _prompt(client)
    # p95 where the two highest durations meet: the same under any interpolation.
    runs = [
        _run(name, 1, ms=100, cost=0.01), _run(name, 1, ms=300, cost=0.03, status=ERROR),
        _run(name, 1, ms=300, cost=0.02), _run(name, 2, ms=50, cost=0.02),
    ]
    response = client.export_traces(otlp_export(*(s for _, spans in runs for s in spans)))
    assert not response.HasField("partial_success")
    assert comparison_snapshot(client, name) == [
        (1, 3, pytest.approx(2 / 3), pytest.approx(0.02), pytest.approx(700 / 3), 300.0),
        (2, 1, 1.0, 0.02, 50.0, 50.0),
    ]


@pytest.mark.parametrize("outcome_first", [True, False])
def test_a_link_and_an_outcome_in_separate_exports_join_in_either_order(client, outcome_first):
    name = _prompt(client, 1)
    _, (root, llm, _) = _run(name, 1, ms=40, cost=0.5, status=ERROR)
    first, second = (root, llm) if outcome_first else (llm, root)
    client.export_traces(otlp_export(first))
    client.export_traces(otlp_export(second))
    assert comparison_snapshot(client, name) == [(1, 1, 0.0, 0.5, 40.0, 40.0)]


def test_a_reexport_changes_nothing_and_the_streams_see_the_same_records(client):
    name = _prompt(client)
    t, spans = _run(name, 2, ms=70, cost=0.25)
    request = otlp_export(*spans)
    client.export_traces(request)
    before = comparison_snapshot(client, name)
    assert client.export_traces(request) == trace_service_pb2.ExportTraceServiceResponse()
    assert before == [(1, 0, None, None, None, None), (2, 1, 1.0, 0.25, 70.0, 70.0)]
    assert comparison_snapshot(client, name) == before
    # The same unique keys as the streams': the link and outcome are theirs too.
    summary = client.stream_usage([[usage_record(name, 2, t.hex(), spans[1].span_id.hex())]])
    assert (summary.recorded, summary.duplicates) == (0, 1)
    again = client.record_trace_outcome(t.hex(), success=True, total_cost_usd=0.25, duration_ms=70.0)
    assert again == "duplicate"


def test_unusable_spans_are_counted_named_and_the_rest_is_stored(client):
    name = _prompt(client)
    recorded, _ = _run(name, 1, ms=10, cost=0.1)
    client.record_trace_outcome(recorded.hex(), success=True, total_cost_usd=0.1, duration_ms=10.0)
    before = comparison_snapshot(client, name)
    _, good = _run(name, 2, ms=20, cost=0.2)
    t = secrets.token_bytes(16)
    bad = [
        otlp_span(t, parent=b"p" * 8, **_link(name, 9)),
        otlp_span(t, parent=b"p" * 8, **_link(name, "2")),
        otlp_span(recorded, start_ns=START, end_ns=START + 99 * MS),  # another outcome for a recorded trace
        otlp_span(b"\x01" * 8, parent=b"p" * 8, **_link(name, 1)),
        otlp_span(t, promptgauge__cost_usd=float("nan")),
    ]
    response = client.export_traces(otlp_export(bad[0], *good, *bad[1:]))
    assert response.partial_success.rejected_spans == 5
    message = response.partial_success.error_message
    assert message.startswith("5 span(s) rejected: ")
    for words in (
        f"span {bad[0].span_id.hex()} of trace {t.hex()}: prompt {name!r} has no version 9",
        "attribute promptgauge.prompt.version must be an int, got string",
        f"trace {recorded.hex()} already has a different outcome",
        "trace_id '0101010101010101' is neither a UUID nor a 32-hex-digit OpenTelemetry trace id",
        "total_cost_usd must be a finite number",
    ):
        assert words in message
    # Versions out of range, as an OTLP int (64-bit) can carry them.
    response = client.export_traces(otlp_export(*(otlp_span(t, parent=b"p" * 8, **_link(name, v))
                                                  for v in (0, -1, 2**31, 2**62))))
    message = response.partial_success.error_message
    assert response.partial_success.rejected_spans == 4
    assert message.count("prompt_version must be a positive integer") == 2
    assert message.count("promptgauge.prompt.version must be at most 2147483647") == 2
    # The good run is stored; nothing of the bad ones is.
    assert comparison_snapshot(client, name) == [before[0], (2, 1, 1.0, 0.2, 20.0, 20.0)]


def test_a_version_of_another_account_is_not_found_and_its_data_is_untouched(client, other_client):
    theirs = _prompt(other_client, 1)
    _, spans = _run(theirs, 1, ms=10, cost=0.1)
    response = client.export_traces(otlp_export(*spans))
    assert response.partial_success.rejected_spans == 1
    assert f"prompt {theirs!r} has no version 1" in response.partial_success.error_message
    assert comparison_snapshot(other_client, theirs) == [(1, 0, None, None, None, None)]


def test_an_export_with_nothing_for_promptgauge_is_ok_and_empty(client):
    t = secrets.token_bytes(16)
    noise = [otlp_span(t, parent=b"p" * 8, **{"http__route": "/x"}) for _ in range(20)]
    assert client.export_traces(otlp_export(*noise)) == trace_service_pb2.ExportTraceServiceResponse()
    assert client.export_traces(otlp_export()) == trace_service_pb2.ExportTraceServiceResponse()


@pytest.mark.parametrize("authorization", [None, "Bearer pgk_" + "x" * 43, "Basic abc"])
def test_an_export_without_a_valid_key_is_unauthenticated_and_stores_nothing(server, client, authorization):
    name = _prompt(client, 1)
    _, spans = _run(name, 1, ms=10, cost=0.1)
    metadata = [("authorization", authorization)] if authorization else []
    with grpc.insecure_channel(server.target) as channel:
        export = channel.unary_unary(
            EXPORT,
            request_serializer=trace_service_pb2.ExportTraceServiceRequest.SerializeToString,
            response_deserializer=trace_service_pb2.ExportTraceServiceResponse.FromString,
        )
        with pytest.raises(grpc.RpcError) as raised:
            export(otlp_export(*spans), metadata=metadata, timeout=10)
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert comparison_snapshot(client, name) == [(1, 0, None, None, None, None)]


def test_a_malformed_export_is_invalid_argument(server, api_key):
    with grpc.insecure_channel(server.target) as channel:
        export = channel.unary_unary(EXPORT, request_serializer=None, response_deserializer=None)
        with pytest.raises(grpc.RpcError) as raised:
            export(b"\x0a\xff", metadata=[("authorization", f"Bearer {api_key}")], timeout=10)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "malformed" in raised.value.details()


# -- the same limits, logs and metrics, from a real `promptgauge serve` --------------


def _scrape(port: int) -> dict[tuple, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_exports_are_limited_logged_and_counted_like_every_rpc(tmp_path):
    url = f"sqlite:///{tmp_path / 'otlp.db'}"
    key = create_account(url)
    flags = ("--metrics-listen", "127.0.0.1:0", "--max-message-bytes", "65536")
    with serve_process(url, *flags) as (proc, target):
        with PromptGaugeClient(target, key, retry=NO_RETRY) as pg:
            name = _prompt(pg, 1)
            _, spans = _run(name, 1, ms=10, cost=0.1)
            pg.export_traces(otlp_export(*spans))
            t = secrets.token_bytes(16)
            huge = [otlp_span(t, parent=b"p" * 8, **{"note": "x" * 1000}) for _ in range(80)]
            with pytest.raises(PromptGaugeError) as raised:
                pg.export_traces(otlp_export(*huge))
            assert raised.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert comparison_snapshot(pg, name) == [(1, 1, 1.0, 0.1, 10.0, 10.0)]
        metrics = _scrape(proc.metrics_port)
        proc.terminate()
        assert proc.wait(timeout=30) == 0
    service, method = EXPORT.strip("/").split("/")
    labels = (("code", "OK"), ("method", method), ("service", service))
    assert metrics[("promptgauge_rpcs_total", labels)] == 1
    assert metrics[("promptgauge_records_total", (("kind", "usage"), ("result", "recorded")))] == 1
    assert metrics[("promptgauge_records_total", (("kind", "outcome"), ("result", "recorded")))] == 1
    lines = [json.loads(line) for line in proc.output if line.startswith("{")]
    exports = [e for e in lines if e["logger"] == "promptgauge.rpc" and e.get("method") == EXPORT]
    assert [(e["code"], e["account_id"]) for e in exports] == [("OK", 1)]
    assert key not in "".join(proc.output)
    assert read_sql(url, "SELECT COUNT(*) FROM usage_link") == [(1,)]


def test_a_stream_and_an_export_of_the_same_facts_agree(client):
    """The streams' records and the spans' give one comparison: one ingestion."""
    by_stream, by_export = _prompt(client, 1), _prompt(client, 1)
    runs = [_run(by_export, 1, ms=ms, cost=ms / 1000, status=ERROR if ms % 3 else 0) for ms in (10, 20, 30)]
    client.export_traces(otlp_export(*(s for _, spans in runs for s in spans)))
    client.stream_usage([[usage_record(by_stream, 1, t.hex()) for t, _ in runs]])
    client.stream_trace_outcomes([[
        trace_outcome(t.hex(), spans[0].status.code != ERROR, spans[0].attributes[0].value.double_value,
                      (spans[0].end_time_unix_nano - spans[0].start_time_unix_nano) / MS)
        for t, spans in runs
    ]])
    assert comparison_snapshot(client, by_stream) == comparison_snapshot(client, by_export)


def test_exports_of_shared_traces_from_many_exporters_at_once_count_each_trace_once(server, api_key, client):
    """Each export brings outcomes of some traces and links of others, so two
    exports lock traces the other holds unless every export locks all of its
    traces first, in the one order (docs/design.md, "Lock order"): on
    PostgreSQL a deadlock comes back as UNAVAILABLE, which fails here."""
    name = _prompt(client)
    pool = [secrets.token_bytes(16) for _ in range(300)]
    outcome_of = {t: (10 + i % 50, 0.25 * (i % 4), ERROR if i % 3 == 0 else 0) for i, t in enumerate(pool)}
    linked: dict[int, set] = {1: set(), 2: set()}
    lock = threading.Lock()
    failures: list = []

    def exporter(seed: int) -> None:
        rng = random.Random(seed)
        try:
            with PromptGaugeClient(server.target, api_key, retry=NO_RETRY) as pg:
                for _ in range(6):
                    roots, links = rng.sample(pool, 100), rng.sample(pool, 100)
                    version = rng.choice((1, 2))
                    spans = [
                        otlp_span(t, start_ns=START, end_ns=START + outcome_of[t][0] * MS,
                                  status=outcome_of[t][2], promptgauge__cost_usd=outcome_of[t][1])
                        for t in roots
                    ] + [otlp_span(t, parent=b"p" * 8, **_link(name, version)) for t in links]
                    rng.shuffle(spans)
                    response = pg.export_traces(otlp_export(*spans))
                    assert not response.HasField("partial_success"), response
                    with lock:
                        linked[version].update(links)
        except BaseException as error:  # noqa: BLE001 - reported by the test thread
            failures.append(error)

    threads = [threading.Thread(target=exporter, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures

    # Every root once more, so that every linked trace has its outcome.
    roots = [otlp_span(t, start_ns=START, end_ns=START + ms * MS, status=status, promptgauge__cost_usd=cost)
             for t, (ms, cost, status) in outcome_of.items()]
    assert not client.export_traces(otlp_export(*roots)).HasField("partial_success")
    metrics = {m.version: m for m in client.compare_prompt_versions(name).versions}
    for version, traces in linked.items():
        m = metrics[version]
        assert m.total_traces == len(traces)
        successes = sum(outcome_of[t][2] != ERROR for t in traces)
        assert m.success_rate == pytest.approx(successes / len(traces), rel=1e-12)
        mean = sum(outcome_of[t][0] for t in traces) / len(traces)
        assert m.avg_latency_ms == pytest.approx(mean, rel=1e-12)
