"""PromptService through the real gRPC boundary: create, validation, activation,
listing, rendering, isolation. Concurrency and pagination live in
test_prompts_concurrency.py and test_prompts_pagination.py."""

import uuid

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from promptgauge.client import PromptGaugeError
from promptgauge.v1 import prompts_pb2, prompts_pb2_grpc

INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND


def expect_error(code, call, *args, **kwargs) -> PromptGaugeError:
    with pytest.raises(PromptGaugeError) as err:
        call(*args, **kwargs)
    assert err.value.code == code, err.value
    return err.value


def snapshot(client) -> list:
    """Every stored version of the account, in list order."""
    return list(client.iter_prompts(page_size=200))


def active_versions(client, name) -> list[int]:
    return [v.version for v in client.iter_prompt_versions(name) if v.is_active]


# -- create -----------------------------------------------------------------


def test_versions_auto_increment_from_one(client):
    versions = [client.create_prompt_version("greeter", f"Hi {i}").version for i in range(3)]
    assert versions == [1, 2, 3]


def test_auto_version_is_one_more_than_the_highest_explicit_version(client):
    client.create_prompt_version("greeter", "a", version=7)
    created = client.create_prompt_version("greeter", "b")
    assert created.version == 8


def test_explicit_version_is_kept(client):
    created = client.create_prompt_version("greeter", "Hello", version=5)
    assert created.version == 5
    assert client.get_prompt_version("greeter", 5).template_text == "Hello"


def test_duplicate_version_is_already_exists_and_keeps_the_old_text(client):
    client.create_prompt_version("greeter", "original", version=2)
    before = snapshot(client)
    err = expect_error(
        grpc.StatusCode.ALREADY_EXISTS,
        client.create_prompt_version, "greeter", "replacement", version=2,
    )
    assert err.field == "version" and err.reason == "VERSION_EXISTS"
    assert client.get_prompt_version("greeter", 2).template_text == "original"
    assert snapshot(client) == before


def test_new_version_becomes_active(client):
    client.create_prompt_version("greeter", "v1")
    v2 = client.create_prompt_version("greeter", "v2")
    assert v2.is_active
    assert client.get_prompt_version("greeter").version == 2
    assert active_versions(client, "greeter") == [2]


def test_activate_false_stages_a_candidate_and_keeps_the_active_one(client):
    client.create_prompt_version("greeter", "v1")
    staged = client.create_prompt_version("greeter", "v2", activate=False)
    assert staged.version == 2 and not staged.is_active
    assert client.get_prompt_version("greeter").version == 1
    assert active_versions(client, "greeter") == [1]


def test_activate_true_makes_the_new_version_active(client):
    client.create_prompt_version("greeter", "v1")
    assert client.create_prompt_version("greeter", "v2", activate=True).is_active
    assert active_versions(client, "greeter") == [2]


def test_activate_false_on_first_version_is_failed_precondition_and_stores_nothing(client):
    before = snapshot(client)
    err = expect_error(
        grpc.StatusCode.FAILED_PRECONDITION,
        client.create_prompt_version, "greeter", "v1", activate=False,
    )
    assert err.field == "activate" and err.reason == "FIRST_VERSION_INACTIVE"
    assert snapshot(client) == before
    expect_error(NOT_FOUND, client.list_prompt_versions, "greeter")


def test_parent_version_is_recorded(client):
    client.create_prompt_version("greeter", "v1")
    child = client.create_prompt_version("greeter", "v2", parent_version=1)
    assert child.HasField("parent_version") and child.parent_version == 1
    assert client.get_prompt_version("greeter", 2).parent_version == 1


def test_parent_version_is_unset_when_not_given(client):
    created = client.create_prompt_version("greeter", "v1")
    assert not created.HasField("parent_version")


def test_unknown_parent_version_is_not_found_and_stores_nothing(client):
    client.create_prompt_version("greeter", "v1")
    before = snapshot(client)
    err = expect_error(NOT_FOUND, client.create_prompt_version, "greeter", "v2", parent_version=9)
    assert err.field == "parent_version"
    assert snapshot(client) == before


def test_parent_version_on_a_new_name_is_not_found_and_leaves_no_prompt(client):
    err = expect_error(NOT_FOUND, client.create_prompt_version, "fresh", "v1", parent_version=1)
    assert err.field == "parent_version"
    expect_error(NOT_FOUND, client.list_prompt_versions, "fresh")
    assert snapshot(client) == []


def test_variables_in_order_of_first_appearance_without_duplicates(client):
    created = client.create_prompt_version("greeter", "{b} and {a}, {b} {{lit}} {c_1} {a}")
    assert list(created.variables) == ["b", "a", "c_1"]
    assert list(client.get_prompt_version("greeter").variables) == ["b", "a", "c_1"]


def test_template_without_placeholders_has_no_variables(client):
    assert list(client.create_prompt_version("greeter", "plain text").variables) == []


def test_created_fields_are_filled(client):
    created = client.create_prompt_version("greeter", "Hello {name}", description="first try")
    assert str(uuid.UUID(created.id)) == created.id
    assert created.name == "greeter"
    assert created.description == "first try"
    assert created.created_by.startswith("key_")
    assert created.HasField("create_time") and created.create_time.seconds > 0
    assert client.get_prompt_version("greeter") == created


def test_each_version_has_its_own_id(client):
    ids = {client.create_prompt_version("greeter", f"v{i}").id for i in range(3)}
    assert len(ids) == 3


# -- validation ---------------------------------------------------------------


@pytest.mark.parametrize(
    "name, reason",
    [
        ("", "EMPTY_FIELD"),
        ("a" * 129, "INVALID_NAME"),
        ("Greeter", "INVALID_NAME"),
        (".greeter", "INVALID_NAME"),
        ("-greeter", "INVALID_NAME"),
        ("_greeter", "INVALID_NAME"),
        ("my greeter", "INVALID_NAME"),
        (" greeter", "INVALID_NAME"),
        ("grüßer", "INVALID_NAME"),
        ("greeter/v1", "INVALID_NAME"),
        ("greeter\n", "INVALID_NAME"),
        ("gree\x00ter", "INVALID_NAME"),
    ],
)
def test_bad_name_is_invalid_argument_and_stores_nothing(client, name, reason):
    client.create_prompt_version("existing", "x")
    before = snapshot(client)
    err = expect_error(INVALID, client.create_prompt_version, name, "Hello")
    assert err.field == "name" and err.reason == reason
    assert err.message
    assert snapshot(client) == before


@pytest.mark.parametrize("name", ["a" * 128, "0day", "a.b_c-d", "x"])
def test_valid_names_are_accepted(client, name):
    assert client.create_prompt_version(name, "Hello").name == name
    assert client.get_prompt_version(name).name == name


def test_empty_template_is_invalid_argument_and_stores_nothing(client):
    client.create_prompt_version("greeter", "v1")
    before = snapshot(client)
    err = expect_error(INVALID, client.create_prompt_version, "greeter", "")
    assert err.field == "template_text" and err.reason == "EMPTY_FIELD"
    assert snapshot(client) == before


def test_template_of_65536_bytes_is_accepted(client):
    created = client.create_prompt_version("big", "a" * 65536)
    assert len(client.get_prompt_version("big", created.version).template_text) == 65536


def test_template_of_65537_bytes_is_invalid_argument_and_stores_nothing(client):
    client.create_prompt_version("big", "v1")
    before = snapshot(client)
    err = expect_error(INVALID, client.create_prompt_version, "big", "a" * 65537)
    assert err.field == "template_text" and err.reason == "TEMPLATE_TOO_LARGE"
    assert snapshot(client) == before


def test_template_limit_counts_utf8_bytes_not_characters(client):
    client.create_prompt_version("big", "é" * 32768)  # 65536 bytes
    before = snapshot(client)
    err = expect_error(INVALID, client.create_prompt_version, "big", "é" * 32769)
    assert err.field == "template_text"
    assert snapshot(client) == before


def test_description_of_4096_characters_is_accepted(client):
    created = client.create_prompt_version("greeter", "x", description="d" * 4096)
    assert len(created.description) == 4096


def test_description_over_4096_characters_is_invalid_argument_and_stores_nothing(client):
    client.create_prompt_version("greeter", "v1")
    before = snapshot(client)
    err = expect_error(INVALID, client.create_prompt_version, "greeter", "v2", description="d" * 4097)
    assert err.field == "description" and err.reason == "DESCRIPTION_TOO_LONG"
    assert snapshot(client) == before


@pytest.mark.parametrize("field", ["template_text", "description"])
def test_nul_character_in_text_is_invalid_argument_and_stores_nothing(client, field):
    client.create_prompt_version("greeter", "v1")
    before = snapshot(client)
    fields = {"template_text": "ok", "description": ""} | {field: "a\x00b"}
    err = expect_error(INVALID, client.create_prompt_version, "greeter", **fields)
    assert err.field == field and err.reason == "INVALID_CHARACTER"
    assert snapshot(client) == before


def test_auto_version_past_int32_max_is_failed_precondition_and_stores_nothing(client):
    client.create_prompt_version("greeter", "top", version=2**31 - 1)
    before = snapshot(client)
    err = expect_error(grpc.StatusCode.FAILED_PRECONDITION, client.create_prompt_version, "greeter", "next")
    assert err.field == "version"
    assert snapshot(client) == before


@pytest.mark.parametrize("version", [0, -1, -(2**31)])
def test_non_positive_version_is_invalid_argument_and_stores_nothing(client, version):
    client.create_prompt_version("greeter", "v1")
    before = snapshot(client)
    err = expect_error(INVALID, client.create_prompt_version, "greeter", "v", version=version)
    assert err.field == "version" and err.reason == "INVALID_VERSION"
    assert snapshot(client) == before


@pytest.mark.parametrize("parent", [0, -3])
def test_non_positive_parent_version_is_invalid_argument_and_stores_nothing(client, parent):
    client.create_prompt_version("greeter", "v1")
    before = snapshot(client)
    err = expect_error(INVALID, client.create_prompt_version, "greeter", "v", parent_version=parent)
    assert err.field == "parent_version" and err.reason == "INVALID_VERSION"
    assert snapshot(client) == before


@pytest.mark.parametrize(
    "template",
    ["{", "}", "{1abc}", "Hello {name", "Hello name}", "{}", "{a b}", "{{x}", "{x}}", "{a-b}"],
)
def test_malformed_template_is_invalid_argument_and_stores_nothing(client, template):
    client.create_prompt_version("greeter", "v1")
    before = snapshot(client)
    err = expect_error(INVALID, client.create_prompt_version, "greeter", template)
    assert err.field == "template_text" and err.reason == "INVALID_TEMPLATE"
    assert snapshot(client) == before


def test_malformed_template_on_a_new_name_leaves_no_prompt(client):
    expect_error(INVALID, client.create_prompt_version, "fresh", "{oops")
    expect_error(NOT_FOUND, client.get_prompt_version, "fresh")


def test_literal_braces_are_not_variables(client):
    created = client.create_prompt_version("json", 'Reply as {{"answer": {answer}}}')
    assert list(created.variables) == ["answer"]
    assert list(client.create_prompt_version("json", "{{x}}").variables) == []


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.get_prompt_version("Bad Name"),
        lambda c: c.list_prompt_versions("Bad Name"),
        lambda c: c.activate_prompt_version("Bad Name", 1),
        lambda c: c.render_prompt("Bad Name", {}),
    ],
    ids=["get", "list_versions", "activate", "render"],
)
def test_bad_name_on_every_read_rpc_is_invalid_argument(client, call):
    err = expect_error(INVALID, call, client)
    assert err.field == "name" and err.reason == "INVALID_NAME"


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.get_prompt_version("greeter", 0),
        lambda c: c.activate_prompt_version("greeter", 0),
        lambda c: c.activate_prompt_version("greeter", -1),
        lambda c: c.render_prompt("greeter", {}, version=-2),
    ],
    ids=["get", "activate-0", "activate-neg", "render"],
)
def test_non_positive_version_on_reads_is_invalid_argument(client, call):
    client.create_prompt_version("greeter", "v1")
    before = snapshot(client)
    err = expect_error(INVALID, call, client)
    assert err.field == "version"
    assert snapshot(client) == before


# -- activation ---------------------------------------------------------------


def test_rollback_and_roll_forward_keep_exactly_one_active(client):
    for i in range(3):
        client.create_prompt_version("greeter", f"v{i + 1}")
    rolled_back = client.activate_prompt_version("greeter", 1)
    assert rolled_back.version == 1 and rolled_back.is_active
    assert active_versions(client, "greeter") == [1]
    assert client.get_prompt_version("greeter").template_text == "v1"
    assert not client.get_prompt_version("greeter", 3).is_active

    client.activate_prompt_version("greeter", 3)
    assert active_versions(client, "greeter") == [3]
    client.activate_prompt_version("greeter", 2)
    assert active_versions(client, "greeter") == [2]
    assert [v.version for v in snapshot(client) if v.is_active] == [2]


def test_activating_a_staged_candidate_promotes_it(client):
    client.create_prompt_version("greeter", "v1")
    client.create_prompt_version("greeter", "v2", activate=False)
    assert client.activate_prompt_version("greeter", 2).is_active
    assert active_versions(client, "greeter") == [2]


def test_activating_the_active_version_is_a_no_op(client):
    client.create_prompt_version("greeter", "v1")
    client.create_prompt_version("greeter", "v2")
    before = snapshot(client)
    again = client.activate_prompt_version("greeter", 2)
    assert again.is_active and again.version == 2
    assert snapshot(client) == before


def test_activating_an_unknown_version_is_not_found_and_keeps_the_active_one(client):
    client.create_prompt_version("greeter", "v1")
    client.create_prompt_version("greeter", "v2")
    before = snapshot(client)
    err = expect_error(NOT_FOUND, client.activate_prompt_version, "greeter", 3)
    assert err.field == "version" and err.reason == "VERSION_NOT_FOUND"
    assert active_versions(client, "greeter") == [2]
    assert snapshot(client) == before


def test_activating_an_unknown_name_is_not_found(client):
    err = expect_error(NOT_FOUND, client.activate_prompt_version, "nothing", 1)
    assert err.reason == "PROMPT_NOT_FOUND"


def test_activation_does_not_touch_other_prompts(client):
    client.create_prompt_version("a", "a1")
    client.create_prompt_version("a", "a2")
    client.create_prompt_version("b", "b1")
    client.create_prompt_version("b", "b2")
    client.activate_prompt_version("a", 1)
    assert active_versions(client, "a") == [1]
    assert active_versions(client, "b") == [2]


# -- get ----------------------------------------------------------------------


def test_get_without_version_returns_the_active_one(client):
    client.create_prompt_version("greeter", "v1")
    client.create_prompt_version("greeter", "v2", activate=False)
    got = client.get_prompt_version("greeter")
    assert got.version == 1 and got.is_active and got.template_text == "v1"


def test_get_explicit_version(client):
    client.create_prompt_version("greeter", "v1", description="one")
    client.create_prompt_version("greeter", "v2")
    got = client.get_prompt_version("greeter", 1)
    assert (got.version, got.template_text, got.description, got.is_active) == (1, "v1", "one", False)


def test_get_unknown_version_is_not_found(client):
    client.create_prompt_version("greeter", "v1")
    err = expect_error(NOT_FOUND, client.get_prompt_version, "greeter", 2)
    assert err.field == "version" and err.reason == "VERSION_NOT_FOUND"


def test_get_unknown_name_is_not_found(client):
    err = expect_error(NOT_FOUND, client.get_prompt_version, "nothing")
    assert err.field == "name" and err.reason == "PROMPT_NOT_FOUND"


# -- list ---------------------------------------------------------------------


def test_list_prompts_orders_by_name_then_version_descending(client):
    for name in ["beta", "a-c", "alpha", "a.b", "a0", "a_a", "ab"]:
        client.create_prompt_version(name, "one")
        client.create_prompt_version(name, "two")
    client.create_prompt_version("alpha", "three", activate=False)
    listed = [(v.name, v.version) for v in snapshot(client)]
    expected_names = sorted(["beta", "a-c", "alpha", "a.b", "a0", "a_a", "ab"])
    expected = [(n, v) for n in expected_names for v in ((3, 2, 1) if n == "alpha" else (2, 1))]
    assert listed == expected


def test_list_prompts_marks_only_active_versions(client):
    client.create_prompt_version("a", "a1")
    client.create_prompt_version("a", "a2", activate=False)
    client.create_prompt_version("b", "b1")
    assert [(v.name, v.version) for v in snapshot(client) if v.is_active] == [("a", 1), ("b", 1)]


def test_list_prompts_of_a_new_account_is_empty(client):
    page = client.list_prompts()
    assert list(page.prompt_versions) == [] and page.next_page_token == ""


def test_list_prompt_versions_is_newest_first(client):
    client.create_prompt_version("greeter", "v3", version=3)
    client.create_prompt_version("greeter", "v1", version=1)
    client.create_prompt_version("greeter", "v10", version=10)
    client.create_prompt_version("other", "x")
    page = client.list_prompt_versions("greeter")
    assert [v.version for v in page.prompt_versions] == [10, 3, 1]
    assert {v.name for v in page.prompt_versions} == {"greeter"}
    assert page.next_page_token == ""


def test_list_prompt_versions_of_unknown_name_is_not_found(client):
    client.create_prompt_version("greeter", "v1")
    err = expect_error(NOT_FOUND, client.list_prompt_versions, "nothing")
    assert err.field == "name"


# -- render -------------------------------------------------------------------


def test_render_fills_variables_and_literal_braces(client):
    client.create_prompt_version("json", 'Hi {name}! {{"k": "{value}"}} {name}')
    rendered = client.render_prompt("json", {"name": "Ann", "value": "{v}"})
    assert rendered.text == 'Hi Ann! {"k": "{v}"} Ann'
    assert rendered.version == 1


def test_render_ignores_extra_variables(client):
    client.create_prompt_version("greeter", "Hello {name}")
    assert client.render_prompt("greeter", {"name": "Bo", "unused": "x"}).text == "Hello Bo"


def test_render_template_without_variables(client):
    client.create_prompt_version("greeter", "Hello {{world}}")
    assert client.render_prompt("greeter", {}).text == "Hello {world}"


def test_render_missing_variable_is_invalid_argument_naming_it(client):
    client.create_prompt_version("greeter", "Hello {name}, from {sender}")
    err = expect_error(INVALID, client.render_prompt, "greeter", {"sender": "me"})
    assert "name" in err.message and "sender" not in err.message
    assert err.field == "variables" and err.reason == "MISSING_VARIABLE"


def test_render_names_every_missing_variable(client):
    client.create_prompt_version("greeter", "{greeting} {name}, from {sender}")
    err = expect_error(INVALID, client.render_prompt, "greeter", {"name": "Ann"})
    assert "greeting" in err.message and "sender" in err.message


def test_render_of_thousands_of_missing_variables_names_a_few_and_counts_the_rest(client):
    # Listing all 2,000 made a 55 kB status message: past gRPC's 16 KiB
    # trailer limit, the caller saw RESOURCE_EXHAUSTED and no reason.
    names = [f"v{i}_{'x' * 20}" for i in range(2000)] + ["w" * 5000]
    client.create_prompt_version("crowded", " ".join("{" + n + "}" for n in names))
    err = expect_error(INVALID, client.render_prompt, "crowded", {names[0]: "given"})
    assert err.reason == "MISSING_VARIABLE" and err.field == "variables"
    assert names[1] in err.message and names[0] not in err.message
    shown = err.message.count("_xxxx")
    assert 0 < shown < 100 and err.message.endswith(f" and {len(names) - 1 - shown} more")
    assert len(err.message) < 1000


def test_render_past_the_message_limit_is_resource_exhausted_before_it_is_built(client):
    # 21,000 placeholders and a 4 MB value would be 84 GB of text: the server
    # tried to build it (MemoryError, UNKNOWN) before this limit existed.
    client.create_prompt_version("amplifier", "{a}" * 21_000)
    err = expect_error(
        grpc.StatusCode.RESOURCE_EXHAUSTED, client.render_prompt, "amplifier", {"a": "y" * 4_000_000}
    )
    assert (err.reason, err.field) == ("RENDERED_TOO_LARGE", "variables")
    assert "84000000000 bytes" in err.message
    fits = client.render_prompt("amplifier", {"a": "y" * 199})  # 4,179,000 bytes
    assert len(fits.text) == 21_000 * 199


def test_render_uses_the_active_version_by_default(client):
    client.create_prompt_version("greeter", "one {x}")
    client.create_prompt_version("greeter", "two {x}")
    client.create_prompt_version("greeter", "three {x}", activate=False)
    rendered = client.render_prompt("greeter", {"x": "!"})
    assert (rendered.text, rendered.version) == ("two !", 2)
    client.activate_prompt_version("greeter", 1)
    assert client.render_prompt("greeter", {"x": "!"}).text == "one !"


def test_render_a_specific_version(client):
    client.create_prompt_version("greeter", "one {x}")
    client.create_prompt_version("greeter", "two {y}")
    rendered = client.render_prompt("greeter", {"x": "1"}, version=1)
    assert (rendered.text, rendered.version) == ("one 1", 1)


def test_render_unknown_version_is_not_found(client):
    client.create_prompt_version("greeter", "one")
    err = expect_error(NOT_FOUND, client.render_prompt, "greeter", {}, version=2)
    assert err.field == "version"


def test_render_unknown_name_is_not_found(client):
    expect_error(NOT_FOUND, client.render_prompt, "nothing", {})


# -- isolation ----------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda c, name: c.get_prompt_version(name),
        lambda c, name: c.get_prompt_version(name, 1),
        lambda c, name: c.list_prompt_versions(name),
        lambda c, name: c.activate_prompt_version(name, 1),
        lambda c, name: c.render_prompt(name, {"x": "y"}),
    ],
    ids=["get-active", "get-version", "list-versions", "activate", "render"],
)
def test_other_accounts_prompt_is_not_found_like_a_missing_one(client, other_client, call):
    client.create_prompt_version("private", "secret {x}")
    client.create_prompt_version("private", "secret two {x}", activate=False)
    before = snapshot(client)
    err = expect_error(NOT_FOUND, call, other_client, "private")
    missing = expect_error(NOT_FOUND, call, other_client, "never-created")
    assert (err.reason, err.field) == (missing.reason, missing.field) == ("PROMPT_NOT_FOUND", "name")
    assert "secret" not in err.message
    assert snapshot(client) == before
    assert active_versions(client, "private") == [1]


def test_other_accounts_prompts_are_absent_from_list_prompts(client, other_client):
    client.create_prompt_version("private", "secret")
    other_client.create_prompt_version("mine", "ours")
    assert [v.name for v in snapshot(other_client)] == ["mine"]
    assert [v.name for v in snapshot(client)] == ["private"]


def test_two_accounts_use_one_name_independently(client, other_client):
    client.create_prompt_version("shared", "first of A")
    client.create_prompt_version("shared", "second of A")
    theirs = other_client.create_prompt_version("shared", "first of B")
    assert theirs.version == 1 and theirs.is_active
    other_client.create_prompt_version("shared", "explicit of B", version=2)
    client.activate_prompt_version("shared", 1)
    assert client.get_prompt_version("shared").template_text == "first of A"
    assert other_client.get_prompt_version("shared").template_text == "explicit of B"
    assert [v.template_text for v in client.iter_prompt_versions("shared")] == [
        "second of A", "first of A",
    ]
    assert [v.template_text for v in other_client.iter_prompt_versions("shared")] == [
        "explicit of B", "first of B",
    ]


def test_other_account_cannot_create_against_anothers_parent_version(client, other_client):
    client.create_prompt_version("private", "secret")
    err = expect_error(NOT_FOUND, other_client.create_prompt_version, "private", "x", parent_version=1)
    assert err.field == "parent_version"
    assert len(snapshot(client)) == 1


# -- the raw contract -----------------------------------------------------------


def test_invalid_argument_carries_bad_request_and_error_info_details(server, api_key):
    with grpc.insecure_channel(server.target) as channel:
        stub = prompts_pb2_grpc.PromptServiceStub(channel)
        request = prompts_pb2.CreatePromptVersionRequest(name="Bad Name", template_text="x")
        with pytest.raises(grpc.RpcError) as err:
            stub.CreatePromptVersion(
                request, timeout=10, metadata=(("authorization", f"Bearer {api_key}"),)
            )
    assert err.value.code() == INVALID
    status = rpc_status.from_call(err.value)
    assert status is not None and status.code == INVALID.value[0]
    infos, bad_requests = [], []
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            infos.append(error_details_pb2.ErrorInfo())
            detail.Unpack(infos[-1])
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_requests.append(error_details_pb2.BadRequest())
            detail.Unpack(bad_requests[-1])
    assert len(infos) == 1 and infos[0].reason == "INVALID_NAME" and infos[0].domain
    assert infos[0].metadata["field"] == "name"
    assert len(bad_requests) == 1
    violations = bad_requests[0].field_violations
    assert [v.field for v in violations] == ["name"] and violations[0].description
