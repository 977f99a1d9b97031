"""Each interceptor, for unary, client-streaming and server-streaming calls:
a real grpc.aio server on port 0 with a service of test methods under
promptgauge.v1 (where the interceptors apply), the interceptors as app.py
lists them, a fake key store and health, and real channels. No database."""

import asyncio
import contextlib
import hashlib
import logging
import threading
from collections.abc import Callable

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from peewee import OperationalError

from promptgauge.server import errors
from promptgauge.server.backends.base import ApiKeyRow
from promptgauge.server.interceptors import (
    Authenticate,
    ConnectionScope,
    HealthGate,
    MapErrors,
    Observe,
    current_caller,
)
from promptgauge.server.workers import Workers
from promptgauge.v1 import analytics_pb2

SERVICE = "promptgauge.v1.InterceptorTest"
GOOD_KEY = "pgk_good"
Request, Response = analytics_pb2.UsageRecord, analytics_pb2.RecordUsageResponse


class Keys:
    """A store that knows one key, of account 7."""

    def api_key(self, key_hash: str):
        if key_hash == hashlib.sha256(GOOD_KEY.encode()).hexdigest():
            return ApiKeyRow("key_good", 7, key_hash, None)
        return None


class Health:
    def __init__(self):
        self.schema_ready = True
        self.last_error = "not probed"
        self.failures: list[Exception] = []

    def failed(self, error: Exception) -> None:
        self.failures.append(error)


class Scopes:
    """Counts the units of work run in a scope, and on which threads."""

    def __init__(self):
        self.threads: list[str] = []

    @contextlib.contextmanager
    def __call__(self):
        self.threads.append(threading.current_thread().name)
        yield


class Harness:
    def __init__(self, max_message_bytes: int = 1 << 20):
        self.health, self.scopes, self.draining = Health(), Scopes(), threading.Event()
        self.workers = Workers(2, scope=self.scopes)
        self.interceptors = [
            Observe(),
            MapErrors(self.health, max_message_bytes),
            HealthGate(self.health, self.draining),
            ConnectionScope(self.workers),
            Authenticate(Keys(), self.workers),
        ]
        # What each test method does; a test replaces them.
        self.unary: Callable = lambda request, context: Response(status=_who(request.prompt_name))
        self.client_stream: Callable = _names
        self.server_stream: Callable = _echoes


def _who(text: str) -> str:
    """What ran, for whom, and where: a worker thread or the event loop."""
    where = "worker" if threading.current_thread().name.startswith("rpc") else "loop"
    return f"{text}:{current_caller().account_id}:{where}"


async def _names(requests, context):
    names = [request.prompt_name async for request in requests]
    return Response(status=_who(",".join(names)))


async def _echoes(request, context):
    for n in range(request.prompt_version):
        yield Response(status=_who(f"{request.prompt_name}{n}"))


@pytest.fixture
def harness():
    harness = Harness()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="loop", daemon=True)
    thread.start()

    async def start():
        server = grpc.aio.server(interceptors=harness.interceptors)
        handlers = {
            # Late-bound, so that a test can replace a behaviour.
            "Unary": grpc.unary_unary_rpc_method_handler(
                lambda r, c: harness.unary(r, c), Request.FromString, Response.SerializeToString),
            "ClientStream": grpc.stream_unary_rpc_method_handler(
                _late(harness, "client_stream"), Request.FromString, Response.SerializeToString),
            "ServerStream": grpc.unary_stream_rpc_method_handler(
                _late_stream(harness), Request.FromString, Response.SerializeToString),
        }
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        return server, port

    server, port = asyncio.run_coroutine_threadsafe(start(), loop).result()
    harness.channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    harness.log = _Log()
    logging.getLogger("promptgauge.rpc").addHandler(harness.log)
    logging.getLogger("promptgauge.rpc").setLevel(logging.INFO)
    yield harness
    logging.getLogger("promptgauge.rpc").removeHandler(harness.log)
    harness.channel.close()
    asyncio.run_coroutine_threadsafe(server.stop(0), loop).result()
    loop.call_soon_threadsafe(loop.stop)
    thread.join()
    harness.workers.shutdown()


def _late(harness, name):
    async def behaviour(request, context):
        return await getattr(harness, name)(request, context)
    return behaviour


def _late_stream(harness):
    async def behaviour(request, context):
        async for response in harness.server_stream(request, context):
            yield response
    return behaviour


class _Log(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines: list[dict] = []
        self.changed = threading.Condition()

    def emit(self, record):
        if not hasattr(record, "fields"):  # not a call's line
            return
        with self.changed:
            self.lines.append(record.fields)
            self.changed.notify_all()

    def codes(self, n: int) -> list[str]:
        """The codes of the first `n` calls logged (each logs when it ends,
        which may be a moment after its caller has heard)."""
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.lines) >= n, timeout=10)
            return [line["code"] for line in self.lines]


KINDS = ("unary", "client_stream", "server_stream")


def call(harness, kind: str, *, key: str | None = GOOD_KEY, name: str = "a", count: int = 2,
         timeout: float = 10, raw: bytes | None = None):
    """One call of `kind`; its responses' statuses (a list for a response stream)."""
    metadata = (("authorization", f"Bearer {key}"),) if key else ()
    ch = harness.channel
    identity = (lambda b: b) if raw is not None else Request.SerializeToString
    request = raw if raw is not None else Request(prompt_name=name, prompt_version=count)
    if kind == "unary":
        method = ch.unary_unary(f"/{SERVICE}/Unary", identity, Response.FromString)
        return method(request, metadata=metadata, timeout=timeout).status
    if kind == "client_stream":
        method = ch.stream_unary(f"/{SERVICE}/ClientStream", identity, Response.FromString)
        requests = [request] * count if raw is not None else [
            Request(prompt_name=f"{name}{n}") for n in range(count)
        ]
        return method(iter(requests), metadata=metadata, timeout=timeout).status
    method = ch.unary_stream(f"/{SERVICE}/ServerStream", identity, Response.FromString)
    return [r.status for r in method(request, metadata=metadata, timeout=timeout)]


def failure(harness, kind: str, **kwargs) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as error:
        call(harness, kind, **kwargs)
    return error.value


def reason_of(error: grpc.RpcError) -> str | None:
    status = rpc_status.from_call(error)
    for detail in status.details if status else ():
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info.reason
    return None


def test_each_kind_runs_with_its_caller_and_is_logged_ok(harness):
    # A unary call runs on a worker, its key check and its work in one scope;
    # stream handlers run on the loop and check the key in a unit of their own.
    assert call(harness, "unary", name="u") == "u:7:worker"
    assert call(harness, "client_stream", name="c", count=3) == "c0,c1,c2:7:loop"
    assert call(harness, "server_stream", name="s", count=2) == ["s0:7:loop", "s1:7:loop"]
    assert harness.log.codes(3) == ["OK"] * 3
    assert [line["account_id"] for line in harness.log.lines] == [7, 7, 7]
    # One unit of work each, on a worker: the unary call's, the streams' key checks.
    assert len(harness.scopes.threads) == 3
    assert all(name.startswith("rpc") for name in harness.scopes.threads)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("key", [None, "pgk_unknown", ""])
def test_without_a_valid_key_each_kind_is_unauthenticated(harness, kind, key):
    error = failure(harness, kind, key=key)
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert reason_of(error) == "UNAUTHENTICATED"
    assert harness.log.codes(1) == ["UNAUTHENTICATED"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_domain_error_is_its_status_with_error_info(harness, kind):
    def fail(*_):
        raise errors.NotFound("prompt 'x' not found", field="name", reason="PROMPT_NOT_FOUND")

    async def afail(*_):
        fail()

    async def agen_fail(*_):
        yield Response(status="first")
        fail()

    harness.unary, harness.client_stream, harness.server_stream = fail, afail, agen_fail
    error = failure(harness, kind)
    assert (error.code(), error.details()) == (grpc.StatusCode.NOT_FOUND, "prompt 'x' not found")
    assert reason_of(error) == "PROMPT_NOT_FOUND"
    assert harness.log.codes(1) == ["NOT_FOUND"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_database_error_is_unavailable_and_tells_the_health_gate(harness, kind):
    def fail(*_):
        raise OperationalError("could not connect to server")

    async def afail(*_):
        fail()

    async def agen_fail(*_):
        fail()
        yield  # an async generator

    harness.unary, harness.client_stream, harness.server_stream = fail, afail, agen_fail
    error = failure(harness, kind)
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert "could not connect to server" in error.details() and reason_of(error) == "DATABASE_UNAVAILABLE"
    assert len(harness.health.failures) == 1
    assert harness.log.codes(1) == ["UNAVAILABLE"]


@pytest.mark.parametrize("kind", KINDS)
def test_an_unexpected_error_is_internal_without_its_text(harness, kind, caplog):
    def fail(*_):
        raise KeyError("secret detail")

    async def afail(*_):
        fail()

    async def agen_fail(*_):
        fail()
        yield

    harness.unary, harness.client_stream, harness.server_stream = fail, afail, agen_fail
    error = failure(harness, kind)
    assert error.code() == grpc.StatusCode.INTERNAL and "secret" not in error.details()
    assert harness.log.codes(1) == ["INTERNAL"]
    assert any("secret detail" in r.getMessage() or (r.exc_info and "secret detail" in str(r.exc_info[1]))
               for r in caplog.records)


@pytest.mark.parametrize("kind", KINDS)
def test_request_bytes_that_do_not_parse_are_invalid_argument(harness, kind):
    error = failure(harness, kind, raw=b"\xff\xff\xff")
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert reason_of(error) == "MALFORMED_MESSAGE"
    assert harness.log.codes(1) == ["INVALID_ARGUMENT"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_response_over_the_limit_is_our_resource_exhausted_and_logged_so(harness, kind):
    big = Response(status="x" * (2 << 20))

    async def abig(*_):
        return big

    async def agen_big(*_):
        yield big

    harness.unary, harness.client_stream, harness.server_stream = (lambda *_: big), abig, agen_big
    error = failure(harness, kind)
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and reason_of(error) == "RESPONSE_TOO_LARGE"
    assert harness.log.codes(1) == ["RESOURCE_EXHAUSTED"]


@pytest.mark.parametrize("kind", KINDS)
def test_no_calls_while_the_database_is_not_ready(harness, kind):
    harness.health.schema_ready = False
    harness.health.last_error = "connection refused"
    error = failure(harness, kind)
    assert error.code() == grpc.StatusCode.UNAVAILABLE and "connection refused" in error.details()
    assert harness.scopes.threads == []  # not even the key was checked


def test_a_draining_server_stops_a_request_stream_before_its_next_message(harness):
    seen = []

    async def reading(requests, context):
        async for request in requests:
            seen.append(request.prompt_name)
            harness.draining.set()  # the server starts to shut down after the first message
        return Response(status="done")

    harness.client_stream = reading
    error = failure(harness, "client_stream", count=3)
    assert error.code() == grpc.StatusCode.UNAVAILABLE and reason_of(error) == "SHUTTING_DOWN"
    assert seen == ["a0"]


def test_a_response_stream_past_its_deadline_is_logged_as_such(harness):
    async def slow(request, context):
        yield Response(status="first")
        await asyncio.sleep(30)  # the handler's own pace, not the test waiting for state
        yield Response(status="late")

    harness.server_stream = slow
    error = failure(harness, "server_stream", timeout=0.5)
    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert harness.log.codes(1) == ["DEADLINE_EXCEEDED"]


def test_a_blocking_streaming_handler_is_refused_when_wrapped():
    scope = ConnectionScope(Workers(1))
    for factory in (grpc.stream_unary_rpc_method_handler, grpc.unary_stream_rpc_method_handler):
        with pytest.raises(TypeError, match="must be async"):
            scope.wrap(factory(lambda r, c: None), f"/{SERVICE}/Blocking")
    scope.workers.shutdown()
