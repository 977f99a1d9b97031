"""Server reflection, proven with a client that has no protos: grpc-requests learns
the services from the server and calls them, in a process that never loads
promptgauge's generated code (tests/reflection_caller.py)."""

import json
import secrets
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from conftest import make_account
from google.protobuf.json_format import MessageToDict

from promptgauge.client import PromptGaugeClient

CALLER = Path(__file__).with_name("reflection_caller.py")
PROMPTS = "promptgauge.v1.PromptService"
ANALYTICS = "promptgauge.v1.AnalyticsService"


def call_by_reflection(target: str, calls: list[dict]) -> dict:
    result = subprocess.run(
        [sys.executable, str(CALLER), target],
        input=json.dumps({"calls": calls}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_a_client_without_protos_lists_and_calls_every_service(server):
    key = make_account("reflection")
    auth = [["authorization", f"Bearer {key}"]]
    name = f"reflected-{secrets.token_hex(4)}"
    t1, t2, t3 = (uuid.uuid4().hex for _ in range(3))

    def call(service, method, **request):
        return {"service": service, "method": method, "metadata": auth, **request}

    out = call_by_reflection(server.target, [
        call(PROMPTS, "CreatePromptVersion", request={"name": name, "template_text": "Classify: {ticket}"}),
        call(PROMPTS, "CreatePromptVersion", request={
            "name": name, "template_text": "Think, then classify: {ticket}", "parent_version": 1,
            "activate": False,
        }),
        call(PROMPTS, "RenderPrompt", request={
            "name": name, "version": 2, "variables": {"ticket": "refund?"},
        }),
        call(PROMPTS, "ListPromptVersions", request={"name": name}),
        call(ANALYTICS, "StreamUsage", requests=[
            {"records": [{"prompt_name": name, "prompt_version": 1, "trace_id": t1},
                         {"prompt_name": name, "prompt_version": 2, "trace_id": t2}]},
            {"records": [{"prompt_name": name, "prompt_version": 2, "trace_id": t3}]},
        ]),
        call(ANALYTICS, "StreamTraceOutcomes", requests=[{"outcomes": [
            {"trace_id": t1, "success": True, "total_cost_usd": 0.002, "duration_ms": 1500},
            {"trace_id": t2, "success": False, "total_cost_usd": 0.004, "duration_ms": 2500},
            {"trace_id": t3, "success": True, "total_cost_usd": 0.006, "duration_ms": 3500},
        ]}]),
        call(ANALYTICS, "ComparePromptVersions", request={"name": name}),
        {"service": ANALYTICS, "method": "ComparePromptVersions", "request": {"name": name}},
    ])

    assert out["promptgauge_modules"] == []
    assert {PROMPTS, ANALYTICS, "grpc.health.v1.Health"} <= set(out["services"])
    assert not [r for r in out["results"][:-1] if "code" in r], out["results"]
    created, candidate, rendered, listed, usage, outcomes, compared = (
        r["response"] for r in out["results"][:-1]
    )
    assert created["prompt_version"]["version"] == 1
    assert created["prompt_version"]["is_active"] is True
    assert created["prompt_version"]["variables"] == ["ticket"]
    assert candidate["prompt_version"]["parent_version"] == 1
    assert candidate["prompt_version"].get("is_active", False) is False
    assert rendered == {"text": "Think, then classify: refund?", "version": 2}
    assert [v["version"] for v in listed["prompt_versions"]] == [2, 1]
    # JSON carries int64 as strings and leaves zero counters out.
    assert usage == {"summary": {"received": "3", "recorded": "3"}}
    assert outcomes == {"summary": {"received": "3", "recorded": "3"}}

    v1, v2 = compared["versions"]
    assert (v1["version"], v1["total_traces"], v1["success_rate"]) == (1, "1", 1.0)
    assert (v2["version"], v2["total_traces"], v2["success_rate"]) == (2, "2", 0.5)
    assert v2["avg_cost_usd"] == pytest.approx(0.005)
    assert v2["avg_latency_ms"] == pytest.approx(3000)
    with PromptGaugeClient(server.target, key) as pg:
        assert compared == MessageToDict(pg.compare_prompt_versions(name), preserving_proto_field_name=True)

    assert out["results"][-1]["code"] == "UNAUTHENTICATED"
