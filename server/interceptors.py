"""What applies to every call: a database connection, the caller's identity,
the one mapping from domain errors to gRPC status codes, and the log line and
metrics of each RPC."""

import contextvars
import logging
import threading
import time
from collections.abc import Callable

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from . import errors, storage
from .accounts import Caller, authenticate
from .health import DatabaseHealth, describe
from .observability import observe_rpc

log = logging.getLogger("promptgauge.rpc")

ERROR_DOMAIN = "promptgauge.v1"
_OWN_SERVICES = "/promptgauge.v1."

STATUS_OF: dict[type[errors.DomainError], grpc.StatusCode] = {
    errors.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    errors.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    errors.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    errors.ResourceExhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.Unavailable: grpc.StatusCode.UNAVAILABLE,
}

_caller: contextvars.ContextVar[Caller] = contextvars.ContextVar("caller")


def current_caller() -> Caller:
    """The authenticated caller of the RPC running on this thread."""
    return _caller.get()


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
                    error_details_pb2.BadRequest.FieldViolation(
                        field=error.field, description=error.message
                    )
                ]
            )
        )
    packed = []
    for detail in details:
        any_msg = any_pb2.Any()
        any_msg.Pack(detail)
        packed.append(any_msg)
    return status_pb2.Status(code=code.value[0], message=error.message, details=packed)


def abort(context: grpc.ServicerContext, error: errors.DomainError):
    context.abort_with_status(rpc_status.to_status(to_status(error)))


class _Malformed:
    """Stands in for a request message whose bytes did not parse."""


def _checked(request):
    if isinstance(request, _Malformed):
        raise errors.InvalidArgument(
            "the request message is malformed: its bytes do not parse as the "
            "method's request type",
            reason="MALFORMED_MESSAGE",
        )
    return request


def _wrap(handler: grpc.RpcMethodHandler, around: Callable) -> grpc.RpcMethodHandler:
    """The same handler, its behaviour run inside `around`, and a request that
    fails to parse handed on as _Malformed (INVALID_ARGUMENT, not gRPC's
    INTERNAL)."""
    kinds = {
        (False, False): ("unary_unary", grpc.unary_unary_rpc_method_handler),
        (True, False): ("stream_unary", grpc.stream_unary_rpc_method_handler),
        (False, True): ("unary_stream", grpc.unary_stream_rpc_method_handler),
        (True, True): ("stream_stream", grpc.stream_stream_rpc_method_handler),
    }
    attr, factory = kinds[(handler.request_streaming, handler.response_streaming)]
    behavior = getattr(handler, attr)
    deserialize = handler.request_deserializer

    def safe_deserialize(data: bytes):
        try:
            return deserialize(data)
        except Exception:  # noqa: BLE001 - any parse failure is the caller's bad input
            return _Malformed()

    def wrapped(request, context):
        return around(behavior, request, context, handler.request_streaming)

    return factory(
        wrapped,
        request_deserializer=safe_deserialize,
        response_serializer=handler.response_serializer,
    )


def _gone(context: grpc.ServicerContext) -> grpc.StatusCode | None:
    """Why a call's client is gone (its deadline passed, or it cancelled), or
    None while it is there."""
    remaining = context.time_remaining()
    # The cancellation can reach us a hair before our own deadline timer.
    if remaining is not None and remaining < 0.05:
        return grpc.StatusCode.DEADLINE_EXCEEDED
    return None if context.is_active() else grpc.StatusCode.CANCELLED


class ServiceInterceptor(grpc.ServerInterceptor):
    """For each promptgauge RPC: a pooled connection for its span, the caller
    authenticated from `authorization` metadata, domain and database errors
    turned into status codes, and one log line and one metric sample when it
    ends. Health and reflection pass untouched.

    `draining` set means the server is shutting down: a stream then stops
    before its next message with UNAVAILABLE. What it stored so far is
    committed and idempotent, so the client sends the whole stream again
    (to another replica, or after the restart) and nothing is lost or doubled.
    """

    def __init__(self, health: DatabaseHealth | None = None, draining: threading.Event | None = None):
        self.health = health
        self.draining = draining or threading.Event()

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None or not handler_call_details.method.startswith(_OWN_SERVICES):
            return handler
        method = handler_call_details.method
        metadata = dict(handler_call_details.invocation_metadata or ())
        authorization = metadata.get("authorization")
        return _wrap(handler, lambda behavior, request, context, streaming: self._run(
            method, behavior, self._messages(request) if streaming else request, context, authorization
        ))

    def _messages(self, requests):
        for request in requests:
            if self.draining.is_set():
                raise errors.Unavailable(
                    "the server is shutting down: send the stream again (records already "
                    "stored count as duplicates, never twice)",
                    reason="SHUTTING_DOWN",
                )
            yield _checked(request)

    def _run(self, method, behavior, request, context, authorization):
        started = time.perf_counter()
        code = grpc.StatusCode.OK
        account_id = None
        try:
            if self.health is not None and not self.health.schema_ready:
                raise errors.Unavailable(
                    f"the database is unavailable ({self.health.last_error}); try again",
                    reason="DATABASE_UNAVAILABLE",
                )
            with storage.connection():
                caller = authenticate(authorization)
                account_id = caller.account_id
                token = _caller.set(caller)
                try:
                    response = behavior(_checked(request), context)
                finally:
                    _caller.reset(token)
            # A stream whose client went away can end like a finished one
            # (gRPC may hand the handler the end of the stream before the
            # cancellation); nobody hears this answer, so log what the
            # client saw.
            code = _gone(context) or code
            return response
        except errors.DomainError as error:
            code = status_code_of(error)
            abort(context, error)
        except storage.UNAVAILABLE_ERRORS as error:
            code = grpc.StatusCode.UNAVAILABLE
            if self.health is not None:
                self.health.failed(error)
            abort(context, errors.Unavailable(
                f"the database is unavailable ({describe(error)}); try again",
                reason="DATABASE_UNAVAILABLE",
            ))
        except grpc.RpcError:
            # Reading the request stream failed: the client cancelled, or its
            # deadline passed. The call is over; the work stops here.
            code = _gone(context) or grpc.StatusCode.CANCELLED
            return None
        except Exception:
            code = grpc.StatusCode.INTERNAL
            log.exception("%s failed", method)
            context.abort(grpc.StatusCode.INTERNAL, "internal error; the server log has the details")
        finally:
            seconds = time.perf_counter() - started
            observe_rpc(method, code.name, seconds)
            if log.isEnabledFor(logging.INFO):
                log.info(
                    "%s %s %.1fms account=%s",
                    method, code.name, seconds * 1000, account_id,
                    extra={"fields": {
                        "method": method,
                        "code": code.name,
                        "duration_ms": round(seconds * 1000, 3),
                        "account_id": account_id,
                        "peer": context.peer(),
                    }},
                )
