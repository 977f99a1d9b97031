"""AgentService through the real gRPC boundary, on both backends: versions,
promotion and rollback, links that follow a prompt's active version,
ResolveAgent's rendering and trace links, CompareAgentVersions, errors and
isolation between accounts."""

import threading
import uuid

import grpc
import pytest
from test_prompts import expect_error

from promptgauge.server import demo
from promptgauge.v1 import agents_pb2

INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND
EXISTS = grpc.StatusCode.ALREADY_EXISTS
FAILED = grpc.StatusCode.FAILED_PRECONDITION


def link(prompt_name, role="", sort_order=0, pinned_version=None) -> agents_pb2.PromptLink:
    return agents_pb2.PromptLink(
        prompt_name=prompt_name, role=role, sort_order=sort_order, pinned_version=pinned_version
    )


def chain(*links, model="gpt-4o") -> agents_pb2.AgentConfig:
    return agents_pb2.AgentConfig(
        kind=agents_pb2.AGENT_KIND_CHAIN,
        prompts=list(links),
        model_config={"provider": "openai", "model": model},
    )


def simple(prompt_name) -> agents_pb2.AgentConfig:
    return agents_pb2.AgentConfig(kind=agents_pb2.AGENT_KIND_SIMPLE, prompts=[link(prompt_name)])


@pytest.fixture
def prompts(client):
    client.create_prompt_version("system", "You are a support agent for {product}.")
    client.create_prompt_version("reply", "Answer the customer: {message}")
    return client


def current(client, agent) -> list[str]:
    versions = client.list_agent_versions(agent).agent_versions
    return [v.version for v in versions if v.is_current]


def test_promptrails_walkthrough(prompts):
    """PromptRails' agent versioning, step by step (seeds/002)."""
    client = prompts
    config = chain(link("system", "system", 0), link("reply", "user", 1))
    first = client.create_agent_version("support-bot", config, version="1.0.0", message="Initial version")
    assert first.is_current and first.version == "1.0.0"
    assert [(p.prompt_name, p.role) for p in first.config.prompts] == [
        ("system", "system"),
        ("reply", "user"),
    ]
    staged = client.create_agent_version(
        "support-bot",
        chain(link("system", "system", 0), link("reply", "user", 1), model="gpt-4.1"),
        version="1.1.0",
        promote=False,
    )
    assert not staged.is_current and current(client, "support-bot") == ["1.0.0"]
    assert client.promote_agent_version("support-bot", "1.1.0").is_current
    listed = client.list_agent_versions("support-bot").agent_versions
    assert [(v.version, v.is_current) for v in listed] == [("1.1.0", True), ("1.0.0", False)]
    # Instant rollback.
    client.promote_agent_version("support-bot", "1.0.0")
    assert current(client, "support-bot") == ["1.0.0"]
    assert client.get_agent_version("support-bot").version == "1.0.0"
    # The links follow each prompt's active version: no agent change needed.
    before = client.resolve_agent("support-bot")
    assert [p.prompt_version.version for p in before.prompts] == [1, 1]
    client.create_prompt_version("reply", "Answer briefly: {message}")
    after = client.resolve_agent("support-bot", variables={"product": "Acme", "message": "hi"})
    assert [p.prompt_version.version for p in after.prompts] == [1, 2]
    assert [p.rendered_text for p in after.prompts] == [
        "You are a support agent for Acme.",
        "Answer briefly: hi",
    ]
    assert after.agent_version.version == "1.0.0"
    (agent,) = client.list_agents().agents
    assert (agent.name, agent.current_version, agent.version_count) == ("support-bot", "1.0.0", 2)


def test_the_demos_agent_section_runs_on_this_backend(client):
    """The walk-through as `promptgauge demo` shows it, on each backend."""
    client.create_prompt_version(demo.NAME, demo.V1)
    lines: list[str] = []
    demo.agent_walkthrough(client, lines.append)
    assert lines[0].startswith("1. Agent support-bot 1.0.0 links")
    assert [line.split()[:2] for line in lines[1:3]] == [["1.1.0", "gpt-4.1"], ["*", "1.0.0"]]
    assert lines[3] == "2. Promoted 1.1.0:" and lines[4].split()[:2] == ["*", "1.1.0"]
    assert "3. Rolled back: current is 1.0.0." in lines
    assert "    now:    support-system v1, support-classifier v2" in lines
    assert current(client, demo.AGENT) == ["1.0.0"]


def test_empty_label_is_v_and_the_count(prompts):
    assert prompts.create_agent_version("a", simple("system")).version == "v1"
    assert prompts.create_agent_version("a", simple("reply")).version == "v2"
    err = expect_error(EXISTS, prompts.create_agent_version, "a", simple("reply"), version="v2")
    assert err.field == "version"
    assert prompts.list_agents().agents[0].version_count == 2


def test_pinned_version_does_not_follow(prompts):
    prompts.create_agent_version("a", chain(link("system", pinned_version=1), link("reply", sort_order=-1)))
    prompts.create_prompt_version("system", "New system for {product}.")
    prompts.create_prompt_version("reply", "New reply {message}")
    resolved = prompts.resolve_agent("a")
    # Sort order, not the order given; the pinned link stays on version 1.
    assert [(p.prompt_version.name, p.prompt_version.version) for p in resolved.prompts] == [
        ("reply", 2),
        ("system", 1),
    ]
    assert [p.sort_order for p in resolved.prompts] == [-1, 0]


@pytest.mark.parametrize(
    "config, field",
    [
        (
            agents_pb2.AgentConfig(
                kind=agents_pb2.AGENT_KIND_SIMPLE, prompts=[link("system"), link("reply")]
            ),
            "config.prompts",
        ),
        (agents_pb2.AgentConfig(kind=agents_pb2.AGENT_KIND_WORKFLOW), "config.prompts"),
        (agents_pb2.AgentConfig(prompts=[link("system")]), "config.kind"),
        (
            agents_pb2.AgentConfig(kind=agents_pb2.AGENT_KIND_CHAIN, prompts=[link("Bad Name")]),
            "config.prompts[0].prompt_name",
        ),
        (
            agents_pb2.AgentConfig(
                kind=agents_pb2.AGENT_KIND_CHAIN, prompts=[link("system", pinned_version=0)]
            ),
            "config.prompts[0].pinned_version",
        ),
        (None, "config"),
    ],
)
def test_bad_config_is_invalid_argument_and_creates_nothing(prompts, config, field):
    err = expect_error(INVALID, prompts.create_agent_version, "a", config)
    assert err.field == field
    assert list(prompts.list_agents().agents) == []


@pytest.mark.parametrize("version", ["", "x" * 65, "1.0 beta", "ü"])
def test_bad_label_is_invalid_argument(prompts, version):
    if version:
        expect_error(INVALID, prompts.create_agent_version, "a", simple("system"), version=version)
    expect_error(INVALID, prompts.create_agent_version, "Bad Agent", simple("system"))
    assert list(prompts.list_agents().agents) == []


@pytest.mark.parametrize(
    "bad_link, field",
    [
        (link("missing"), "config.prompts[1].prompt_name"),
        (link("reply", pinned_version=7), "config.prompts[1].pinned_version"),
    ],
)
def test_link_to_a_missing_prompt_or_version_is_not_found_and_creates_nothing(prompts, bad_link, field):
    err = expect_error(NOT_FOUND, prompts.create_agent_version, "a", chain(link("system"), bad_link))
    assert err.field == field
    assert list(prompts.list_agents().agents) == []
    prompts.create_agent_version("a", simple("system"), version="1")
    expect_error(NOT_FOUND, prompts.create_agent_version, "a", chain(link("system"), bad_link), version="2")
    assert [v.version for v in prompts.list_agent_versions("a").agent_versions] == ["1"]


def test_schemas_are_checked_and_kept(prompts):
    schema = {"type": "object", "properties": {"message": {"type": "string", "minLength": 2}}}
    err = expect_error(INVALID, prompts.create_agent_version, "a", simple("reply"), input_schema={"type": 1})
    assert err.field == "input_schema" and "input_schema.type" in err.message
    created = prompts.create_agent_version(
        "a", simple("reply"), input_schema=schema, output_schema={"type": "string"}
    )
    assert created.input_schema["properties"]["message"]["minLength"] == 2
    assert prompts.get_agent_version("a").output_schema["type"] == "string"
    err = expect_error(INVALID, prompts.resolve_agent, "a", variables={"message": "x"})
    assert err.field == "variables.message" and "minLength" in err.message


def test_first_version_must_be_current(prompts):
    assert (
        expect_error(FAILED, prompts.create_agent_version, "a", simple("system"), promote=False).field
        == "promote"
    )
    assert list(prompts.list_agents().agents) == []


def test_get_promote_and_resolve_errors(prompts):
    prompts.create_agent_version("a", simple("reply"), version="1.0.0")
    expect_error(NOT_FOUND, prompts.get_agent_version, "a", "2.0.0")
    expect_error(NOT_FOUND, prompts.get_agent_version, "b")
    expect_error(NOT_FOUND, prompts.promote_agent_version, "a", "2.0.0")
    expect_error(INVALID, prompts.promote_agent_version, "a", "")
    expect_error(NOT_FOUND, prompts.resolve_agent, "a", version="2.0.0")
    expect_error(NOT_FOUND, prompts.list_agent_versions, "b")
    expect_error(NOT_FOUND, prompts.compare_agent_versions, "b")
    expect_error(INVALID, prompts.resolve_agent, "a", trace_id="not-a-trace")
    err = expect_error(INVALID, prompts.resolve_agent, "a", variables={"other": "x"})
    assert "message" in err.message
    assert current(prompts, "a") == ["1.0.0"]


def test_listing_pages(prompts):
    for name in ("c", "a", "b"):
        prompts.create_agent_version(name, simple("system"))
    for _ in range(4):
        prompts.create_agent_version("a", simple("system"))
    page = prompts.list_agents(page_size=2)
    rest = prompts.list_agents(page_token=page.next_page_token)
    assert [a.name for a in page.agents] + [a.name for a in rest.agents] == ["a", "b", "c"]
    assert rest.next_page_token == ""
    first = prompts.list_agent_versions("a", page_size=3)
    second = prompts.list_agent_versions("a", page_size=3, page_token=first.next_page_token)
    assert [v.version for v in [*first.agent_versions, *second.agent_versions]] == [
        "v5",
        "v4",
        "v3",
        "v2",
        "v1",
    ]
    expect_error(INVALID, prompts.list_agent_versions, "b", page_token=first.next_page_token)


# -- trace links and comparison ------------------------------------------------


@pytest.mark.parametrize("outcome_first", [False, True], ids=["link-first", "outcome-first"])
def test_resolve_with_a_trace_counts_the_run_once_for_agent_and_prompts(prompts, outcome_first):
    client = prompts
    client.create_agent_version("a", chain(link("system"), link("reply", sort_order=1)), version="1.0.0")
    traces = [uuid.uuid4().hex for _ in range(3)]
    outcomes = [(True, 0.5, 100.0), (False, 1.5, 300.0), (True, 1.0, 200.0)]
    if outcome_first:
        for t, (ok, cost, ms) in zip(traces, outcomes, strict=True):
            client.record_trace_outcome(t, success=ok, total_cost_usd=cost, duration_ms=ms)
    for t in traces:
        client.resolve_agent("a", trace_id=t)
        client.resolve_agent("a", trace_id=t)  # idempotent
    if not outcome_first:
        for t, (ok, cost, ms) in zip(traces, outcomes, strict=True):
            client.record_trace_outcome(t, success=ok, total_cost_usd=cost, duration_ms=ms)
    client.create_agent_version("a", simple("reply"), version="2.0.0")
    compared = client.compare_agent_versions("a")
    assert compared.agent == "a"
    (one, two) = compared.versions
    assert (one.version, one.total_traces, two.version, two.total_traces) == ("1.0.0", 3, "2.0.0", 0)
    assert one.success_rate == pytest.approx(2 / 3) and one.avg_cost_usd == pytest.approx(1.0)
    assert one.avg_latency_ms == pytest.approx(200.0) and one.HasField("p95_latency_ms")
    assert not two.HasField("success_rate")
    for name in ("system", "reply"):
        (metrics,) = client.compare_prompt_versions(name).versions
        assert metrics.total_traces == 3 and metrics.success_rate == pytest.approx(2 / 3)


# -- concurrency ----------------------------------------------------------------


def test_concurrent_promotes_leave_exactly_one_current(prompts, server):
    client = prompts
    labels = [f"{n}.0.0" for n in range(1, 7)]
    for label in labels:
        client.create_agent_version("busy", simple("system"), version=label)
    seen: list[list[str]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(len(labels))  # five promoters and one watcher

    def promote(label):
        try:
            start.wait(timeout=30)
            for _ in range(5):
                client.promote_agent_version("busy", label)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    def watch():
        try:
            start.wait(timeout=30)
            for _ in range(15):
                seen.append(current(client, "busy"))
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=promote, args=(label,)) for label in labels[:-1]]
    threads.append(threading.Thread(target=watch))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert all(len(now) == 1 for now in seen), seen
    assert len(current(client, "busy")) == 1
    assert client.get_agent_version("busy").version in labels[:-1]


def test_concurrent_creates_of_a_new_agent_all_land_once_each(prompts):
    client = prompts
    made: list = []
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def create():
        try:
            start.wait(timeout=30)
            made.append(client.create_agent_version("fresh", simple("system")))
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=create) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    # One agent; every create made its own version, numbered in the order they landed.
    assert sorted(v.version for v in made) == sorted(f"v{n}" for n in range(1, 9))
    (agent,) = client.list_agents().agents
    assert agent.version_count == 8
    assert len(current(client, "fresh")) == 1


# -- isolation ------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.get_agent_version("private"),
        lambda c: c.list_agent_versions("private"),
        lambda c: c.promote_agent_version("private", "1.0.0"),
        lambda c: c.resolve_agent("private", trace_id=uuid.uuid4().hex),
        lambda c: c.compare_agent_versions("private"),
    ],
    ids=["get", "list-versions", "promote", "resolve", "compare"],
)
def test_another_accounts_agent_is_not_found(prompts, other_client, call):
    prompts.create_agent_version("private", simple("system"), version="1.0.0", message="secret")
    err = expect_error(NOT_FOUND, call, other_client)
    assert err.reason == "AGENT_NOT_FOUND" and "secret" not in err.message
    assert list(other_client.list_agents().agents) == []
    assert prompts.compare_agent_versions("private").versions[0].total_traces == 0


def test_another_accounts_prompt_cannot_be_linked(prompts, other_client):
    err = expect_error(NOT_FOUND, other_client.create_agent_version, "mine", simple("system"))
    assert err.reason == "PROMPT_NOT_FOUND"
    assert list(other_client.list_agents().agents) == []
