import grpc
import pytest

from promptgauge.client import PromptGaugeError


def test_create_and_get_round_trip(client):
    created = client.create_prompt_version("greeter", "Hello {name}!")
    assert created.version == 1 and created.is_active
    assert list(created.variables) == ["name"]
    got = client.get_prompt_version("greeter")
    assert got.id == created.id


def test_other_account_prompt_is_not_found(client, other_client):
    client.create_prompt_version("private", "x")
    with pytest.raises(PromptGaugeError) as err:
        other_client.get_prompt_version("private")
    assert err.value.code == grpc.StatusCode.NOT_FOUND
