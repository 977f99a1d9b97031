"""Authentication at the real gRPC boundary: missing, malformed, unknown and
revoked keys; several keys of one account; keys stored hashed; health and
reflection open without a key."""

import secrets

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from promptgauge.server import accounts, storage
from promptgauge.v1 import analytics_pb2, analytics_pb2_grpc, prompts_pb2, prompts_pb2_grpc

PROMPT_SERVICE = "promptgauge.v1.PromptService"
ANALYTICS_SERVICE = "promptgauge.v1.AnalyticsService"


@pytest.fixture
def channel(server):
    with grpc.insecure_channel(server.target) as ch:
        yield ch


def _new_account() -> tuple[str, str, str]:
    """A new account; returns (name, key id, plain key)."""
    name = f"auth-{secrets.token_hex(6)}"
    with storage.db.connection_context():
        _, key_id, plain = accounts.create_account(name)
    return name, key_id, plain


def _metadata(authorization: str | None):
    return () if authorization is None else (("authorization", authorization),)


def _list_prompts(channel, authorization):
    stub = prompts_pb2_grpc.PromptServiceStub(channel)
    return stub.ListPrompts(prompts_pb2.ListPromptsRequest(), metadata=_metadata(authorization), timeout=10)


def _compare(channel, authorization):
    stub = analytics_pb2_grpc.AnalyticsServiceStub(channel)
    return stub.ComparePromptVersions(
        analytics_pb2.ComparePromptVersionsRequest(name="anything"),
        metadata=_metadata(authorization),
        timeout=10,
    )


def _create(channel, authorization, name, template):
    stub = prompts_pb2_grpc.PromptServiceStub(channel)
    return stub.CreatePromptVersion(
        prompts_pb2.CreatePromptVersionRequest(name=name, template_text=template),
        metadata=_metadata(authorization),
        timeout=10,
    )


def _assert_unauthenticated(channel, authorization):
    for call in (_list_prompts, _compare):
        with pytest.raises(grpc.RpcError) as err:
            call(channel, authorization)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED, (call.__name__, err.value.details())
        assert err.value.details()


def test_missing_authorization_is_unauthenticated(channel):
    _assert_unauthenticated(channel, None)


def test_missing_key_message_says_what_to_send(channel):
    with pytest.raises(grpc.RpcError) as err:
        _list_prompts(channel, None)
    assert "authorization" in err.value.details()


@pytest.mark.parametrize("authorization", ["Basic x", "Bearer", "Bearer ", "", "pgk_nonsense"])
def test_malformed_authorization_is_unauthenticated(channel, authorization, api_key):
    _assert_unauthenticated(channel, authorization)
    # A real key in a wrong scheme is refused as well.
    _assert_unauthenticated(channel, f"Basic {api_key}")


def test_unknown_key_is_unauthenticated(channel):
    _assert_unauthenticated(channel, "Bearer pgk_" + secrets.token_urlsafe(32))


def test_valid_key_is_accepted(channel, api_key):
    assert list(_list_prompts(channel, f"Bearer {api_key}").prompt_versions) == []
    with pytest.raises(grpc.RpcError) as err:
        _compare(channel, f"Bearer {api_key}")
    # Authenticated: the prompt simply does not exist.
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_revocation_takes_effect_on_the_next_call(channel):
    _, key_id, plain = _new_account()
    bearer = f"Bearer {plain}"
    _create(channel, bearer, "before-revoke", "x")
    assert [p.name for p in _list_prompts(channel, bearer).prompt_versions] == ["before-revoke"]
    with storage.db.connection_context():
        info = accounts.revoke_key(key_id)
    assert info.revoke_time is not None
    _assert_unauthenticated(channel, bearer)
    with pytest.raises(grpc.RpcError) as err:
        _create(channel, bearer, "after-revoke", "x")
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_revoked_key_stays_revoked_and_others_keep_working(channel):
    name, key_id, plain = _new_account()
    with storage.db.connection_context():
        _, second = accounts.create_key(name)
        accounts.revoke_key(key_id)
        again = accounts.revoke_key(key_id)  # revoking twice changes nothing
        keys = {k.id: k for k in accounts.list_keys(name)}
    assert again.revoke_time is not None
    assert keys[key_id].revoke_time == again.revoke_time
    _assert_unauthenticated(channel, f"Bearer {plain}")
    assert list(_list_prompts(channel, f"Bearer {second}").prompt_versions) == []


def test_second_key_of_an_account_sees_the_same_prompts(channel):
    name, _, first = _new_account()
    with storage.db.connection_context():
        second_id, second = accounts.create_key(name)
        ids = [k.id for k in accounts.list_keys(name)]
    assert second_id in ids and len(ids) == 2
    assert second != first
    _create(channel, f"Bearer {first}", "shared", "hello {who}")
    seen = _list_prompts(channel, f"Bearer {second}").prompt_versions
    assert [(p.name, p.version, p.template_text) for p in seen] == [("shared", 1, "hello {who}")]
    # And another account sees none of it.
    _, _, stranger = _new_account()
    assert list(_list_prompts(channel, f"Bearer {stranger}").prompt_versions) == []


def test_plain_keys_are_not_stored(server):
    name, _, first = _new_account()
    with storage.db.connection_context():
        _, second = accounts.create_key(name)
        cursor = storage.db.execute_sql("select * from api_key")
        rows = [[str(value) for value in row] for row in cursor.fetchall()]
    assert rows
    stored = "\n".join("\t".join(row) for row in rows)
    for plain in (first, second):
        assert plain not in stored
        assert plain.removeprefix(accounts.KEY_PREFIX) not in stored


def test_health_check_serves_without_a_key(channel):
    stub = health_pb2_grpc.HealthStub(channel)
    for service in ("", PROMPT_SERVICE, ANALYTICS_SERVICE):
        response = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
        assert response.status == health_pb2.HealthCheckResponse.SERVING, service
    with pytest.raises(grpc.RpcError) as err:
        stub.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=10)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_reflection_lists_the_services_without_a_key(channel):
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    responses = list(
        stub.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10
        )
    )
    assert len(responses) == 1
    names = {s.name for s in responses[0].list_services_response.service}
    assert {PROMPT_SERVICE, ANALYTICS_SERVICE} <= names


def test_reflection_describes_a_service_without_a_key(channel):
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    (response,) = stub.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(file_containing_symbol=PROMPT_SERVICE)]), timeout=10
    )
    assert response.WhichOneof("message_response") == "file_descriptor_response"
    assert response.file_descriptor_response.file_descriptor_proto
