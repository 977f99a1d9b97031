"""Labels, traffic splits, ResolvePrompt and the history, through the real
gRPC boundary on both backends (issue 14). The split's bucket arithmetic
has its own unit tests in test_releases_units.py."""

import uuid
from collections import Counter

import grpc
import pytest
from conftest import trace_outcome

from promptgauge.client import PromptGaugeError
from promptgauge.v1 import prompts_pb2

INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND
KIND = prompts_pb2.EventKind


def expect_error(code, call, *args, **kwargs) -> PromptGaugeError:
    with pytest.raises(PromptGaugeError) as err:
        call(*args, **kwargs)
    assert err.value.code == code, err.value
    return err.value


def three_versions(client, name: str = "support") -> None:
    client.create_prompt_version(name, "one {q}")
    client.create_prompt_version(name, "two {q}", activate=False)
    client.create_prompt_version(name, "three {q}", activate=False)


def labels_by_version(client, name: str) -> dict[int, list[str]]:
    return {v.version: list(v.labels) for v in client.iter_prompt_versions(name)}


def history(client, name: str) -> list[tuple]:
    return [(e.kind, e.version, e.previous_version if e.HasField("previous_version") else None, e.label)
            for e in client.iter_prompt_history(name)]


# -- labels ----------------------------------------------------------------------


def test_label_is_set_moved_read_and_deleted(client):
    three_versions(client)
    assert list(client.set_prompt_label("support", "production", 2).labels) == ["production"]
    assert client.get_prompt_version("support", label="production").version == 2
    assert client.render_prompt("support", {"q": "x"}, label="production").text == "two x"
    client.set_prompt_label("support", "staging", 2)
    assert labels_by_version(client, "support") == {3: [], 2: ["production", "staging"], 1: []}
    moved = client.set_prompt_label("support", "production", 3)
    assert (moved.version, list(moved.labels)) == (3, ["production"])
    assert client.get_prompt_version("support", label="production").version == 3
    client.delete_prompt_label("support", "production")
    expect_error(NOT_FOUND, client.get_prompt_version, "support", label="production")
    assert labels_by_version(client, "support") == {3: [], 2: ["staging"], 1: []}
    assert client.list_prompts().prompt_versions[1].labels == ["staging"]


def test_reserved_labels_read_latest_and_active_and_cannot_be_set(client):
    three_versions(client)
    assert client.get_prompt_version("support", label="latest").version == 3
    assert client.get_prompt_version("support", label="active").version == 1
    assert client.resolve_prompt("support", label="latest").prompt_version.version == 3
    for reserved in ("latest", "active"):
        err = expect_error(INVALID, client.set_prompt_label, "support", reserved, 2)
        assert (err.field, err.reason) == ("label", "RESERVED_LABEL")
        expect_error(INVALID, client.delete_prompt_label, "support", reserved)
    assert labels_by_version(client, "support") == {3: [], 2: [], 1: []}


@pytest.mark.parametrize("label", ["Prod", "1st", "-x", "a" * 64, "with space", "dot.ted", "ü"])
def test_label_outside_the_rule_is_invalid_argument_and_changes_nothing(client, label):
    three_versions(client)
    err = expect_error(INVALID, client.set_prompt_label, "support", label, 2)
    assert (err.field, err.reason) == ("label", "INVALID_LABEL")
    expect_error(INVALID, client.get_prompt_version, "support", label=label)
    assert labels_by_version(client, "support") == {3: [], 2: [], 1: []}


def test_longest_label_is_accepted(client):
    three_versions(client)
    label = "a" + "b-_9" * 15 + "cd"
    assert len(label) == 63
    assert list(client.set_prompt_label("support", label, 1).labels) == [label]


def test_label_on_a_missing_version_or_prompt_is_not_found_and_changes_nothing(client):
    three_versions(client)
    client.set_prompt_label("support", "production", 1)
    err = expect_error(NOT_FOUND, client.set_prompt_label, "support", "production", 9)
    assert err.field == "version"
    expect_error(NOT_FOUND, client.set_prompt_label, "nothing-here", "production", 1)
    expect_error(NOT_FOUND, client.delete_prompt_label, "support", "never-set")
    assert client.get_prompt_version("support", label="production").version == 1
    assert [k for k, *_ in history(client, "support")].count(KIND.EVENT_KIND_LABEL_SET) == 1


def test_version_and_label_together_are_invalid_argument(client):
    three_versions(client)
    err = expect_error(INVALID, client.get_prompt_version, "support", 2, label="latest")
    assert err.reason == "VERSION_AND_LABEL"
    expect_error(INVALID, client.render_prompt, "support", {"q": "x"}, 2, label="latest")


def test_another_accounts_labels_are_not_found(client, other_client):
    three_versions(client)
    client.set_prompt_label("support", "production", 2)
    expect_error(NOT_FOUND, other_client.get_prompt_version, "support", label="production")
    expect_error(NOT_FOUND, other_client.set_prompt_label, "support", "production", 1)
    expect_error(NOT_FOUND, other_client.delete_prompt_label, "support", "production")
    expect_error(NOT_FOUND, other_client.resolve_prompt, "support", label="production")
    expect_error(NOT_FOUND, other_client.list_prompt_history, "support")
    assert client.get_prompt_version("support", label="production").version == 2


# -- history ---------------------------------------------------------------------


def test_history_answers_who_moved_production_when_from_which_version(client, api_key):
    three_versions(client)
    client.activate_prompt_version("support", 2)
    client.activate_prompt_version("support", 2)  # a no-op: no event
    client.set_prompt_label("support", "production", 2)
    client.set_prompt_label("support", "production", 2)  # no move: no event
    client.set_prompt_label("support", "production", 3)
    client.delete_prompt_label("support", "production")
    client.set_traffic_split("support", {1: 1, 3: 1})
    client.clear_traffic_split("support")
    assert history(client, "support") == [
        (KIND.EVENT_KIND_SPLIT_CLEARED, 0, None, ""),
        (KIND.EVENT_KIND_SPLIT_SET, 0, None, ""),
        (KIND.EVENT_KIND_LABEL_DELETED, 0, 3, "production"),
        (KIND.EVENT_KIND_LABEL_SET, 3, 2, "production"),
        (KIND.EVENT_KIND_LABEL_SET, 2, None, "production"),
        (KIND.EVENT_KIND_VERSION_ACTIVATED, 2, 1, ""),
        (KIND.EVENT_KIND_VERSION_CREATED, 3, None, ""),
        (KIND.EVENT_KIND_VERSION_CREATED, 2, None, ""),
        (KIND.EVENT_KIND_VERSION_ACTIVATED, 1, None, ""),
        (KIND.EVENT_KIND_VERSION_CREATED, 1, None, ""),
    ]
    events = list(client.iter_prompt_history("support"))
    sequences = [e.sequence for e in events]
    assert sequences == sorted(sequences, reverse=True) and len(set(sequences)) == len(sequences)
    key_id = client.get_prompt_version("support", 1).created_by
    assert {e.created_by for e in events} == {key_id}
    assert all(e.name == "support" and e.create_time.seconds > 0 for e in events)
    split = events[1].split
    assert [(a.version, a.weight) for a in split.arms] == [(1, 1), (3, 1)]


def test_history_pages_newest_first_and_rejects_a_tampered_token(client):
    client.create_prompt_version("paged", "v1")
    for n in range(2, 8):
        client.create_prompt_version("paged", f"v{n}")
    first = client.list_prompt_history("paged", page_size=5)
    assert len(first.events) == 5 and first.next_page_token
    everything = list(client.iter_prompt_history("paged", page_size=5))
    assert len(everything) == 14  # created and activated, seven times
    assert [e.sequence for e in everything] == sorted((e.sequence for e in everything), reverse=True)
    assert everything[:5] == list(first.events)
    tampered = first.next_page_token[:-2] + ("AA" if not first.next_page_token.endswith("AA") else "BB")
    expect_error(INVALID, client.list_prompt_history, "paged", 5, tampered)
    expect_error(INVALID, client.list_prompt_history, "paged", 500)
    expect_error(NOT_FOUND, client.list_prompt_history, "never-made")


def test_failed_changes_write_no_history(client):
    three_versions(client)
    before = history(client, "support")
    expect_error(NOT_FOUND, client.activate_prompt_version, "support", 9)
    expect_error(grpc.StatusCode.ALREADY_EXISTS, client.create_prompt_version, "support", "x", version=2)
    expect_error(NOT_FOUND, client.set_traffic_split, "support", {1: 1, 9: 1})
    expect_error(NOT_FOUND, client.clear_traffic_split, "support")
    assert history(client, "support") == before


# -- traffic splits and resolution ---------------------------------------------


def test_resolve_picks_label_over_split_over_active(client):
    three_versions(client)
    assert client.resolve_prompt("support", subject="u1").prompt_version.version == 1
    client.set_traffic_split("support", {3: 1})
    assert client.resolve_prompt("support", subject="u1").prompt_version.version == 3
    client.set_prompt_label("support", "pinned", 2)
    assert client.resolve_prompt("support", subject="u1", label="pinned").prompt_version.version == 2
    client.clear_traffic_split("support")
    assert client.resolve_prompt("support", subject="u1").prompt_version.version == 1
    rendered = client.resolve_prompt("support", label="pinned", variables={"q": "hi"})
    assert rendered.rendered_text == "two hi"
    err = expect_error(INVALID, client.resolve_prompt, "support", variables={"other": "x"})
    assert "q" in err.message
    expect_error(NOT_FOUND, client.resolve_prompt, "support", label="nope")
    expect_error(INVALID, client.resolve_prompt, "support", subject="s" * 257)


def test_split_is_sticky_and_fair_over_twenty_thousand_subjects(client):
    three_versions(client)
    split = client.set_traffic_split("support", {1: 50, 2: 30, 3: 20})
    assert [(a.version, a.weight) for a in split.arms] == [(1, 50), (2, 30), (3, 20)]
    assert sum(r.end - r.start for a in split.arms for r in a.buckets) == 10_000
    # The server's choice for a few subjects, then the same subjects again: sticky.
    probe = [f"user-{n}" for n in range(40)]
    first = [client.resolve_prompt("support", subject=s).prompt_version.version for s in probe]
    assert [client.resolve_prompt("support", subject=s).prompt_version.version for s in probe] == first
    # Fair: the shares over 20,000 subjects, computed as every client does
    # from the split's buckets (the same as the server: checked on `probe`).
    from promptgauge.server.releases import Arm, Split

    local = Split(split.split_id, tuple(
        Arm(a.version, a.weight, tuple((r.start, r.end) for r in a.buckets)) for a in split.arms))
    assert [local.choose(s) for s in probe] == first
    counts = Counter(local.choose(f"subject-{n}") for n in range(20_000))
    for version, weight in ((1, 50), (2, 30), (3, 20)):
        assert abs(counts[version] / 20_000 * 100 - weight) < 2, counts


def test_changing_weights_moves_only_subjects_of_the_arm_that_shrank(client):
    three_versions(client)
    before = client.set_traffic_split("support", {1: 50, 2: 50})
    subjects = [f"s{n}" for n in range(300)]
    was = {s: client.resolve_prompt("support", subject=s).prompt_version.version for s in subjects}
    after = client.set_traffic_split("support", {1: 30, 2: 50, 3: 20})
    assert after.split_id == before.split_id
    now = {s: client.resolve_prompt("support", subject=s).prompt_version.version for s in subjects}
    moved = [s for s in subjects if was[s] != now[s]]
    assert moved and all(was[s] == 1 and now[s] == 3 for s in moved)
    assert all(now[s] == 2 for s in subjects if was[s] == 2)


def test_bad_split_is_invalid_argument_and_changes_nothing(client):
    three_versions(client)
    client.set_traffic_split("support", {1: 1, 2: 1})
    kept = [client.resolve_prompt("support", subject=f"k{n}").prompt_version.version for n in range(20)]
    for weights, field in (({}, "arms"), ({1: 0, 2: 0}, "arms"), ({0: 1}, "arms[0].version"),
                           ({n: 1 for n in range(1, 12)}, "arms")):
        err = expect_error(INVALID, client.set_traffic_split, "support", weights)
        assert err.field == field
    err = expect_error(NOT_FOUND, client.set_traffic_split, "support", {1: 1, 7: 1})
    assert err.field == "arms[1].version"
    assert [client.resolve_prompt("support", subject=f"k{n}").prompt_version.version
            for n in range(20)] == kept
    expect_error(NOT_FOUND, client.set_traffic_split, "never-made", {1: 1})


def test_duplicate_arm_is_invalid_argument(client):
    three_versions(client)
    arms = [prompts_pb2.SplitArm(version=1, weight=1), prompts_pb2.SplitArm(version=1, weight=2)]
    request = prompts_pb2.SetTrafficSplitRequest(name="support", arms=arms)
    with pytest.raises(grpc.RpcError) as err:
        client.prompts.SetTrafficSplit(request, metadata=client._metadata, timeout=10)
    assert err.value.code() == INVALID and "twice" in err.value.details()


def test_another_accounts_split_is_not_found(client, other_client):
    three_versions(client)
    client.set_traffic_split("support", {2: 1})
    expect_error(NOT_FOUND, other_client.set_traffic_split, "support", {1: 1})
    expect_error(NOT_FOUND, other_client.clear_traffic_split, "support")
    expect_error(NOT_FOUND, other_client.resolve_prompt, "support", subject="x")
    assert client.resolve_prompt("support", subject="x").prompt_version.version == 2


def test_resolve_with_a_trace_links_it_once_and_compare_counts_it(client):
    three_versions(client)
    client.set_traffic_split("support", {2: 1})
    trace = str(uuid.uuid4())
    for _ in range(3):
        assert client.resolve_prompt("support", subject="u", trace_id=trace).prompt_version.version == 2
    client.record_trace_outcome(trace, success=True, duration_ms=12.0)
    metrics = {m.version: m for m in client.compare_prompt_versions("support").versions}
    assert (metrics[2].total_traces, metrics[2].success_rate) == (1, 1.0)
    assert metrics[1].total_traces == 0
    # The outcome may come first, too.
    other = str(uuid.uuid4())
    client.stream_trace_outcomes([[trace_outcome(other, success=False)]])
    client.resolve_prompt("support", label="active", trace_id=other)
    metrics = {m.version: m for m in client.compare_prompt_versions("support").versions}
    assert (metrics[1].total_traces, metrics[1].success_rate) == (1, 0.0)
    err = expect_error(INVALID, client.resolve_prompt, "support", trace_id="not-a-trace")
    assert err.field == "trace_id"
