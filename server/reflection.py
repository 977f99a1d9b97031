"""gRPC server reflection under both of its names: grpc.reflection.v1alpha and v1.

grpcio-reflection serves only v1alpha, while current grpcurl and Postman ask
for grpc.reflection.v1 first. The v1 proto is v1alpha's with the package
renamed (the same messages and field numbers), so the one servicer answers
both, with v1alpha's (de)serializers; and v1's descriptor, made at run time
from v1alpha's, goes into the default descriptor pool so that a client can
describe the v1 service too.
"""

import threading
from collections.abc import Iterable

import grpc
from google.protobuf import descriptor, descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection, reflection_pb2

V1ALPHA_SERVICE_NAME = reflection.SERVICE_NAME
V1_SERVICE_NAME = "grpc.reflection.v1.ServerReflection"
V1_FILE_NAME = "grpc/reflection/v1/reflection.proto"

_V1ALPHA_PACKAGE = reflection_pb2.DESCRIPTOR.package
_V1_PACKAGE = V1_SERVICE_NAME.rpartition(".")[0]
_METHOD = "ServerReflectionInfo"
_pool_lock = threading.Lock()


def _v1_file_proto() -> descriptor_pb2.FileDescriptorProto:
    """v1alpha's FileDescriptorProto with v1's package, file name and options."""
    proto = descriptor_pb2.FileDescriptorProto.FromString(reflection_pb2.DESCRIPTOR.serialized_pb)
    proto.name = V1_FILE_NAME
    proto.package = _V1_PACKAGE
    old_prefix, new_prefix = f".{_V1ALPHA_PACKAGE}.", f".{_V1_PACKAGE}."

    def renamed(type_name: str) -> str:
        return new_prefix + type_name[len(old_prefix):] if type_name.startswith(old_prefix) else type_name

    for message in proto.message_type:
        for field in message.field:
            if field.HasField("type_name"):
                field.type_name = renamed(field.type_name)
    for service in proto.service:
        for method in service.method:
            method.input_type = renamed(method.input_type)
            method.output_type = renamed(method.output_type)
    # The options of grpc/grpc's src/proto/grpc/reflection/v1/reflection.proto,
    # so code generated from what a client downloads lands where grpc's own does.
    proto.options.Clear()
    proto.options.go_package = "google.golang.org/grpc/reflection/grpc_reflection_v1"
    proto.options.java_multiple_files = True
    proto.options.java_package = "io.grpc.reflection.v1"
    proto.options.java_outer_classname = "ServerReflectionProto"
    return proto


def v1_file_descriptor() -> descriptor.FileDescriptor:
    """grpc.reflection.v1's file in the default descriptor pool, added on first use.

    A v1 already there (from a grpcio-reflection that ships it, say) is used
    as it is: adding a second file that defines the same symbols would fail.
    """
    pool = descriptor_pool.Default()
    with _pool_lock:
        try:
            return pool.FindFileContainingSymbol(V1_SERVICE_NAME)
        except KeyError:
            return pool.AddSerializedFile(_v1_file_proto().SerializeToString())


def enable_reflection(server: grpc.Server | grpc.aio.Server, service_names: Iterable[str]) -> None:
    """Serve reflection v1alpha and v1 on `server` (a grpc.aio or a sync server).

    `service_names` are the services to announce besides the two reflection
    services, which are always listed. Call before the server starts.
    """
    v1_file_descriptor()
    names = {*service_names, V1ALPHA_SERVICE_NAME, V1_SERVICE_NAME}
    # As grpc_reflection's enable_server_reflection chooses: an aio server
    # needs the servicer whose handler is an async generator.
    if isinstance(server, grpc.aio.Server):
        servicer = reflection.aio.ReflectionServicer(names)
    else:
        servicer = reflection.ReflectionServicer(names)
    for service in (V1ALPHA_SERVICE_NAME, V1_SERVICE_NAME):
        handlers = {
            _METHOD: grpc.stream_stream_rpc_method_handler(
                servicer.ServerReflectionInfo,
                request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
                response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
            )
        }
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, handlers),))
        server.add_registered_method_handlers(service, handlers)
