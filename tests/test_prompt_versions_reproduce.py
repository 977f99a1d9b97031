"""Versions that reproduce a run (DESIGN.md "Versions carry everything needed
to reproduce a run"): model config, schemas, change kind, source, the parent
rule, EditPromptVersion, DiffPromptVersions and GetPrompt, through the real
gRPC boundary on both backends."""

import grpc
import pytest
from test_prompts import expect_error, snapshot

from promptgauge.v1 import prompts_pb2

INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND
FAILED = grpc.StatusCode.FAILED_PRECONDITION

CONFIG = {
    "provider": "openai",
    "model": "gpt-4o",
    "temperature": 0.2,
    "max_tokens": 512,
    "stop_sequences": ["###"],
    "extra": {"response_format": {"type": "json_object"}},
}
INPUT = {
    "type": "object",
    "properties": {"ticket": {"type": "string", "maxLength": 20}},
    "required": ["ticket"],
}
OUTPUT = {"type": "object", "properties": {"label": {"enum": ["bug", "billing"]}}}


def test_version_keeps_model_config_schemas_and_source(client):
    created = client.create_prompt_version(
        "triage",
        "Classify: {ticket}",
        model_config=CONFIG,
        input_schema=INPUT,
        output_schema=OUTPUT,
        source="ci",
    )
    for version in (created, client.get_prompt_version("triage", 1), next(client.iter_prompts())):
        assert version.model_config.model == "gpt-4o"
        assert version.model_config.temperature == pytest.approx(0.2)
        assert version.model_config.max_tokens == 512
        assert list(version.model_config.stop_sequences) == ["###"]
        assert version.model_config.extra["response_format"]["type"] == "json_object"
        assert version.input_schema["required"] == ["ticket"]
        assert version.output_schema["properties"]["label"]["enum"] == ["bug", "billing"]
        assert version.source == "ci"
        assert version.change == prompts_pb2.CHANGE_KIND_CREATE


def test_old_fields_alone_still_make_a_plain_version(client):
    created = client.create_prompt_version("plain", "Hello {name}")
    assert not created.HasField("model_config") and not created.HasField("input_schema")
    assert not created.HasField("parent_version") and created.source == ""
    assert client.render_prompt("plain", {"name": "Ada"}).text == "Hello Ada"


def test_parent_left_out_is_the_active_version_and_change_kinds_follow(client):
    client.create_prompt_version("p", "one")
    client.create_prompt_version("p", "two", activate=False)  # staged: 1 stays active
    three = client.create_prompt_version("p", "one", model_config={"model": "m2"})
    assert client.get_prompt_version("p", 2).parent_version == 1
    assert client.get_prompt_version("p", 2).change == prompts_pb2.CHANGE_KIND_WRITE
    assert three.parent_version == 1 and three.change == prompts_pb2.CHANGE_KIND_MODIFY
    four = client.create_prompt_version("p", "four", parent_version=2)
    assert four.parent_version == 2 and four.change == prompts_pb2.CHANGE_KIND_WRITE


@pytest.mark.parametrize(
    "schema, path",
    [
        ({"type": "strin"}, "input_schema.type"),
        ({"properties": {"ticket": {"maxLength": -1}}}, "input_schema.properties.ticket.maxLength"),
        ({"required": "ticket"}, "input_schema.required"),
    ],
)
def test_invalid_input_schema_is_invalid_argument_naming_the_path(client, schema, path):
    before = snapshot(client)
    err = expect_error(INVALID, client.create_prompt_version, "s", "x {ticket}", input_schema=schema)
    assert path in err.message and err.field == "input_schema" and err.reason == "INVALID_SCHEMA"
    assert snapshot(client) == before


def test_invalid_output_schema_is_invalid_argument(client):
    err = expect_error(INVALID, client.create_prompt_version, "s", "x", output_schema={"type": 3})
    assert err.field == "output_schema" and "output_schema.type" in err.message


@pytest.mark.parametrize(
    "config, field",
    [
        (prompts_pb2.ModelConfig(temperature=float("nan")), "model_config.temperature"),
        ({"max_tokens": -1}, "model_config.max_tokens"),
        ({"provider": "p" * 65}, "model_config.provider"),
    ],
)
def test_bad_model_config_is_invalid_argument_and_stores_nothing(client, config, field):
    err = expect_error(INVALID, client.create_prompt_version, "m", "x", model_config=config)
    assert err.field == field
    assert snapshot(client) == []


def test_source_over_64_characters_is_invalid_argument(client):
    err = expect_error(INVALID, client.create_prompt_version, "m", "x", source="s" * 65)
    assert err.field == "source"
    assert client.create_prompt_version("m", "x", source="s" * 64).source == "s" * 64


def test_render_checks_variables_against_the_input_schema(client):
    client.create_prompt_version("triage", "Classify: {ticket}", input_schema=INPUT)
    assert client.render_prompt("triage", {"ticket": "short"}).text == "Classify: short"
    err = expect_error(INVALID, client.render_prompt, "triage", {"ticket": "x" * 21})
    assert "variables.ticket" in err.message and "maxLength" in err.message
    assert err.field == "variables.ticket" and err.reason == "SCHEMA_VIOLATION"
    err = expect_error(INVALID, client.render_prompt, "triage", {"other": "x"})
    assert "ticket" in err.message and "required" in err.message


# -- EditPromptVersion ------------------------------------------------------------


def test_edit_applies_edits_in_order_and_inherits_from_the_base(client):
    client.create_prompt_version("e", "Hello {name}, welcome.", model_config=CONFIG, input_schema=INPUT)
    client.create_prompt_version("e", "unrelated", activate=False)
    edited = client.edit_prompt_version(
        "e", [("Hello", "Hi"), ("Hi {name}", "Hi there {name}")], description="friendlier", source="ui"
    )
    assert edited.template_text == "Hi there {name}, welcome."
    assert edited.version == 3 and edited.parent_version == 1 and edited.is_active
    assert edited.change == prompts_pb2.CHANGE_KIND_EDIT and edited.source == "ui"
    assert edited.model_config == client.get_prompt_version("e", 1).model_config
    assert edited.input_schema == client.get_prompt_version("e", 1).input_schema
    staged = client.edit_prompt_version("e", [("unrelated", "related")], base_version=2, activate=False)
    assert staged.parent_version == 2 and not staged.is_active
    assert client.get_prompt_version("e").version == 3


@pytest.mark.parametrize("text, count", [("missing", 0), ("t", 2)])
def test_edit_matching_zero_or_several_times_is_failed_precondition_naming_index_and_count(
    client, text, count
):
    client.create_prompt_version("e", "one two too")
    before = snapshot(client)
    err = expect_error(FAILED, client.edit_prompt_version, "e", [("one", "1"), (text, "x")])
    assert "edits[1]" in err.message and f"occurs {count} times" in err.message
    assert err.field == "edits[1].old_text"
    assert snapshot(client) == before


def test_edit_to_an_identical_text_is_failed_precondition(client):
    client.create_prompt_version("e", "same")
    err = expect_error(FAILED, client.edit_prompt_version, "e", [("same", "same")])
    assert err.reason == "NOTHING_CHANGED"
    assert len(snapshot(client)) == 1


def test_edit_errors(client):
    client.create_prompt_version("e", "text {x}")
    expect_error(INVALID, client.edit_prompt_version, "e", [])
    expect_error(INVALID, client.edit_prompt_version, "e", [("", "y")])
    expect_error(INVALID, client.edit_prompt_version, "e", [("{x}", "{")])  # a broken template
    expect_error(INVALID, client.edit_prompt_version, "e", [("text", "t")], base_version=0)
    expect_error(NOT_FOUND, client.edit_prompt_version, "e", [("text", "t")], base_version=9)
    expect_error(NOT_FOUND, client.edit_prompt_version, "nope", [("text", "t")])
    assert len(snapshot(client)) == 1
    assert snapshot(client) and client.get_prompt("e").version_count == 1


# -- DiffPromptVersions and GetPrompt -------------------------------------------


def test_diff_gives_a_unified_diff_and_the_other_fields_that_differ(client):
    client.create_prompt_version("d", "line one\nline two\n", model_config={"model": "a", "temperature": 0.1})
    client.create_prompt_version(
        "d",
        "line one\nline 2\n",
        model_config={"model": "a", "temperature": 0.7},
        input_schema=INPUT,
        description="changed",
    )
    diff = client.diff_prompt_versions("d", 1, 2)
    assert "-line two\n+line 2\n" in diff.unified_diff and "--- d v1" in diff.unified_diff
    assert list(diff.changed_fields) == ["description", "input_schema", "model_config.temperature"]
    same = client.diff_prompt_versions("d", 2, 2)
    assert same.unified_diff == "" and list(same.changed_fields) == []


def test_diff_errors(client):
    client.create_prompt_version("d", "x")
    assert expect_error(NOT_FOUND, client.diff_prompt_versions, "d", 1, 5).field == "to_version"
    assert expect_error(INVALID, client.diff_prompt_versions, "d", 0, 1).field == "from_version"
    expect_error(NOT_FOUND, client.diff_prompt_versions, "nope", 1, 1)


def test_get_prompt_gives_the_prompt_as_a_whole(client):
    first = client.create_prompt_version("g", "one")
    client.create_prompt_version("g", "two")
    third = client.create_prompt_version("g", "three", activate=False)
    prompt = client.get_prompt("g")
    assert (prompt.name, prompt.active_version, prompt.latest_version, prompt.version_count) == ("g", 2, 3, 3)
    assert prompt.create_time == first.create_time and prompt.update_time == third.create_time
    expect_error(NOT_FOUND, client.get_prompt, "nope")
    expect_error(INVALID, client.get_prompt, "Bad Name")


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.get_prompt("private"),
        lambda c: c.diff_prompt_versions("private", 1, 1),
        lambda c: c.edit_prompt_version("private", [("secret", "x")]),
    ],
    ids=["get-prompt", "diff", "edit"],
)
def test_another_accounts_prompt_is_not_found(client, other_client, call):
    client.create_prompt_version("private", "secret")
    before = snapshot(client)
    err = expect_error(NOT_FOUND, call, other_client)
    assert err.reason == "PROMPT_NOT_FOUND" and "secret" not in err.message
    assert snapshot(client) == before
