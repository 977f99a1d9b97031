"""examples/node/agent.js, the Node.js caller built from protos/ alone, against a live server:
what it prints must be what the server stored, as a Python client sees it."""

import json
import os
import secrets
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import make_account

from promptgauge.client import PromptGaugeClient
from promptgauge.v1 import prompts_pb2

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "node"
NODE = shutil.which("node")

pytestmark = [
    pytest.mark.skipif(
        NODE is None, reason="node is not on PATH: the Node.js example is not run (needs Node.js 18 or later)"
    ),
    pytest.mark.skipif(
        not (EXAMPLE / "node_modules").is_dir(),
        reason="examples/node/node_modules is missing: run npm ci in examples/node",
    ),
]


def run_agent(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [NODE, "agent.js", *args],
        cwd=EXAMPLE,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def printed_comparison(stdout: str) -> dict:
    [line] = [line for line in stdout.splitlines() if line.startswith("comparison ")]
    return json.loads(line.removeprefix("comparison "))


def test_node_agent_registers_streams_and_prints_the_stored_comparison(server):
    key = make_account("node")
    prompt = f"node-{secrets.token_hex(4)}"
    result = run_agent(
        "--prompt", prompt, "--traces", "300", "--seed", "7",
        env={"PROMPTGAUGE_TARGET": server.target, "PROMPTGAUGE_API_KEY": key},
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert f"prompt {prompt}: registered v1 (active) and v2 (candidate)" in lines
    assert "usage: received=300 recorded=300 duplicates=0 rejected=0" in lines
    assert "outcomes: received=300 recorded=300 duplicates=0 rejected=0" in lines

    printed = printed_comparison(result.stdout)
    assert printed["name"] == prompt
    # 150 streamed runs each, and the agent's run on the active version.
    assert [(v["version"], v["total_traces"]) for v in printed["versions"]] == [(1, 151), (2, 150)]

    with PromptGaugeClient(server.target, key) as pg:
        assert pg.get_prompt_version(prompt).version == 1
        assert pg.get_prompt_version(prompt, 2).parent_version == 1
        stored = pg.compare_prompt_versions(prompt)
    assert len(stored.versions) == len(printed["versions"])
    for ours, theirs in zip(stored.versions, printed["versions"], strict=True):
        assert theirs["version"] == ours.version
        assert theirs["total_traces"] == ours.total_traces
        for field in ("success_rate", "avg_cost_usd", "avg_latency_ms", "p95_latency_ms"):
            assert ours.HasField(field), field
            assert theirs[field] == pytest.approx(getattr(ours, field), rel=1e-9), field

    # The agent it made resolves to the active version (v1), rendered, and
    # counts its one run for both the agent version and that prompt version.
    agent = f"{prompt}-agent"
    assert (f"agent {agent} 1.0.0: [classifier] {prompt} v1: You are a support classifier. "
            "Categorize this ticket: My invoice shows a double charge.") in lines
    [agent_line] = [line for line in lines if line.startswith("agent comparison ")]
    assert json.loads(agent_line.removeprefix("agent comparison ")) == {
        "agent": agent,
        "versions": [{"version": "1.0.0", "total_traces": 1, "success_rate": 1.0, "avg_latency_ms": 900.0}],
    }
    with PromptGaugeClient(server.target, key) as pg:
        assert pg.compare_agent_versions(agent).versions[0].total_traces == 1
        assert pg.get_agent_version(agent).config.model_config.model == "gpt-4o"

    # The table carries the same numbers for people.
    header = lines.index("VERSION  TRACES  SUCCESS  AVG COST USD  AVG LATENCY MS  P95 LATENCY MS")
    for row, ours in zip(lines[header + 1:header + 3], stored.versions, strict=True):
        cells = row.split()
        assert cells[:3] == [f"v{ours.version}", str(ours.total_traces), f"{100 * ours.success_rate:.1f}%"]


def test_node_agent_exits_non_zero_with_the_grpc_status(server):
    result = run_agent("--target", server.target, "--api-key", "pgk_not-a-key", env={})
    assert result.returncode == 1
    assert "CreatePromptVersion failed: UNAUTHENTICATED (16)" in result.stderr
    assert "comparison " not in result.stdout


def test_node_watcher_prints_a_promotion_as_it_happens(server):
    key = make_account("node")
    with PromptGaugeClient(server.target, key) as pg:
        pg.create_prompt_version("watched", "one")
        pg.create_prompt_version("watched", "two", activate=False)
        watcher = subprocess.Popen(
            [NODE, "watch.js", "--count", "1", "watched"], cwd=EXAMPLE, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env={**os.environ, "PROMPTGAUGE_TARGET": server.target, "PROMPTGAUGE_API_KEY": key},
        )
        try:
            assert watcher.stdout.readline().strip() == "watching watched v1"
            pg.activate_prompt_version("watched", 2)
            line = watcher.stdout.readline().strip()
            assert watcher.wait(timeout=30) == 0, watcher.stderr.read()
        finally:
            if watcher.poll() is None:
                watcher.kill()
                watcher.wait()
    activation = _history(server.target, key, "watched")[0]  # newest first
    assert activation.kind == prompts_pb2.EVENT_KIND_VERSION_ACTIVATED
    assert line == f"promoted watched v2 (was v1) by {activation.created_by}, sequence {activation.sequence}"


def _history(target: str, key: str, name: str):
    with PromptGaugeClient(target, key) as pg:
        return list(pg.iter_prompt_history(name))
