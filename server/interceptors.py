"""What applies to every call: a database connection, the caller's identity,
and the one mapping from domain errors to gRPC status codes."""

import contextvars
import logging
from collections.abc import Callable

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status
from peewee import InterfaceError, OperationalError

from . import errors
from .accounts import Caller, authenticate
from .models import db

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


def _checked_stream(requests):
    for request in requests:
        yield _checked(request)


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
        request = _checked_stream(request) if handler.request_streaming else request
        return around(behavior, request, context)

    return factory(
        wrapped,
        request_deserializer=safe_deserialize,
        response_serializer=handler.response_serializer,
    )


class ServiceInterceptor(grpc.ServerInterceptor):
    """For each promptgauge RPC: a pooled connection for its span, the caller
    authenticated from `authorization` metadata, and domain or database errors
    turned into status codes. Health and reflection pass untouched."""

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None or not handler_call_details.method.startswith(_OWN_SERVICES):
            return handler
        metadata = dict(handler_call_details.invocation_metadata or ())
        authorization = metadata.get("authorization")
        return _wrap(handler, lambda behavior, request, context: self._run(
            behavior, request, context, authorization
        ))

    def _run(self, behavior, request, context, authorization):
        try:
            with db.connection_context():
                token = _caller.set(authenticate(authorization))
                try:
                    return behavior(_checked(request), context)
                finally:
                    _caller.reset(token)
        except errors.DomainError as error:
            abort(context, error)
        except (OperationalError, InterfaceError) as error:
            log.warning("database unavailable: %s", error)
            abort(context, errors.Unavailable("the database is unavailable; try again"))
