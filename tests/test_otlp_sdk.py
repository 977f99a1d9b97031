"""The real thing: an agent instrumented with the OpenTelemetry Python SDK and
its OTLP/gRPC exporter (tests/otel_agent.py, a process of its own, nothing of
promptgauge's), pointed at the server with the key in its headers. The
comparison then shows exactly what the agent did; on SQLite and PostgreSQL."""

import json
import random
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import comparison_snapshot, make_account

from promptgauge.client import PromptGaugeClient

AGENT = Path(__file__).resolve().parent / "otel_agent.py"
TOKEN_FIELDS = ("avg_input_tokens", "avg_output_tokens")
NOTHING = [(1, 0, None, None, None, None), (2, 0, None, None, None, None)]


def run_agent(target: str, key: str, plan: dict) -> tuple[subprocess.CompletedProcess, dict | None]:
    # A bare environment: OTEL_* variables or a gRPC proxy of the machine's
    # must not reach the agent's SDK and exporter.
    done = subprocess.run(
        [sys.executable, str(AGENT), target],
        input=json.dumps(plan), env={"PROMPTGAUGE_API_KEY": key, "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=120,
    )
    printed = json.loads(done.stdout) if done.stdout.strip() else None
    return done, printed


def plan_runs(rng: random.Random, prompt: str, version: int, n: int, fail_rate: float) -> list[dict]:
    """n runs of a version; the two longest take equally long, so that p95
    (between the 19th and 20th of 20) is one value under any interpolation."""
    durations = [rng.randint(50, 2000) for _ in range(n)]
    durations[durations.index(min(durations))] = max(durations)
    return [
        {
            "prompt": prompt, "version": version, "duration_ms": d, "ok": rng.random() >= fail_rate,
            "how": "attribute" if i % 5 == 4 else "status", "cost_usd": round(rng.uniform(0.001, 0.05), 4),
            "input_tokens": rng.randint(100, 4000), "output_tokens": rng.randint(10, 800),
            "root_ends_first": i % 2 == 1,
        }
        for i, d in enumerate(durations)
    ]


def expected(runs: list[dict]) -> tuple:
    """A comparison_snapshot row of these runs, from the plan alone."""
    n = len(runs)
    ordered = sorted(r["duration_ms"] for r in runs)
    assert ordered[-1] == ordered[-2]
    return (
        runs[0]["version"], n,
        pytest.approx(sum(r["ok"] for r in runs) / n, rel=1e-12),
        pytest.approx(sum(r["cost_usd"] for r in runs) / n, rel=1e-12),
        pytest.approx(sum(r["duration_ms"] for r in runs) / n, rel=1e-12),
        float(ordered[-1]),
    )


@pytest.fixture
def agent_prompt(client) -> str:
    name = f"sdk-{secrets.token_hex(4)}"
    client.create_prompt_version(name, "Answer as v1: {q}")
    client.create_prompt_version(name, "Answer as v2: {q}")
    return name


def test_an_sdk_agent_feeds_the_comparison_exactly_and_re_exports_change_nothing(
    server, client, api_key, agent_prompt
):
    rng = random.Random(16)
    v1 = plan_runs(rng, agent_prompt, 1, 20, 0.3)
    v2 = plan_runs(rng, agent_prompt, 2, 20, 0.1)
    runs = [r for pair in zip(v1, v2, strict=True) for r in pair]
    # Small batches, each sent twice: links and outcomes of a trace arrive in
    # different exports, in both orders, and every export is repeated.
    done, printed = run_agent(
        server.target, api_key,
        {"runs": runs, "noise_traces": 15, "batch_size": 7, "export_twice": True},
    )
    assert done.returncode == 0, done.stderr
    assert printed["failed"] == 0 and printed["exports"] >= 2 * (3 * len(runs) + 30) // 7
    assert len(set(printed["traces"])) == len(runs)

    assert comparison_snapshot(client, agent_prompt) == [expected(v1), expected(v2)]


def test_an_sdk_agents_tokens_are_averaged_per_version(server, client, api_key, agent_prompt):
    rng = random.Random(15)
    v1, v2 = plan_runs(rng, agent_prompt, 1, 10, 0.2), plan_runs(rng, agent_prompt, 2, 10, 0.2)
    done, _ = run_agent(server.target, api_key, {"runs": v1 + v2, "batch_size": 5})
    assert done.returncode == 0, done.stderr
    stored = client.compare_prompt_versions(agent_prompt).versions
    for m, version_runs in zip(stored, (v1, v2), strict=True):
        for field, key in zip(TOKEN_FIELDS, ("input_tokens", "output_tokens"), strict=True):
            mean = sum(r[key] for r in version_runs) / len(version_runs)
            assert getattr(m, field) == pytest.approx(mean, rel=1e-12), field


def test_an_sdk_agent_whose_spans_name_a_missing_version_stores_the_rest(
    server, client, api_key, agent_prompt
):
    rng = random.Random(7)
    good = plan_runs(rng, agent_prompt, 1, 20, 0.25)
    missing = plan_runs(rng, agent_prompt, 9, 5, 0.0)
    done, printed = run_agent(server.target, api_key, {"runs": good + missing, "batch_size": 64})
    # Partial success is success to an exporter: nothing is retried.
    assert done.returncode == 0, done.stderr
    assert printed["failed"] == 0
    assert comparison_snapshot(client, agent_prompt) == [expected(good), (2, 0, None, None, None, None)]


def test_an_sdk_agent_without_a_valid_key_is_refused_and_stores_nothing(server, client, agent_prompt):
    rng = random.Random(3)
    runs = plan_runs(rng, agent_prompt, 1, 3, 0.0)
    done, printed = run_agent(server.target, "pgk_" + secrets.token_urlsafe(32), {"runs": runs})
    assert done.returncode == 1
    assert printed["failed"] == printed["exports"] >= 1
    assert "UNAUTHENTICATED" in done.stderr
    assert comparison_snapshot(client, agent_prompt) == NOTHING


def test_an_sdk_agent_of_another_account_does_not_reach_this_ones_prompt(server, client, agent_prompt):
    stranger = make_account("stranger")
    runs = plan_runs(random.Random(5), agent_prompt, 1, 3, 0.0)
    done, _ = run_agent(server.target, stranger, {"runs": runs})
    assert done.returncode == 0, done.stderr
    assert comparison_snapshot(client, agent_prompt) == NOTHING
    with PromptGaugeClient(server.target, stranger) as theirs:
        assert [p.name for p in theirs.list_prompts().prompt_versions] == []
