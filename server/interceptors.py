"""What applies to every promptgauge RPC (the OTLP trace receiver's too), one
concern per interceptor.

app.py lists them, outermost first:

    Observe          one log line and metric sample per call, with the code the caller got
    MapErrors        domain and database errors, malformed requests and oversize
                     responses -> status codes with details (AIP-193)
    HealthGate       no calls while the database is not ready; a request stream
                     stops before its next message once the server drains
    ConnectionScope  blocking handlers run on the worker pool, in one pooled connection
    Authenticate     the caller, from `authorization` metadata

Each works for unary, client-streaming and server-streaming calls. Below
ConnectionScope a handler may be a plain function (run on a worker thread,
authentication included: one hop for a unary call); above it every handler
is a coroutine function or an async generator function on the event loop.
Health and reflection pass untouched.
"""

import asyncio
import contextvars
import inspect
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from . import errors, storage
from .accounts import Caller, authenticate
from .backends.base import Store
from .health import DatabaseHealth, describe
from .keycache import KeyCache
from .observability import observe_rpc
from .workers import Workers

log = logging.getLogger("promptgauge.rpc")

ERROR_DOMAIN = "promptgauge.v1"
# Method-name prefixes of the services these interceptors guard: ours, and
# the OTLP trace receiver (same auth, limits, logs and metrics).
_OWN_SERVICES = ("/promptgauge.v1.", "/opentelemetry.proto.collector.trace.v1.TraceService/")

STATUS_OF: dict[type[errors.DomainError], grpc.StatusCode] = {
    errors.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    errors.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    errors.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    errors.ResourceExhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.Unavailable: grpc.StatusCode.UNAVAILABLE,
}


@dataclass
class Call:
    """What the interceptors learn about one call; shared by reference with
    the worker threads it runs on (contextvars copy the reference)."""

    method: str
    caller: Caller | None = None


_call: contextvars.ContextVar[Call] = contextvars.ContextVar("call")


def current_caller() -> Caller:
    """The authenticated caller of the RPC this code runs for."""
    caller = _call.get().caller
    if caller is None:
        raise RuntimeError("no authenticated caller: is Authenticate installed?")
    return caller


def status_code_of(error: errors.DomainError) -> grpc.StatusCode:
    for cls in type(error).__mro__:
        if cls in STATUS_OF:
            return STATUS_OF[cls]
    return grpc.StatusCode.UNKNOWN


def to_status(error: errors.DomainError) -> status_pb2.Status:
    """google.rpc.Status with ErrorInfo (and BadRequest for a bad field)."""
    code = status_code_of(error)
    info = error_details_pb2.ErrorInfo(reason=error.reason, domain=ERROR_DOMAIN)
    if error.field:
        info.metadata["field"] = error.field
    details = [info]
    if isinstance(error, errors.InvalidArgument) and error.field:
        details.append(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field=error.field, description=error.message)
                ]
            )
        )
    packed = []
    for detail in details:
        any_msg = any_pb2.Any()
        any_msg.Pack(detail)
        packed.append(any_msg)
    return status_pb2.Status(code=code.value[0], message=error.message, details=packed)


# -- handlers and their behaviours ----------------------------------------------

_KINDS = {
    (False, False): ("unary_unary", grpc.unary_unary_rpc_method_handler),
    (True, False): ("stream_unary", grpc.stream_unary_rpc_method_handler),
    (False, True): ("unary_stream", grpc.unary_stream_rpc_method_handler),
    (True, True): ("stream_stream", grpc.stream_stream_rpc_method_handler),
}


def _behavior(handler: grpc.RpcMethodHandler) -> Callable:
    return getattr(handler, _KINDS[handler.request_streaming, handler.response_streaming][0])


def _rebuilt(handler: grpc.RpcMethodHandler, behavior: Callable, deserializer=None) -> grpc.RpcMethodHandler:
    """`handler` with another behaviour (and request deserializer)."""
    factory = _KINDS[handler.request_streaming, handler.response_streaming][1]
    return factory(
        behavior,
        request_deserializer=deserializer or handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


def _is_sync(behavior: Callable) -> bool:
    return not (inspect.iscoroutinefunction(behavior) or inspect.isasyncgenfunction(behavior))


class _Interceptor(grpc.aio.ServerInterceptor):
    """Wraps the handlers of promptgauge's own services; `wrap` returns the
    handler with the new behaviour. A method's handler is wrapped once and
    kept: what differs per call is read from the call's context."""

    def __init__(self):
        self._wrapped: dict[grpc.RpcMethodHandler, grpc.RpcMethodHandler] = {}

    async def intercept_service(self, continuation, details):
        handler = await continuation(details)
        if handler is None or not details.method.startswith(_OWN_SERVICES):
            return handler
        wrapped = self._wrapped.get(handler)
        if wrapped is None:
            wrapped = self._wrapped[handler] = self.wrap(handler, details.method)
        return wrapped

    def wrap(self, handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
        raise NotImplementedError


def _admitting(handler: grpc.RpcMethodHandler, admit: Callable) -> grpc.RpcMethodHandler:
    """An async handler that first awaits `admit(request, context)`, which
    may refuse the call (raise) or hand on another request."""
    behavior = _behavior(handler)
    if inspect.isasyncgenfunction(behavior):
        async def streaming(request, context):
            request = await admit(request, context)
            async for response in behavior(request, context):
                yield response
        return _rebuilt(handler, streaming)

    async def unary(request, context):
        return await behavior(await admit(request, context), context)
    return _rebuilt(handler, unary)


# -- the interceptors -------------------------------------------------------------


def _gone(context) -> grpc.StatusCode | None:
    """Why a call's client is gone (its deadline passed, or it cancelled), or
    None while it is there."""
    remaining = context.time_remaining()
    # The cancellation can reach us a hair before our own deadline timer.
    if remaining is not None and remaining < 0.05:
        return grpc.StatusCode.DEADLINE_EXCEEDED
    return grpc.StatusCode.CANCELLED if context.cancelled() else None


def _code_of(error: BaseException | None, context) -> grpc.StatusCode:
    """The status a call that raised `error` (or returned, if None) ended
    with, as its caller sees it."""
    if error is None:
        # A request stream cut by the deadline or a cancellation ends like a
        # finished one; nobody hears the answer.
        return _gone(context) or grpc.StatusCode.OK
    if isinstance(error, asyncio.CancelledError):
        return _gone(context) or grpc.StatusCode.CANCELLED
    code = context.code()
    if isinstance(code, grpc.StatusCode) and code is not grpc.StatusCode.OK:
        return code
    return grpc.StatusCode.UNKNOWN


class Observe(_Interceptor):
    """One log line and one metric sample per call, when it ends, with the
    status code its caller got. Never a key or a template."""

    def wrap(self, handler, method):
        behavior = _behavior(handler)
        if inspect.isasyncgenfunction(behavior):
            async def streaming(request, context):
                span = _Span(method, context)
                try:
                    async for response in behavior(request, context):
                        yield response
                except BaseException as error:
                    span.error = error
                    raise
                finally:
                    span.end()
            return _rebuilt(handler, streaming)

        async def unary(request, context):
            span = _Span(method, context)
            try:
                return await behavior(request, context)
            except BaseException as error:
                span.error = error
                raise
            finally:
                span.end()
        return _rebuilt(handler, unary)


class _Span:
    """One call, from its start to its status: its record, and what ended it."""

    __slots__ = ("method", "context", "started", "call", "token", "error")

    def __init__(self, method: str, context):
        self.method, self.context = method, context
        self.started, self.call = time.perf_counter(), Call(method)
        self.token = _call.set(self.call)
        self.error: BaseException | None = None

    def end(self) -> None:
        _call.reset(self.token)
        seconds = time.perf_counter() - self.started
        _record(self.method, _code_of(self.error, self.context), seconds, self.call, self.context)


def _record(method: str, code: grpc.StatusCode, seconds: float, call: Call, context) -> None:
    observe_rpc(method, code.name, seconds)
    if log.isEnabledFor(logging.INFO):
        account_id = call.caller.account_id if call.caller else None
        log.info(
            "%s %s %.1fms account=%s", method, code.name, seconds * 1000, account_id,
            extra={"fields": {
                "method": method,
                "code": code.name,
                "duration_ms": round(seconds * 1000, 3),
                "account_id": account_id,
                "peer": context.peer(),
            }},
        )


class _Malformed:
    """Stands in for a request message whose bytes did not parse."""


def _checked(request):
    if isinstance(request, _Malformed):
        raise errors.InvalidArgument(
            "the request message is malformed: its bytes do not parse as the method's request type",
            reason="MALFORMED_MESSAGE",
        )
    return request


async def _checked_stream(requests: AsyncIterator) -> AsyncIterator:
    async for request in requests:
        yield _checked(request)


class MapErrors(_Interceptor):
    """The one mapping from what went wrong to a status code: domain errors
    to their codes with ErrorInfo (and BadRequest), database errors to
    UNAVAILABLE (the health gate hears of them), request bytes that do not
    parse to INVALID_ARGUMENT (not gRPC's INTERNAL), a response over the
    message limit to RESOURCE_EXHAUSTED (not a failure logged as OK), and
    anything else to INTERNAL with the details in the log."""

    def __init__(self, health: DatabaseHealth | None, max_message_bytes: int):
        super().__init__()
        self.health = health
        self.max_message_bytes = max_message_bytes

    def _error(self, error: Exception, method: str) -> errors.DomainError | None:
        if isinstance(error, errors.DomainError):
            return error
        if isinstance(error, storage.UNAVAILABLE_ERRORS):
            if self.health is not None:
                self.health.failed(error)
            return errors.Unavailable(
                f"the database is unavailable ({describe(error)}); try again",
                reason="DATABASE_UNAVAILABLE",
            )
        return None

    def _sized(self, response):
        size = response.ByteSize()
        if size > self.max_message_bytes:
            raise errors.ResourceExhausted(
                f"the response would be {size} bytes; the server's limit (--max-message-bytes) is "
                f"{self.max_message_bytes}: ask for less (a smaller page_size, or a BASIC view)",
                reason="RESPONSE_TOO_LARGE",
            )
        return response

    def wrap(self, handler, method):
        behavior = _behavior(handler)
        deserialize = handler.request_deserializer

        def safe_deserialize(data: bytes):
            try:
                return deserialize(data)
            except Exception:  # noqa: BLE001 - any parse failure is the caller's bad input
                return _Malformed()

        def requests(request):
            return _checked_stream(request) if handler.request_streaming else _checked(request)

        async def fail(error: Exception, context):
            mapped = self._error(error, method)
            if mapped is None:
                log.error("%s failed", method, exc_info=error)
                await context.abort(
                    grpc.StatusCode.INTERNAL, "internal error; the server log has the details"
                )
            await context.abort_with_status(rpc_status.to_status(to_status(mapped)))

        if inspect.isasyncgenfunction(behavior):
            async def streaming(request, context):
                try:
                    async for response in behavior(requests(request), context):
                        yield self._sized(response)
                except (grpc.aio.AbortError, asyncio.CancelledError):
                    raise
                except Exception as error:  # noqa: BLE001 - mapped to a status in fail()
                    await fail(error, context)
            return _rebuilt(handler, streaming, safe_deserialize)

        async def unary(request, context):
            try:
                return self._sized(await behavior(requests(request), context))
            except (grpc.aio.AbortError, asyncio.CancelledError):
                raise
            except Exception as error:  # noqa: BLE001 - mapped to a status in fail()
                await fail(error, context)
        return _rebuilt(handler, unary, safe_deserialize)


class HealthGate(_Interceptor):
    """No calls while the database is not ready (UNAVAILABLE, with why).
    Once `draining` is set (the server is shutting down), a request stream
    stops before its next message with UNAVAILABLE: what it stored so far is
    committed and idempotent, so the client sends the whole stream again (to
    another replica, or after the restart) and nothing is lost or doubled."""

    def __init__(self, health: DatabaseHealth | None, draining):
        super().__init__()
        self.health = health
        self.draining = draining

    async def _messages(self, requests: AsyncIterator) -> AsyncIterator:
        async for request in requests:
            if self.draining.is_set():
                raise errors.Unavailable(
                    "the server is shutting down: send the stream again (records already "
                    "stored count as duplicates, never twice)",
                    reason="SHUTTING_DOWN",
                )
            yield request

    def wrap(self, handler, method):
        streaming = handler.request_streaming

        async def admit(request, context):
            if self.health is not None and not self.health.schema_ready:
                raise errors.Unavailable(
                    f"the database is unavailable ({self.health.last_error}); try again",
                    reason="DATABASE_UNAVAILABLE",
                )
            return self._messages(request) if streaming else request

        return _admitting(handler, admit)


class ConnectionScope(_Interceptor):
    """A blocking (plain function) handler runs on a worker thread inside one
    pooled connection: the event loop never waits on the database, and an
    idle stream holds neither a thread nor a connection. Async handlers take
    a worker and a connection per unit of work (Workers.run)."""

    def __init__(self, workers: Workers):
        super().__init__()
        self.workers = workers

    def wrap(self, handler, method):
        behavior = _behavior(handler)
        if not _is_sync(behavior):
            return handler
        if handler.request_streaming or handler.response_streaming:
            # A thread would be held for the stream's whole life, idle or not.
            raise TypeError(f"{method}: a streaming handler must be async")
        workers = self.workers

        async def offloaded(request, context):
            return await workers.run(behavior, request, context)
        return _rebuilt(handler, offloaded)


class Authenticate(_Interceptor):
    """The caller behind `authorization: Bearer <api key>`, for the rest of
    the call (interceptors.current_caller()). A blocking handler checks the
    key on its own worker thread and connection; an async one in a unit of
    work of its own, before its first message."""

    def __init__(self, store: Store, workers: Workers, keys: KeyCache | None = None):
        super().__init__()
        self.store = store
        self.workers = workers
        self.keys = keys

    def wrap(self, handler, method):
        behavior = _behavior(handler)
        store, keys = self.store, self.keys

        def identify(caller: Caller) -> None:
            call = _call.get(None)
            if call is None:  # no Observe: a call record of our own
                call = Call(method)
                _call.set(call)
            call.caller = caller

        if _is_sync(behavior):
            def checked(request, context):
                identify(authenticate(store, _authorization(context), keys))
                return behavior(request, context)
            return _rebuilt(handler, checked)

        async def identified(request, context):
            identify(await self.workers.run(authenticate, store, _authorization(context), keys))
            return request

        return _admitting(handler, identified)


def _authorization(context) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == "authorization":
            return value
    return None
