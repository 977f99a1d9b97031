"""Paging ListPrompts and ListPromptVersions with opaque page tokens."""

import base64
import json

import grpc
import pytest

from promptgauge.client import PromptGaugeError

INVALID = grpc.StatusCode.INVALID_ARGUMENT


def expect_invalid(call, *args, **kwargs) -> PromptGaugeError:
    with pytest.raises(PromptGaugeError) as err:
        call(*args, **kwargs)
    assert err.value.code == INVALID, err.value
    return err.value


def make_versions(client, name, count):
    for i in range(count):
        client.create_prompt_version(name, f"{name} {i + 1}")


def walk(list_page, page_size):
    """Every item over all pages, and the number of pages."""
    items, token, pages = [], "", 0
    while pages < 1000:
        page = list_page(page_size=page_size, page_token=token)
        pages += 1
        items.extend(page.prompt_versions)
        token = page.next_page_token
        if not token:
            return items, pages
        assert page.prompt_versions, "a page with a next token must not be empty"
    raise AssertionError("pagination never ended")


@pytest.fixture
def fifty_one(client):
    make_versions(client, "many", 51)
    return client


def test_list_prompt_versions_default_page_size_is_50(fifty_one):
    first = fifty_one.list_prompt_versions("many")
    assert [v.version for v in first.prompt_versions] == list(range(51, 1, -1))
    assert first.next_page_token
    second = fifty_one.list_prompt_versions("many", page_token=first.next_page_token)
    assert [v.version for v in second.prompt_versions] == [1]
    assert second.next_page_token == ""


def test_list_prompts_default_page_size_is_50(fifty_one):
    first = fifty_one.list_prompts()
    assert len(first.prompt_versions) == 50 and first.next_page_token
    second = fifty_one.list_prompts(page_token=first.next_page_token)
    assert [v.version for v in second.prompt_versions] == [1]
    assert second.next_page_token == ""


def test_exact_page_size_gives_no_next_token(client):
    make_versions(client, "few", 3)
    page = client.list_prompt_versions("few", page_size=3)
    assert len(page.prompt_versions) == 3 and page.next_page_token == ""


@pytest.mark.parametrize("size", [1, 200])
def test_page_size_bounds_are_accepted(client, size):
    make_versions(client, "few", 2)
    page = client.list_prompt_versions("few", page_size=size)
    assert len(page.prompt_versions) == min(size, 2)
    assert len(client.list_prompts(page_size=size).prompt_versions) == min(size, 2)


@pytest.mark.parametrize("size", [201, -1, -(2**31)])
def test_out_of_range_page_size_is_invalid_argument(client, size):
    make_versions(client, "few", 2)
    err = expect_invalid(client.list_prompt_versions, "few", page_size=size)
    assert err.field == "page_size" and err.reason == "INVALID_PAGE_SIZE"
    err = expect_invalid(client.list_prompts, page_size=size)
    assert err.field == "page_size"


@pytest.mark.parametrize("page_size", [1, 3, 7])
def test_walking_list_prompt_versions_gives_every_version_once(client, page_size):
    make_versions(client, "walk", 13)
    make_versions(client, "other", 2)
    items, pages = walk(lambda **kw: client.list_prompt_versions("walk", **kw), page_size)
    assert [v.version for v in items] == list(range(13, 0, -1))
    assert pages == -(-13 // page_size)


@pytest.mark.parametrize("page_size", [1, 2, 5])
def test_walking_list_prompts_gives_every_version_once_in_order(client, page_size):
    counts = {"b": 3, "a": 4, "c": 1, "a-z": 2, "a_a": 2, "a0": 1, "a.b": 2, "ab": 1}
    for name, count in counts.items():
        make_versions(client, name, count)
    items, _ = walk(client.list_prompts, page_size)
    keys = [(v.name, v.version) for v in items]
    # Code-point order of names ("-" < "." < "0" < "_" < "b"), on every backend.
    names = ["a", "a-z", "a.b", "a0", "a_a", "ab", "b", "c"]
    assert keys == [(n, v) for n in names for v in range(counts[n], 0, -1)]


def _tokens(client):
    make_versions(client, "paged", 5)
    token = client.list_prompt_versions("paged", page_size=2).next_page_token
    assert token
    return token


def _tampered(token):
    payload, signature = token.split(".")
    middle = len(payload) // 2
    flipped = payload[:middle] + ("A" if payload[middle] != "A" else "B") + payload[middle + 1 :]
    sig_flipped = signature[:3] + ("A" if signature[3] != "A" else "B") + signature[4:]
    return {
        "flip-payload": flipped + "." + signature,
        "flip-signature": payload + "." + sig_flipped,
        "truncated": token[: len(token) // 2],
        "truncated-end": token[:-1],
        "garbage": "not-a-token",
        "garbage-dots": "a.b.c",
        "garbage-unicode": "ünï.cødé",
        "bad-base64": "a.b",
        "very-long": "A" * 5000 + "." + signature,
    }


@pytest.mark.parametrize(
    "kind",
    ["flip-payload", "flip-signature", "truncated", "truncated-end", "garbage",
     "garbage-dots", "garbage-unicode", "bad-base64", "very-long"],
)
def test_tampered_page_token_is_invalid_argument(client, kind):
    bad = _tampered(_tokens(client))[kind]
    err = expect_invalid(client.list_prompt_versions, "paged", page_size=2, page_token=bad)
    assert err.field == "page_token" and err.reason == "INVALID_PAGE_TOKEN"
    err = expect_invalid(client.list_prompts, page_size=2, page_token=bad)
    assert err.field == "page_token"


def test_forged_page_token_with_a_changed_cursor_is_invalid_argument(client):
    token = _tokens(client)
    payload, signature = token.split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    body["c"] = [99]
    forged = base64.urlsafe_b64encode(json.dumps(body).encode()).decode().rstrip("=")
    expect_invalid(client.list_prompt_versions, "paged", page_size=2, page_token=forged + "." + signature)


def test_page_token_of_another_name_is_invalid_argument(client):
    token = _tokens(client)
    make_versions(client, "different", 5)
    err = expect_invalid(client.list_prompt_versions, "different", page_size=2, page_token=token)
    assert err.field == "page_token"


def test_page_token_of_another_request_kind_is_invalid_argument(client):
    versions_token = _tokens(client)
    prompts_token = client.list_prompts(page_size=2).next_page_token
    assert prompts_token
    expect_invalid(client.list_prompts, page_size=2, page_token=versions_token)
    expect_invalid(client.list_prompt_versions, "paged", page_size=2, page_token=prompts_token)


def test_page_token_of_another_account_is_invalid_argument(client, other_client):
    versions_token = _tokens(client)
    prompts_token = client.list_prompts(page_size=2).next_page_token
    make_versions(other_client, "paged", 5)
    err = expect_invalid(other_client.list_prompt_versions, "paged", page_size=2, page_token=versions_token)
    assert err.field == "page_token"
    err = expect_invalid(other_client.list_prompts, page_size=2, page_token=prompts_token)
    assert err.field == "page_token"


def test_page_token_still_works_with_another_page_size(client):
    token = _tokens(client)
    page = client.list_prompt_versions("paged", page_size=10, page_token=token)
    assert [v.version for v in page.prompt_versions] == [3, 2, 1]


def test_version_created_between_pages_causes_no_duplicates(client):
    make_versions(client, "moving", 6)
    first = client.list_prompt_versions("moving", page_size=3)
    client.create_prompt_version("moving", "new")
    client.create_prompt_version("moving", "older number", version=100)
    rest, _ = walk(
        lambda page_size, page_token: client.list_prompt_versions(
            "moving", page_size=page_size, page_token=page_token or first.next_page_token
        ),
        3,
    )
    seen = [v.version for v in first.prompt_versions] + [v.version for v in rest]
    assert seen == [6, 5, 4, 3, 2, 1]


def test_prompt_created_between_list_prompts_pages_causes_no_duplicates(client):
    make_versions(client, "b", 4)
    first = client.list_prompts(page_size=2)
    make_versions(client, "a", 2)  # sorts before the cursor
    make_versions(client, "b", 1)  # newer than the cursor
    make_versions(client, "c", 1)  # after the cursor: seen
    rest, _ = walk(
        lambda page_size, page_token: client.list_prompts(
            page_size=page_size, page_token=page_token or first.next_page_token
        ),
        2,
    )
    seen = [(v.name, v.version) for v in list(first.prompt_versions) + rest]
    assert len(seen) == len(set(seen))
    assert seen == [("b", 4), ("b", 3), ("b", 2), ("b", 1), ("c", 1)]
