"""examples/otel-node/agent.js, a Node.js agent instrumented with OpenTelemetry
alone (@opentelemetry/sdk-trace-node, @opentelemetry/exporter-trace-otlp-grpc),
against a live server: the comparison a Python client reads is what the agent
says it did. (Token averages are checked once VersionMetrics has them, issue 15.)"""

import json
import os
import secrets
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import make_account

from promptgauge.client import PromptGaugeClient

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "otel-node"
NODE = shutil.which("node")

pytestmark = [
    pytest.mark.skipif(
        NODE is None,
        reason="node is not on PATH: the OpenTelemetry Node.js example is not run (needs Node.js 18.19+)",
    ),
    pytest.mark.skipif(
        not (EXAMPLE / "node_modules").is_dir(),
        reason="examples/otel-node/node_modules is missing: run npm ci in examples/otel-node",
    ),
]


def run_agent(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [NODE, "agent.js", *args], cwd=EXAMPLE, env={**os.environ, **env},
        capture_output=True, text=True, timeout=120,
    )


def test_the_otel_node_agent_feeds_the_comparison_exactly(server):
    key = make_account("otel-node")
    prompt = f"otel-node-{secrets.token_hex(4)}"
    with PromptGaugeClient(server.target, key) as pg:
        pg.create_prompt_version(prompt, "v1 {q}")
        pg.create_prompt_version(prompt, "v2 {q}")
        result = run_agent(
            "--prompt", prompt, "--runs", "40", "--seed", "16",
            env={"PROMPTGAUGE_TARGET": server.target, "PROMPTGAUGE_API_KEY": key},
        )
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        [runs] = [json.loads(line.removeprefix("runs ")) for line in lines if line.startswith("runs ")]
        [exports] = [line for line in lines if line.startswith("exports ")]
        assert exports.endswith(" failed 0") and exports != "exports 0 failed 0"
        stored = pg.compare_prompt_versions(prompt).versions

    assert [(m.version, m.total_traces) for m in stored] == [(1, 20), (2, 20)]
    for m in stored:
        did = runs[str(m.version)]
        n = did["runs"]
        assert m.success_rate == pytest.approx(1 - did["failures"] / n, rel=1e-12)
        assert m.avg_cost_usd == pytest.approx(sum(did["cost_usd"]) / n, rel=1e-12)
        assert m.avg_latency_ms == pytest.approx(sum(did["duration_ms"]) / n, rel=1e-12)
        # p95 of 20 lies between the 19th and 20th durations, however it interpolates.
        ordered = sorted(did["duration_ms"])
        assert ordered[-2] <= m.p95_latency_ms <= ordered[-1]
        assert m.avg_input_tokens == pytest.approx(sum(did["input_tokens"]) / n, rel=1e-12)
        assert m.avg_output_tokens == pytest.approx(sum(did["output_tokens"]) / n, rel=1e-12)


def test_the_otel_node_agent_without_a_valid_key_fails_with_the_grpc_status(server):
    result = run_agent(
        "--prompt", "whatever", "--runs", "2",
        env={"PROMPTGAUGE_TARGET": server.target, "PROMPTGAUGE_API_KEY": "pgk_not-a-key"},
    )
    assert result.returncode == 1
    assert "export failed: 16 UNAUTHENTICATED" in result.stderr
    assert "exports 1 failed 1" in result.stdout


def test_the_otel_node_agent_refuses_bad_usage(server):
    result = run_agent("--runs", "2", env={"PROMPTGAUGE_TARGET": server.target, "PROMPTGAUGE_API_KEY": "k"})
    assert result.returncode == 2
    assert "--prompt is required" in result.stderr
