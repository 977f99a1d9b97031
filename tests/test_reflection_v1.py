"""Server reflection answers under grpc.reflection.v1 (what grpcurl and Postman ask
for first) as well as v1alpha, on a grpc.aio server and on a sync one, through a
real channel.

A v1 caller's messages are v1alpha's field for field (grpc/grpc's
src/proto/grpc/reflection/v1/reflection.proto renames only the package), so
the requests below are v1alpha messages sent to the v1 method; the field
numbers of the v1 descriptor that the server hands out are checked against
that file.
"""

import asyncio
import threading
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection_pb2

from promptgauge.server.reflection import V1_FILE_NAME, enable_reflection
from promptgauge.v1 import prompts_pb2, prompts_pb2_grpc

PROMPTS = "promptgauge.v1.PromptService"
V1 = "grpc.reflection.v1.ServerReflection"
V1ALPHA = "grpc.reflection.v1alpha.ServerReflection"
OTLP_TRACES = "opentelemetry.proto.collector.trace.v1.TraceService"

# Field numbers of grpc.reflection.v1's messages, from grpc/grpc's reflection/v1/reflection.proto.
V1_FIELDS = {
    "ServerReflectionRequest": {
        "host": 1, "file_by_filename": 3, "file_containing_symbol": 4, "file_containing_extension": 5,
        "all_extension_numbers_of_type": 6, "list_services": 7,
    },
    "ExtensionRequest": {"containing_type": 1, "extension_number": 2},
    "ServerReflectionResponse": {
        "valid_host": 1, "original_request": 2, "file_descriptor_response": 4,
        "all_extension_numbers_response": 5, "list_services_response": 6, "error_response": 7,
    },
    "FileDescriptorResponse": {"file_descriptor_proto": 1},
    "ExtensionNumberResponse": {"base_type_name": 1, "extension_number": 2},
    "ListServiceResponse": {"service": 1},
    "ServiceResponse": {"name": 1},
    "ErrorResponse": {"error_code": 1, "error_message": 2},
}


def _register(server) -> None:
    prompts_pb2_grpc.add_PromptServiceServicer_to_server(prompts_pb2_grpc.PromptServiceServicer(), server)
    enable_reflection(server, [PROMPTS])


@pytest.fixture
def aio_target() -> Iterator[str]:
    """A grpc.aio server on port 0, run by its own event loop in a thread of the test."""
    ready = threading.Event()
    state = {}

    async def serve() -> None:
        server = grpc.aio.server()
        _register(server)
        state["port"] = server.add_insecure_port("127.0.0.1:0")
        state["stop"] = asyncio.Event()
        state["loop"] = asyncio.get_running_loop()
        await server.start()
        ready.set()
        await state["stop"].wait()
        await server.stop(None)

    def run() -> None:
        try:
            asyncio.run(serve())
        except BaseException as error:
            state["error"] = error
            ready.set()
            raise

    thread = threading.Thread(target=run, name="aio-server")
    thread.start()
    try:
        assert ready.wait(30), "the aio server did not start"
        assert "error" not in state, state.get("error")
        yield f"127.0.0.1:{state['port']}"
    finally:
        if "loop" in state:
            state["loop"].call_soon_threadsafe(state["stop"].set)
        thread.join(30)
        assert not thread.is_alive(), "the aio server did not stop"


@pytest.fixture
def sync_target() -> Iterator[str]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    _register(server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(None).wait()


@pytest.fixture(params=["aio", "sync"])
def target(request) -> str:
    return request.getfixturevalue(f"{request.param}_target")


def _ask(target: str, service: str, *requests: reflection_pb2.ServerReflectionRequest):
    """The responses of one ServerReflectionInfo stream of `service`, one per request."""
    with grpc.insecure_channel(target) as channel:
        info = channel.stream_stream(
            f"/{service}/ServerReflectionInfo",
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )
        return list(info(iter(requests), timeout=10))


def _files(response) -> list[descriptor_pb2.FileDescriptorProto]:
    assert response.WhichOneof("message_response") == "file_descriptor_response", response
    return [descriptor_pb2.FileDescriptorProto.FromString(raw)
            for raw in response.file_descriptor_response.file_descriptor_proto]


def _pool(files: list[descriptor_pb2.FileDescriptorProto]) -> descriptor_pool.DescriptorPool:
    """A fresh pool built from what reflection sent: it fails on a missing dependency."""
    pool = descriptor_pool.DescriptorPool()
    pending = {f.name: f for f in files}
    while pending:
        ready = [f for f in pending.values() if all(d not in pending for d in f.dependency)]
        assert ready, f"dependencies not sent or circular: {sorted(pending)}"
        for f in ready:
            pool.Add(f)
            del pending[f.name]
    return pool


@pytest.mark.parametrize("service", [V1, V1ALPHA])
def test_list_services_names_ours_and_both_reflection_services(target, service):
    (response,) = _ask(target, service, reflection_pb2.ServerReflectionRequest(list_services=""))
    names = {s.name for s in response.list_services_response.service}
    assert names == {PROMPTS, V1, V1ALPHA}


@pytest.mark.parametrize("service", [V1, V1ALPHA])
def test_a_caller_can_describe_our_service_and_both_reflection_services(target, service):
    responses = _ask(
        target, service,
        reflection_pb2.ServerReflectionRequest(file_containing_symbol=PROMPTS),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol=V1),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol=V1ALPHA),
    )
    prompts, v1, v1alpha = (_pool(_files(r)) for r in responses)
    assert [m.name for m in prompts.FindServiceByName(PROMPTS).methods] == [
        m.name for m in prompts_pb2.DESCRIPTOR.services_by_name["PromptService"].methods
    ]
    for pool, name in ((v1, V1), (v1alpha, V1ALPHA)):
        method = pool.FindServiceByName(name).methods_by_name["ServerReflectionInfo"]
        package = name.rpartition(".")[0]
        assert method.input_type.full_name == f"{package}.ServerReflectionRequest"
        assert method.output_type.full_name == f"{package}.ServerReflectionResponse"


def test_the_v1_descriptor_has_grpcs_v1_file_name_package_and_field_numbers(target):
    (response,) = _ask(target, V1, reflection_pb2.ServerReflectionRequest(file_containing_symbol=V1))
    (file,) = _files(response)
    assert (file.name, file.package) == (V1_FILE_NAME, "grpc.reflection.v1")
    assert (file.options.java_package, file.options.go_package) == (
        "io.grpc.reflection.v1", "google.golang.org/grpc/reflection/grpc_reflection_v1"
    )
    pool = _pool([file])
    for message, fields in V1_FIELDS.items():
        descriptor = pool.FindMessageTypeByName(f"grpc.reflection.v1.{message}")
        assert {f.name: f.number for f in descriptor.fields} == fields, message
        for field in descriptor.fields:
            if field.message_type is not None:
                assert field.message_type.full_name.startswith("grpc.reflection.v1."), field.full_name
    (method,) = pool.FindServiceByName(V1).methods
    assert method.client_streaming and method.server_streaming


def test_an_unknown_symbol_is_a_not_found_answer_on_the_open_stream(target):
    missing, listed = _ask(
        target, V1,
        reflection_pb2.ServerReflectionRequest(file_containing_symbol="promptgauge.v1.NoSuchService"),
        reflection_pb2.ServerReflectionRequest(list_services=""),
    )
    assert missing.error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]
    assert missing.original_request.file_containing_symbol == "promptgauge.v1.NoSuchService"
    assert PROMPTS in {s.name for s in listed.list_services_response.service}



@pytest.mark.parametrize("service", [V1, V1ALPHA])
def test_the_promptgauge_server_serves_both_reflection_versions_without_a_key(server, service):
    (listed, described, otlp) = _ask(
        server.target, service,
        reflection_pb2.ServerReflectionRequest(list_services=""),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol="promptgauge.v1.AnalyticsService"),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol=OTLP_TRACES),
    )
    names = {s.name for s in listed.list_services_response.service}
    assert names == {
        PROMPTS, "promptgauge.v1.AnalyticsService", "promptgauge.v1.AgentService", OTLP_TRACES,
        "grpc.health.v1.Health", V1, V1ALPHA,
    }
    pool = _pool(_files(described))
    assert pool.FindServiceByName("promptgauge.v1.AnalyticsService").methods_by_name["StreamUsage"]
    # The OTLP receiver is described with the files it depends on (spans, resources).
    export = _pool(_files(otlp)).FindServiceByName(OTLP_TRACES).methods_by_name["Export"]
    assert export.input_type.fields_by_name["resource_spans"].message_type.full_name == (
        "opentelemetry.proto.trace.v1.ResourceSpans"
    )
