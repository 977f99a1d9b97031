"""One structured log line per RPC and Prometheus metrics, read from a real
`promptgauge serve` process; neither ever carries a key or a template."""

import json
import urllib.request
import uuid

import grpc
import pytest
from conftest import create_account, serve_process, trace_outcome, usage_record
from prometheus_client.parser import text_string_to_metric_families

from promptgauge.client import PromptGaugeClient, PromptGaugeError
from promptgauge.client.client import NO_RETRY

TEMPLATE = "Confidential template TPL-7f3a {q}"
BAD_KEY = "pgk_this-key-does-not-exist-0123456789"


def _scrape(port: int) -> dict[tuple, float]:
    """Every sample of /metrics, by (name, sorted labels)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A server with metrics on, some traffic (good and bad), its metrics, and
    then its whole log once it has stopped."""
    url = f"sqlite:///{tmp_path_factory.mktemp('obs') / 'obs.db'}"
    key = create_account(url)
    with serve_process(url, "--metrics-listen", "127.0.0.1:0") as (proc, target):
        metrics_port = proc.metrics_port
        with PromptGaugeClient(target, key, retry=NO_RETRY) as pg:
            pg.create_prompt_version("p", TEMPLATE)
            traces = [str(uuid.uuid4()) for _ in range(5)]
            pg.stream_usage([[usage_record("p", 1, t) for t in traces] + [usage_record("p", 9, traces[0])]])
            pg.stream_trace_outcomes([[trace_outcome(t, True, 0.5, 10.0) for t in traces]])
            pg.record_usage("p", 1, traces[0])
            with pytest.raises(PromptGaugeError):
                pg.get_prompt_version("p", 42)
            pg.compare_prompt_versions("p")
        with PromptGaugeClient(target, BAD_KEY, retry=NO_RETRY) as stranger, pytest.raises(PromptGaugeError):
            stranger.list_prompts()
        metrics = _scrape(metrics_port)
        proc.terminate()
        assert proc.wait(timeout=30) == 0
    lines = [json.loads(line) for line in proc.output if line.startswith("{")]
    return key, metrics, lines, "".join(proc.output)


def test_one_log_line_per_rpc_with_method_code_duration_and_account(run):
    _, _, lines, _ = run
    rpcs = [entry for entry in lines if entry["logger"] == "promptgauge.rpc" and "code" in entry]
    assert [(e["method"].rsplit("/", 1)[1], e["code"]) for e in rpcs] == [
        ("CreatePromptVersion", "OK"),
        ("StreamUsage", "OK"),
        ("StreamTraceOutcomes", "OK"),
        ("RecordUsage", "OK"),
        ("GetPromptVersion", "NOT_FOUND"),
        ("ComparePromptVersions", "OK"),
        ("ListPrompts", "UNAUTHENTICATED"),
    ]
    for entry in rpcs:
        assert entry["level"] == "INFO" and entry["duration_ms"] >= 0 and entry["peer"]
    assert {e["account_id"] for e in rpcs[:-1]} == {1}
    assert rpcs[-1]["account_id"] is None  # no valid key, no account


def test_logs_never_carry_a_key_or_a_template(run):
    key, _, _, output = run
    assert key not in output and key.removeprefix("pgk_") not in output
    assert BAD_KEY not in output and BAD_KEY.removeprefix("pgk_") not in output
    assert "TPL-7f3a" not in output


def test_metrics_count_rpcs_by_method_and_code_with_latency_histograms(run):
    _, metrics, _, _ = run
    service = "promptgauge.v1.PromptService"

    def rpcs(method: str, code: str, svc: str = service) -> float:
        labels = (("code", code), ("method", method), ("service", svc))
        return metrics.get(("promptgauge_rpcs_total", labels), 0)

    assert rpcs("CreatePromptVersion", "OK") == 1
    assert rpcs("GetPromptVersion", "NOT_FOUND") == 1
    assert rpcs("ListPrompts", "UNAUTHENTICATED") == 1
    assert rpcs("StreamUsage", "OK", "promptgauge.v1.AnalyticsService") == 1
    count = metrics[(
        "promptgauge_rpc_duration_seconds_count",
        (("code", "OK"), ("method", "CreatePromptVersion"), ("service", service)),
    )]
    assert count == 1
    assert any(name == "promptgauge_rpc_duration_seconds_bucket" for name, _ in metrics)


def test_metrics_count_records_by_result_and_report_checkpoint_lag(run):
    _, metrics, _, _ = run

    def records(kind: str, result: str) -> float:
        return metrics.get(("promptgauge_records_total", (("kind", kind), ("result", result))), 0)

    assert records("usage", "recorded") == 5
    assert records("usage", "duplicate") == 1  # the unary repeat of a streamed link
    assert records("usage", "rejected") == 1  # version 9 does not exist
    assert records("outcome", "recorded") == 5
    # 5 linked + 5 outcome observations, fewer than a fold needs: all waiting.
    assert metrics[("promptgauge_checkpoint_lag_observations", (("aggregate", "sum"),))] == 10
    assert metrics[("promptgauge_checkpoint_lag_observations", (("aggregate", "max"),))] == 10


def test_metrics_are_off_unless_asked_for(tmp_path):
    url = f"sqlite:///{tmp_path / 'quiet.db'}"
    with serve_process(url) as (proc, target):
        with grpc.insecure_channel(target) as channel:
            grpc.channel_ready_future(channel).result(timeout=10)
        proc.terminate()
        proc.wait(timeout=30)
    assert "metrics on" not in "".join(proc.output)
