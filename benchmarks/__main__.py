"""`python -m benchmarks [--scale smoke|full] [--backend sqlite|postgres|all|none] [--out FILE]`

Starts a real `promptgauge serve` process and an echo server (benchmarks/echo.py)
on loopback, drives both from this process, measures the raw database limit
with plain DB-API calls, prints a table and writes the figures as JSON.
"""

import argparse
import json
import os
import platform
import random
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode, urlparse

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from promptgauge.v1 import analytics_pb2, analytics_pb2_grpc

from . import raw as rawdb

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
MESSAGE_RECORDS = 500
VERSIONS = 10  # (d): a 10-version prompt
OTLP_SPANS = 10_000  # (g): spans in one export ...
OTLP_LINKED = 100  # ... of which these link a prompt version (1%)

# What each target asks of a figure: (key, description, test).
TARGETS = {
    "stream_usage_500": ("ratio", 0.5, ">="),
    "stream_outcomes_500": ("ratio", 0.5, ">="),
    "stream_usage_1": ("ratio", 0.5, ">="),
    "stream_outcomes_1": ("ratio", 0.5, ">="),
    "unary_usage": ("ratio", 0.4, ">="),
}


@dataclass(frozen=True)
class Scale:
    ingest: int  # records per kind for (a)
    single: int  # records per kind for (b)
    unary: int  # calls for (c)
    observations: tuple[int, ...]  # (d)
    compare_calls: int
    accuracy: int  # durations for (e)
    otlp_calls: int  # exports (and streams) timed for (g)


SCALES = {
    "full": Scale(50_000, 5_000, 3_000, (10_000, 100_000, 1_000_000), 200, 1_000_000, 20),
    "smoke": Scale(2_000, 300, 200, (1_000, 2_000, 4_000), 20, 20_000, 3),
}


def _trace_ids(n: int) -> list[str]:
    return [secrets.token_hex(16) for _ in range(n)]


def _durations(rng: random.Random, n: int, shape: str) -> list[float]:
    if shape == "lognormal":
        return [rng.lognormvariate(7.0, 0.7) for _ in range(n)]
    # Bimodal: fast cache hits and slow tool-using runs.
    return [
        rng.gauss(250.0, 40.0) if rng.random() < 0.7 else rng.lognormvariate(8.3, 0.4)
        for _ in range(n)
    ]


def _outcomes(rng: random.Random, traces: list[str]) -> list[tuple]:
    """(trace_id, success, cost, duration) per trace."""
    durations = _durations(rng, len(traces), "lognormal")
    return [
        (t, rng.random() < 0.8, round(rng.uniform(0.0005, 0.02), 6), max(0.0, d))
        for t, d in zip(traces, durations, strict=True)
    ]


def _usage_messages(name: str, versions: int, traces: list[str], per_message: int) -> list:
    records = [
        analytics_pb2.UsageRecord(prompt_name=name, prompt_version=1 + i % versions, trace_id=t)
        for i, t in enumerate(traces)
    ]
    return [
        analytics_pb2.StreamUsageRequest(records=records[i : i + per_message])
        for i in range(0, len(records), per_message)
    ]


def _outcome_messages(outcomes: list[tuple], per_message: int) -> list:
    items = [
        analytics_pb2.TraceOutcome(trace_id=t, success=ok, total_cost_usd=cost, duration_ms=ms)
        for t, ok, cost, ms in outcomes
    ]
    return [
        analytics_pb2.StreamTraceOutcomesRequest(outcomes=items[i : i + per_message])
        for i in range(0, len(items), per_message)
    ]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


# -- processes ---------------------------------------------------------------------


@contextmanager
def _process(argv: list[str], ready: str, env: dict | None = None):
    """A child process that prints `ready HOST:PORT ...` once serving; yields (proc, target)."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, **(env or {})})
    try:
        output = []
        for line in proc.stdout:
            output.append(line)
            if line.startswith(ready):
                target = line[len(ready) :].split()[0]
                break
        else:
            raise RuntimeError(f"{argv} exited with {proc.wait()} before serving: {''.join(output)}")
        threading.Thread(target=lambda: output.extend(proc.stdout), daemon=True).start()
        proc.output = output
        yield proc, target
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _serve(url: str, *extra: str):
    return _process(
        [sys.executable, "-m", "promptgauge.server.cli", "serve", "--listen", "127.0.0.1:0",
         "--database-url", url, "--log-level", "WARNING", *extra],
        "promptgauge listening on",
    )


def _echo():
    return _process([sys.executable, "-m", "benchmarks.echo", "--listen", "127.0.0.1:0"], "echo listening on")


def _peak_rss_mb(pid: int) -> float:
    """The process's high-water resident set (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc: peak RSS needs Linux")


def _new_account(url: str) -> tuple[str, int]:
    """An account made by the real command (which also creates the schema): key, id."""
    name = f"bench-{secrets.token_hex(4)}"
    done = subprocess.run(
        [sys.executable, "-m", "promptgauge.server.cli", "accounts", "create", name, "--database-url", url],
        capture_output=True, text=True, timeout=120, check=True,
    )
    raw = rawdb.Raw(url)
    try:
        (account_id,) = raw.one("SELECT id FROM account WHERE name = {p}", (name,))
    finally:
        raw.close()
    return done.stdout.strip().splitlines()[-1], account_id


@contextmanager
def _database(backend: str, workdir: Path, pg_url: str, label: str):
    """A new, empty database of the backend: a file, or a schema of its own."""
    if backend == "sqlite":
        yield f"sqlite:///{workdir / (label + '.db')}"
        return
    import psycopg2

    schema = f"pgbench_promptgauge_{label}_{secrets.token_hex(4)}"
    conn = psycopg2.connect(pg_url)
    conn.autocommit = True
    conn.cursor().execute(f"CREATE SCHEMA {schema}")
    try:
        sep = "&" if urlparse(pg_url).query else "?"
        yield pg_url + sep + urlencode({"options": f"-csearch_path={schema}"})
    finally:
        conn.cursor().execute(f"DROP SCHEMA {schema} CASCADE")
        conn.close()


def postgres_answers(url: str) -> bool:
    try:
        import psycopg2

        psycopg2.connect(url, connect_timeout=3).close()
        return True
    except Exception:  # noqa: BLE001 - any failure means "no PostgreSQL here"
        return False


# -- measurements ------------------------------------------------------------------


class Driver:
    """A channel to one server (the real one or the echo) and the calls the benchmark makes."""

    def __init__(self, target: str, api_key: str = ""):
        self.channel = grpc.insecure_channel(target)
        grpc.channel_ready_future(self.channel).result(timeout=30)
        self.stub = analytics_pb2_grpc.AnalyticsServiceStub(self.channel)
        self.traces = trace_service_pb2_grpc.TraceServiceStub(self.channel)
        self.metadata = (("authorization", f"Bearer {api_key}"),)

    def close(self) -> None:
        self.channel.close()

    def stream(self, method: str, messages: list, expect: int) -> float:
        """Records per second of one stream carrying `messages`."""
        start = time.perf_counter()
        response = getattr(self.stub, method)(iter(messages), metadata=self.metadata, timeout=3600)
        elapsed = time.perf_counter() - start
        summary = response.summary
        if summary.recorded != expect or summary.rejected:
            raise RuntimeError(f"{method}: expected {expect} recorded, got {summary}")
        return expect / elapsed

    def unary(self, requests: list) -> dict:
        latencies = []
        start = time.perf_counter()
        for request in requests:
            t = time.perf_counter()
            self.stub.RecordUsage(request, metadata=self.metadata, timeout=60)
            latencies.append(time.perf_counter() - t)
        elapsed = time.perf_counter() - start
        return {
            "rps": len(requests) / elapsed,
            "p50_ms": _percentile(latencies, 0.5) * 1e3,
            "p99_ms": _percentile(latencies, 0.99) * 1e3,
        }

    def compare(self, name: str, calls: int,
                request=None) -> tuple[dict, analytics_pb2.ComparePromptVersionsResponse]:
        latencies = []
        request = request or analytics_pb2.ComparePromptVersionsRequest(name=name)
        response = None
        for _ in range(calls):
            t = time.perf_counter()
            response = self.stub.ComparePromptVersions(request, metadata=self.metadata, timeout=60)
            latencies.append(time.perf_counter() - t)
        return {
            "p50_ms": _percentile(latencies, 0.5) * 1e3,
            "p99_ms": _percentile(latencies, 0.99) * 1e3,
        }, response


def _create_prompt(target: str, key: str, name: str, versions: int) -> None:
    from promptgauge.client import PromptGaugeClient

    with PromptGaugeClient(target, key) as pg:
        for v in range(1, versions + 1):
            pg.create_prompt_version(name, f"version {v} of {name}: {{ticket}}")


def measure_ingest(rng, url_raw: str, real: Driver, echo: Driver, target: str, key: str,
                   scale: Scale) -> dict:
    """(a) 500 records a message against raw executemany; (b) one a message against the echo."""
    figures: dict = {}
    # (a) the raw limit, in a database of its own with the same schema.
    _, raw_account = _new_account(url_raw)
    raw = rawdb.Raw(url_raw)
    try:
        versions = raw.new_version(raw_account, "ingest", 2)
        traces = _trace_ids(scale.ingest)
        raw_usage = rawdb.raw_usage_rate(raw, raw_account, versions, traces, MESSAGE_RECORDS)
        raw_outcomes = rawdb.raw_outcome_rate(raw, raw_account, _outcomes(rng, traces), MESSAGE_RECORDS)
    finally:
        raw.close()

    _create_prompt(target, key, "ingest", 2)
    traces = _trace_ids(scale.ingest)
    usage = real.stream("StreamUsage", _usage_messages("ingest", 2, traces, MESSAGE_RECORDS), len(traces))
    outcome_msgs = _outcome_messages(_outcomes(rng, traces), MESSAGE_RECORDS)
    outcomes = real.stream("StreamTraceOutcomes", outcome_msgs, len(traces))
    figures["stream_usage_500"] = {"value": usage, "baseline": raw_usage, "unit": "records/s"}
    figures["stream_outcomes_500"] = {"value": outcomes, "baseline": raw_outcomes, "unit": "records/s"}

    # (b) one record a message: the same stream into the echo, then the server.
    traces = _trace_ids(scale.single)
    usage_msgs = _usage_messages("ingest", 2, traces, 1)
    outcome_msgs = _outcome_messages(_outcomes(rng, traces), 1)
    echo_usage = echo.stream("StreamUsage", usage_msgs, len(traces))
    echo_outcomes = echo.stream("StreamTraceOutcomes", outcome_msgs, len(traces))
    usage = real.stream("StreamUsage", usage_msgs, len(traces))
    outcomes = real.stream("StreamTraceOutcomes", outcome_msgs, len(traces))
    figures["stream_usage_1"] = {"value": usage, "baseline": echo_usage, "unit": "records/s"}
    figures["stream_outcomes_1"] = {"value": outcomes, "baseline": echo_outcomes, "unit": "records/s"}

    # (c) unary RecordUsage, one call at a time.
    requests = [
        analytics_pb2.RecordUsageRequest(
            usage=analytics_pb2.UsageRecord(prompt_name="ingest", prompt_version=1, trace_id=t)
        )
        for t in _trace_ids(scale.unary)
    ]
    echo_unary = echo.unary(requests)
    real_unary = real.unary(requests)
    figures["unary_usage"] = {
        "value": real_unary["rps"], "baseline": echo_unary["rps"], "unit": "requests/s",
        "p50_ms": real_unary["p50_ms"], "p99_ms": real_unary["p99_ms"],
        "baseline_p50_ms": echo_unary["p50_ms"], "baseline_p99_ms": echo_unary["p99_ms"],
    }
    for figure in figures.values():
        figure["ratio"] = figure["value"] / figure["baseline"]
    return figures


def _otlp_export(rng: random.Random, name: str, spans: int, linked: int) -> tuple[bytes, list]:
    """An OTLP export of `spans` child spans of `linked` traces, one span of
    each trace linking it to a version of `name`, the rest carrying the
    attributes of an instrumented HTTP/database/LLM stack and nothing for
    promptgauge; and the links as UsageRecords."""
    def kv(key, **value):
        return common_pb2.KeyValue(key=key, value=common_pb2.AnyValue(**value))

    noise = [kv("http.request.method", string_value="POST"), kv("http.route", string_value="/v1/chat"),
             kv("db.system", string_value="postgresql"), kv("server.port", int_value=5432),
             kv("gen_ai.request.model", string_value="demo-model"), kv("retry", bool_value=False)]
    out, records, start = [], [], time.time_ns()
    traces = [rng.randbytes(16) for _ in range(linked)]
    for i in range(spans):
        t = traces[i % linked]
        span = trace_pb2.Span(trace_id=t, span_id=rng.randbytes(8), parent_span_id=rng.randbytes(8),
                              name="step", start_time_unix_nano=start, end_time_unix_nano=start + 1000)
        if i < linked:
            version = 1 + i % 2
            span.attributes.extend([kv("promptgauge.prompt.name", string_value=name),
                                    kv("promptgauge.prompt.version", int_value=version)])
            records.append(analytics_pb2.UsageRecord(prompt_name=name, prompt_version=version,
                                                     trace_id=t.hex(), span_id=span.span_id.hex()))
        else:
            span.attributes.extend(noise)
        out.append(span)
    request = trace_service_pb2.ExportTraceServiceRequest(
        resource_spans=[trace_pb2.ResourceSpans(scope_spans=[trace_pb2.ScopeSpans(spans=out)])]
    )
    return request.SerializeToString(), records


def measure_otlp(rng, real: Driver, echo: Driver, target: str, key: str, scale: Scale) -> dict:
    """(g) An OTLP export of 10,000 spans, 1% of them links: against the same
    export sent to the echo (gRPC's transport and the parse, nothing mapped or
    stored), the same links alone by StreamUsage (one message), and an export
    of those 100 spans alone. Each call with new traces; medians."""
    _create_prompt(target, key, "otlp", 2)
    kinds = ("export", "echo_export", "export_links_only", "stream_usage")
    timings: dict[str, list[float]] = {kind: [] for kind in kinds}

    def timed(kind: str, call) -> object:
        t = time.perf_counter()
        response = call()
        timings[kind].append(time.perf_counter() - t)
        return response

    for _ in range(scale.otlp_calls):
        for kind, spans in (("export", OTLP_SPANS), ("export_links_only", OTLP_LINKED)):
            request = trace_service_pb2.ExportTraceServiceRequest.FromString(
                _otlp_export(rng, "otlp", spans, OTLP_LINKED)[0]
            )
            response = timed(kind, lambda r=request: real.traces.Export(r, metadata=real.metadata))
            if response.HasField("partial_success"):
                raise RuntimeError(f"Export: expected every span stored, got {response.partial_success}")
            if kind == "export":
                timed("echo_export", lambda r=request: echo.traces.Export(r, timeout=600))
        _, records = _otlp_export(rng, "otlp", OTLP_LINKED, OTLP_LINKED)
        messages = [analytics_pb2.StreamUsageRequest(records=records)]
        timed("stream_usage", lambda m=messages: real.stream("StreamUsage", m, OTLP_LINKED))
    figures: dict = {f"{kind}_ms": _percentile(values, 0.5) * 1e3 for kind, values in timings.items()}
    figures["export_bytes"] = len(_otlp_export(rng, "otlp", OTLP_SPANS, OTLP_LINKED)[0])
    figures["calls"] = scale.otlp_calls
    # Every link stored, once: new traces for each export and each stream.
    _, response = real.compare("otlp", 1)
    stored = sum(v.total_traces for v in response.versions)
    if stored != 3 * OTLP_LINKED * scale.otlp_calls:
        raise RuntimeError(f"(g): expected {3 * OTLP_LINKED * scale.otlp_calls} traces linked, got {stored}")
    return figures


def measure_compare(rng, url: str, account_id: int, real: Driver, target: str, key: str,
                    scale: Scale) -> dict:
    """(d) ComparePromptVersions of a 10-version prompt at each number of observations.

    All but the last 10k observations are bulk-loaded (the server's rows, set-wise)
    and folded by the server's own Analytics.fold; the last 10k come through the
    server's streams, so the tails after the checkpoints are whatever ingestion
    leaves, as in production."""
    from promptgauge.server import storage
    from promptgauge.server.analytics import Analytics

    storage.open_database(url, max_connections=2)
    results: dict = {}
    try:
        for observations in scale.observations:
            name = f"compare-{observations}"
            _create_prompt(target, key, name, VERSIONS)
            streamed_traces = min(observations, 10_000) // 2
            bulk_traces = observations // 2 - streamed_traces
            raw = rawdb.Raw(url)
            try:
                (prompt_id,) = raw.one(
                    "SELECT id FROM prompt WHERE account_id = {p} AND name = {p}", (account_id, name)
                )
                version_ids = []
                for v in range(1, VERSIONS + 1):
                    (vid,) = raw.one(
                        "SELECT id FROM prompt_version WHERE prompt_id = {p} AND version = {p}",
                        (prompt_id, v),
                    )
                    version_ids.append(vid)
                bulk = _outcomes(rng, _trace_ids(bulk_traces))
                load_start = time.perf_counter()
                rawdb.bulk_load(raw, account_id, version_ids, bulk)
            finally:
                raw.close()
            analytics = Analytics(storage.store())
            with storage.db.connection_context():
                for vid in version_ids:
                    while analytics.fold(vid):
                        pass
            traces = _trace_ids(streamed_traces)
            streamed = _outcomes(rng, traces)
            real.stream("StreamUsage", _usage_messages(name, VERSIONS, traces, MESSAGE_RECORDS), len(traces))
            real.stream("StreamTraceOutcomes", _outcome_messages(streamed, MESSAGE_RECORDS), len(traces))
            load_seconds = time.perf_counter() - load_start
            latency, response = real.compare(name, scale.compare_calls)
            # The server's p95 against the exact one, per version (bulk rows go
            # to versions in turn; streamed ones by index, likewise).
            by_version: dict[int, list[float]] = {v: [] for v in range(1, VERSIONS + 1)}
            for i, row in enumerate(bulk):
                by_version[1 + i % VERSIONS].append(row[3])
            for i, row in enumerate(streamed):
                by_version[1 + i % VERSIONS].append(row[3])
            errors = [
                abs(m.p95_latency_ms / _percentile(by_version[m.version], 0.95) - 1)
                for m in response.versions
            ]
            total = sum(m.total_traces for m in response.versions)
            if total != observations // 2:
                raise RuntimeError(f"{name}: the comparison counts {total} traces, not {observations // 2}")
            # The same over the week just past: the bulk runs ended in it, the
            # streamed ones now. Its bounds are not on the hour, so both edge
            # hours are read from the rows.
            week = analytics_pb2.ComparePromptVersionsRequest(name=name)
            week.end_time.GetCurrentTime()
            week.start_time.FromSeconds(week.end_time.seconds - 7 * 86_400)
            week.start_time.nanos = week.end_time.nanos
            # Fewer calls: a windowed compare merges the week's hourly sketches.
            windowed, in_week = real.compare(name, max(10, scale.compare_calls // 10), week)
            counted = sum(m.total_traces for m in in_week.versions)
            if counted != observations // 2:
                raise RuntimeError(f"{name}: the week counts {counted} traces, not {observations // 2}")
            week_errors = [
                abs(m.p95_latency_ms / _percentile(by_version[m.version], 0.95) - 1) for m in in_week.versions
            ]
            results[str(observations)] = {
                **latency, "load_seconds": load_seconds, "p95_max_rel_error": max(errors),
                "total_traces": total,
                "week": {**windowed, "p95_max_rel_error": max(week_errors)},
            }
    finally:
        storage.db.close_all()
    first, last = str(scale.observations[0]), str(scale.observations[-1])
    results["p99_growth"] = results[last]["p99_ms"] / results[first]["p99_ms"]
    return results


WATCHERS = 100


def _cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure_watch(target: str, key: str, watchers: int, pid: int, idle_seconds: float = 5.0) -> dict:
    """(i) `watchers` WatchComparison streams of one request: how soon each gets
    its first message, how soon an outcome reaches them all, and the server's
    CPU while they all watch with nothing new (one shared computation a
    second, not one per watcher)."""
    from promptgauge.client import PromptGaugeClient

    name = "watched"
    _create_prompt(target, key, name, 2)
    with PromptGaugeClient(target, key) as pg:
        firsts: list[float] = []
        updates: list[float] = []
        lock = threading.Lock()
        first_done = threading.Barrier(watchers + 1)
        sent_at: list[float] = []
        streams = []

        def watch():
            started = time.perf_counter()
            stream = pg.watch_comparison(name, analytics_pb2.COMPARISON_VIEW_BASIC, timeout=600)
            with lock:
                streams.append(stream)
            next(stream)
            with lock:
                firsts.append(time.perf_counter() - started)
            first_done.wait()
            for response in stream:
                if sum(m.total_traces for m in response.versions) > 0:
                    with lock:
                        updates.append(time.perf_counter() - sent_at[0])
                    break

        threads = [threading.Thread(target=watch, daemon=True) for _ in range(watchers)]
        for t in threads:
            t.start()
        first_done.wait()
        trace = secrets.token_hex(16)
        sent_at.append(time.perf_counter())
        pg.record_usage(name, 1, trace)
        pg.record_trace_outcome(trace, success=True, duration_ms=10.0)
        for t in threads:
            t.join(timeout=60)
        # Every stream still open, nothing new: what does watching cost?
        cpu = _cpu_seconds(pid)
        time.sleep(idle_seconds)  # a measuring period, not a wait for state
        idle_cpu = (_cpu_seconds(pid) - cpu) / idle_seconds
        for stream in streams:
            stream.close()
    if len(updates) != watchers:
        raise RuntimeError(f"WatchComparison: {len(updates)} of {watchers} watchers saw the update")
    return {
        "watchers": watchers,
        "first_p99_ms": _percentile(firsts, 0.99) * 1e3,
        "update_all_ms": max(updates) * 1e3,
        "idle_cpu_percent": idle_cpu * 100,
    }


def measure_accuracy(n: int) -> dict:
    """(e) p95 and p99 from the sketch, folded as checkpoints fold, against exact values."""
    from promptgauge.server.analytics import FOLD_AT
    from promptgauge.server.sketch import LatencySketch

    rng = random.Random(20240611)
    out = {}
    for shape in ("lognormal", "bimodal"):
        values = _durations(rng, n, shape)
        tail = (n // 2) % FOLD_AT or 1  # some values left unfolded, as a comparison sees them
        folded, rest = values[: n - tail], values[n - tail :]
        sketch = LatencySketch()
        start = time.perf_counter()
        for first in range(0, len(folded), FOLD_AT):
            sketch = LatencySketch.from_bytes(sketch.to_bytes()).add(folded[first : first + FOLD_AT])
        fold_seconds = time.perf_counter() - start
        ordered = sorted(values)
        out[shape] = {
            "values": n,
            "centroids": len(sketch.centroids),
            "fold_seconds": fold_seconds,
            **{
                f"p{int(q * 100)}_rel_error": abs(sketch.quantile(q, rest) / _percentile(ordered, q) - 1)
                for q in (0.95, 0.99)
            },
        }
    return out


def run_backend(backend: str, scale: Scale, pg_url: str, workdir: Path, seed: int) -> dict:
    rng = random.Random(seed)
    with (
        _database(backend, workdir, pg_url, "server") as url,
        _database(backend, workdir, pg_url, "raw") as url_raw,
    ):
        key, account_id = _new_account(url)
        with _serve(url) as (proc, target), _echo() as (echo_proc, echo_target):
            real, echo = Driver(target, key), Driver(echo_target)
            try:
                figures = measure_ingest(rng, url_raw, real, echo, target, key, scale)
                figures["compare"] = measure_compare(rng, url, account_id, real, target, key, scale)
                figures["otlp"] = measure_otlp(rng, real, echo, target, key, scale)
                figures["watch"] = measure_watch(target, key, WATCHERS, proc.pid)
            finally:
                real.close()
                echo.close()
            figures["server_peak_rss_mb"] = _peak_rss_mb(proc.pid)
            figures["echo_peak_rss_mb"] = _peak_rss_mb(echo_proc.pid)
    return figures


# -- report ------------------------------------------------------------------------


def _verdicts(result: dict, scale_name: str) -> list[tuple[str, str, str, str, str, bool]]:
    """Table rows: figure, value, baseline, ratio or limit, target, met."""
    rows = []
    names = {
        "stream_usage_500": "(a) StreamUsage, 500/message",
        "stream_outcomes_500": "(a) StreamTraceOutcomes, 500/message",
        "stream_usage_1": "(b) StreamUsage, 1/message",
        "stream_outcomes_1": "(b) StreamTraceOutcomes, 1/message",
        "unary_usage": "(c) RecordUsage unary",
    }
    for key, label in names.items():
        f = result[key]
        _, bound, _ = TARGETS[key]
        unit = "req/s" if key == "unary_usage" else "rec/s"
        rows.append((label, f"{f['value']:,.0f} {unit}", f"{f['baseline']:,.0f} {unit}",
                     f"{f['ratio']:.2f}", f">= {bound}", f["ratio"] >= bound))
    u = result["unary_usage"]
    rows.append(("(c) RecordUsage p50 / p99", f"{u['p50_ms']:.2f} / {u['p99_ms']:.2f} ms",
                 f"{u['baseline_p50_ms']:.2f} / {u['baseline_p99_ms']:.2f} ms",
                 f"{u['p99_ms'] / u['baseline_p99_ms']:.2f}", "", True))
    compare = result["compare"]
    scales = [k for k in compare if k.isdigit()]
    for n in scales:
        c = compare[n]
        rows.append((f"(d) Compare, {int(n):,} observations", f"p50 {c['p50_ms']:.2f} ms",
                     f"p99 {c['p99_ms']:.2f} ms", "", "", True))
    for n in scales:
        w = compare[n].get("week")
        if w:
            rows.append((f"(d) Compare, one-week window, {int(n):,} observations",
                         f"p50 {w['p50_ms']:.2f} ms",
                         f"p99 {w['p99_ms']:.2f} ms", "", "< 25 ms", w["p99_ms"] < 25))
    w = compare[scales[-1]].get("week")
    if w:
        rows.append((f"(e) one-week window p95 error at {int(scales[-1]):,}", f"{w['p95_max_rel_error']:.3%}",
                     "", "", "<= 0.5%", w["p95_max_rel_error"] <= 0.005))
    if "watch" in result:
        v = result["watch"]
        rows.append((f"(i) WatchComparison, {v['watchers']} watchers: first message p99",
                     f"{v['first_p99_ms']:.1f} ms", "", "", "", True))
        rows.append((f"(i) WatchComparison, {v['watchers']} watchers: an update reaches all",
                     f"{v['update_all_ms']:.0f} ms", "", "", "<= 1,500 ms", v["update_all_ms"] <= 1500))
        rows.append((f"(i) WatchComparison, {v['watchers']} watchers idle: server CPU",
                     f"{v['idle_cpu_percent']:.1f}%", "", "", "", True))
    last = compare[scales[-1]]
    rows.append((f"(d) p99 at {int(scales[-1]):,} / at {int(scales[0]):,}", f"{compare['p99_growth']:.2f}",
                 "", "", "<= 2", compare["p99_growth"] <= 2))
    rows.append((f"(d) p99 at {int(scales[-1]):,}", f"{last['p99_ms']:.2f} ms", "", "", "< 25 ms",
                 last["p99_ms"] < 25))
    rows.append((f"(e) server p95 error at {int(scales[-1]):,} (max over versions)",
                 f"{last['p95_max_rel_error']:.3%}", "", "", "<= 0.5%", last["p95_max_rel_error"] <= 0.005))
    g = result["otlp"]
    rows.append((f"(g) OTLP Export, {OTLP_SPANS:,} spans, {OTLP_LINKED / OTLP_SPANS:.0%} links",
                 f"{g['export_ms']:.1f} ms", f"echo {g['echo_export_ms']:.1f} ms",
                 f"{g['export_ms'] / g['echo_export_ms']:.2f}", "", True))
    rows.append((f"(g) the same {OTLP_LINKED} links: StreamUsage / Export alone",
                 f"{g['stream_usage_ms']:.1f} ms", f"{g['export_links_only_ms']:.1f} ms", "", "", True))
    rows.append(("(f) server peak RSS", f"{result['server_peak_rss_mb']:.0f} MB",
                 f"echo {result['echo_peak_rss_mb']:.0f} MB", "", "< 300 MB",
                 result["server_peak_rss_mb"] < 300))
    return rows


def format_table(results: dict) -> str:
    lines = [f"promptgauge benchmark, scale {results['scale']}, {results['machine']}"]
    header = ("figure", "value", "baseline", "ratio", "target", "met")
    for backend, result in results["backends"].items():
        rows = [header, *((*r[:5], "yes" if r[5] else "NO") if r[4] else (*r[:5], "") for r in
                          _verdicts(result, results["scale"]))]
        widths = [max(len(str(r[i])) for r in rows) for i in range(len(header))]
        lines += ["", f"[{backend}]"]
        lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines += ["", "(e) sketch accuracy, folded in checkpoint-sized chunks plus an unfolded tail"]
    for shape, a in results["accuracy"].items():
        met95 = "yes" if a["p95_rel_error"] <= 0.005 else "NO"
        met99 = "yes" if a["p99_rel_error"] <= 0.01 else "NO"
        lines.append(
            f"  {shape:<9} {a['values']:,} values, {a['centroids']} centroids: "
            f"p95 error {a['p95_rel_error']:.3%} (<= 0.5%: {met95}), "
            f"p99 error {a['p99_rel_error']:.3%} (<= 1%: {met99}), "
            f"fold {a['fold_seconds'] / a['values'] * 1e6:.1f} µs a duration"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="full")
    parser.add_argument("--backend", choices=("sqlite", "postgres", "all", "none"), default="all",
                        help="none: only (e), the sketch's accuracy and fold cost, with no server")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("PROMPTGAUGE_BENCH_DATABASE_URL", DEFAULT_PG_URL),
        help="a PostgreSQL database the benchmark may create (and drop) schemas in",
    )
    parser.add_argument("--out", type=Path, help="write the figures here as JSON "
                        "(default bench-results/<scale>-<time>.json)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    scale = SCALES[args.scale]
    backends = {"all": ["sqlite", "postgres"], "none": []}.get(args.backend, [args.backend])
    if "postgres" in backends and not postgres_answers(args.postgres_url):
        if args.backend == "postgres":
            print(f"PostgreSQL does not answer at {args.postgres_url}", file=sys.stderr)
            return 2
        print(f"PostgreSQL does not answer at {args.postgres_url}: SQLite only", file=sys.stderr)
        backends.remove("postgres")
    results: dict = {
        "scale": args.scale,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "backends": {},
    }
    with tempfile.TemporaryDirectory(prefix="promptgauge-bench-") as tmp:
        for backend in backends:
            print(f"benchmarking {backend} ...", file=sys.stderr, flush=True)
            results["backends"][backend] = run_backend(
                backend, scale, args.postgres_url, Path(tmp), args.seed
            )
    print("sketch accuracy ...", file=sys.stderr, flush=True)
    results["accuracy"] = measure_accuracy(scale.accuracy)
    for result in results["backends"].values():
        result["targets_met"] = {row[0]: row[5] for row in _verdicts(result, args.scale) if row[4]}
    out = args.out or Path("bench-results") / f"{args.scale}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(format_table(results))
    print(f"\nfigures written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
