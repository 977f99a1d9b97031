"""`promptgauge agents ...` against a real server, on both backends: output,
--json (the RPC's response in protobuf's JSON mapping), and one line with
the right exit code for every failure, with nothing changed."""

import json

import pytest
import test_cli_prompts
from google.protobuf import json_format
from test_cli_prompts import _failed

from promptgauge.v1 import agents_pb2

# The fixtures of the prompts commands' tests: `run` a command, write a `template` file.
run, template = test_cli_prompts.run, test_cli_prompts.template

CONFIG = {
    "kind": "AGENT_KIND_CHAIN",
    "modelConfig": {"provider": "openai", "model": "gpt-4o"},
    "prompts": [
        {"promptName": "sys", "role": "system", "sortOrder": 0},
        {"promptName": "ask", "role": "user", "sortOrder": 1, "pinnedVersion": 1},
    ],
}


@pytest.fixture
def prompts(client):
    client.create_prompt_version("sys", "You help with {product}.")
    client.create_prompt_version("ask", "Answer: {question}")
    return client


def test_create_list_show_promote_and_resolve(run, prompts, template):
    config = template(json.dumps(CONFIG), "agent.json")
    code, out, _ = run(
        "agents", "create", "helper", "--config", config, "--version", "1.0.0", "--message", "first"
    )
    assert (code, out) == (0, "created helper 1.0.0 (current)\n")
    code, out, _ = run("agents", "create", "helper", "--config", config, "--no-promote")
    assert code == 0 and "created helper v2, staged (not current)" in out
    assert "promptgauge agents promote helper v2" in out
    code, out, _ = run("agents", "list")
    assert code == 0 and out.splitlines()[1].split()[:3] == ["helper", "1.0.0", "2"]
    code, out, _ = run("agents", "versions", "helper")
    lines = out.splitlines()
    assert (
        code == 0 and lines[1].split()[:2] == ["v2", "chain"] and lines[2].split()[:2] == ["1.0.0", "current"]
    )
    assert "sys (system), ask@1 (user)" in lines[2]
    code, out, _ = run("agents", "show", "helper")
    assert code == 0 and out.splitlines()[0] == "helper 1.0.0 (current)" and "message:  first" in out
    assert run("agents", "promote", "helper", "v2")[:2] == (0, "helper v2 is current\n")
    assert prompts.get_agent_version("helper").version == "v2"
    code, out, _ = run("agents", "resolve", "helper@1.0.0", "--var", "product=Acme", "--var", "question=why")
    assert code == 0
    assert out.splitlines() == [
        "helper 1.0.0",
        "[system] sys v1",
        "You help with Acme.",
        "[user] ask v1",
        "Answer: why",
    ]


def test_json_is_the_rpc_response(run, prompts, template):
    def parsed(args, message_type):
        code, out, _ = run(*args, "--json")
        assert code == 0
        return json_format.Parse(out, message_type())

    config = template(json.dumps(CONFIG), "agent.json")
    created = parsed(["agents", "create", "j", "--config", config], agents_pb2.CreateAgentVersionResponse)
    assert created.agent_version == prompts.get_agent_version("j")
    listed = parsed(["agents", "versions", "j"], agents_pb2.ListAgentVersionsResponse)
    assert list(listed.agent_versions) == list(prompts.list_agent_versions("j").agent_versions)
    agents = parsed(["agents", "list"], agents_pb2.ListAgentsResponse)
    assert [a.name for a in agents.agents] == ["j"]
    shown = parsed(["agents", "show", "j@v1"], agents_pb2.GetAgentVersionResponse)
    assert shown.agent_version.version == "v1"
    promoted = parsed(["agents", "promote", "j", "v1"], agents_pb2.PromoteAgentVersionResponse)
    assert promoted.agent_version.is_current
    resolved = parsed(["agents", "resolve", "j"], agents_pb2.ResolveAgentResponse)
    assert [p.prompt_version.name for p in resolved.prompts] == ["sys", "ask"]


@pytest.mark.parametrize(
    "args, code, words",
    [
        (["agents", "show", "nope"], 1, ["NOT_FOUND: agent 'nope' not found"]),
        (["agents", "show", "kept@9.9"], 1, ["NOT_FOUND", "no version '9.9'"]),
        (["agents", "promote", "kept", "9.9"], 1, ["NOT_FOUND"]),
        (["agents", "resolve", "kept", "--var", "product=x"], 2, ["INVALID_ARGUMENT", "question"]),
        (["agents", "resolve", "kept", "--trace-id", "nope"], 2, ["INVALID_ARGUMENT", "trace"]),
        (["agents", "versions", "nope"], 1, ["NOT_FOUND"]),
    ],
)
def test_a_refusal_is_one_line_and_changes_nothing(run, prompts, args, code, words):
    prompts.create_agent_version(
        "kept", json_format.ParseDict(CONFIG, agents_pb2.AgentConfig()), version="1.0"
    )
    _failed(run(*args), code, *words)
    assert [v.version for v in prompts.list_agent_versions("kept").agent_versions] == ["1.0"]
    assert prompts.get_agent_version("kept").version == "1.0"


def test_a_bad_label_is_a_usage_error_and_sends_nothing(run, capsys):
    with pytest.raises(SystemExit) as exit_:
        run("agents", "promote", "kept", "bad label")
    assert exit_.value.code == 2
    (line,) = capsys.readouterr().err.splitlines()[-1:]
    assert "not a version label" in line


@pytest.mark.parametrize(
    "config, code, words",
    [
        ({**CONFIG, "prompts": [{"promptName": "missing"}]}, 1, ["NOT_FOUND", "missing"]),
        ({**CONFIG, "kind": "AGENT_KIND_SIMPLE"}, 2, ["INVALID_ARGUMENT", "exactly one prompt"]),
        ({"knd": 1}, 2, ["--config", "AgentConfig"]),
    ],
)
def test_a_refused_config_creates_nothing(run, prompts, template, config, code, words):
    _failed(run("agents", "create", "a", "--config", template(json.dumps(config), "c.json")), code, *words)
    assert list(prompts.list_agents().agents) == []


def test_another_accounts_agent_is_not_found(run, other_client):
    other_client.create_prompt_version("p", "x")
    other_client.create_agent_version(
        "theirs",
        agents_pb2.AgentConfig(
            kind=agents_pb2.AGENT_KIND_SIMPLE, prompts=[agents_pb2.PromptLink(prompt_name="p")]
        ),
    )
    for args in (
        ["agents", "show", "theirs"],
        ["agents", "versions", "theirs"],
        ["agents", "promote", "theirs", "v1"],
        ["agents", "resolve", "theirs"],
    ):
        _failed(run(*args), 1, "NOT_FOUND", "agent 'theirs' not found")
    assert "theirs" not in run("agents", "list")[1]
