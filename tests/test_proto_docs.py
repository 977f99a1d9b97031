"""The contract documents itself for callers in every language: each service, RPC,
message and field has a doc comment, each RPC lists its status codes, and each
quantity names its unit. buf lint's COMMENTS rules check the first part too,
but only where node is installed; this runs everywhere."""

import re

import grpc
import pytest
from conftest import load_gen_protos
from google.protobuf import descriptor_pb2

# Field numbers inside descriptor.proto, which SourceCodeInfo paths are made of.
FILE_MESSAGE, FILE_ENUM, FILE_SERVICE = 4, 5, 6
MESSAGE_FIELD, MESSAGE_NESTED, MESSAGE_ENUM = 2, 3, 4
ENUM_VALUE, SERVICE_METHOD = 2, 2

UNITS = {"_ms": "milliseconds", "_usd": "US dollars"}


def _enum_elements(enum, path, prefix):
    yield "enum", f"{prefix}{enum.name}", path, enum
    for k, value in enumerate(enum.value):
        yield "enum value", f"{prefix}{enum.name}.{value.name}", (*path, ENUM_VALUE, k), value


def _message_elements(message, path, prefix):
    if message.options.map_entry:
        return  # protoc's own message for a map field; the field carries the comment
    name = f"{prefix}{message.name}"
    yield "message", name, path, message
    for j, field in enumerate(message.field):
        yield "field", f"{name}.{field.name}", (*path, MESSAGE_FIELD, j), field
    for k, nested in enumerate(message.nested_type):
        yield from _message_elements(nested, (*path, MESSAGE_NESTED, k), f"{name}.")
    for k, enum in enumerate(message.enum_type):
        yield from _enum_elements(enum, (*path, MESSAGE_ENUM, k), f"{name}.")


def _elements(proto: descriptor_pb2.FileDescriptorProto):
    """(kind, full name, source path, descriptor) of everything a caller sees."""
    for i, service in enumerate(proto.service):
        yield "service", service.name, (FILE_SERVICE, i), service
        for j, method in enumerate(service.method):
            yield "rpc", f"{service.name}.{method.name}", (FILE_SERVICE, i, SERVICE_METHOD, j), method
    for i, message in enumerate(proto.message_type):
        yield from _message_elements(message, (FILE_MESSAGE, i), "")
    for i, enum in enumerate(proto.enum_type):
        yield from _enum_elements(enum, (FILE_ENUM, i), "")


@pytest.fixture(scope="module")
def documented(tmp_path_factory):
    """Every element of our protos with its leading doc comment."""
    out = tmp_path_factory.mktemp("descriptors") / "set.binpb"
    load_gen_protos().protoc("--include_source_info", f"--descriptor_set_out={out}")
    files = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file
    ours = [f for f in files if f.package == "promptgauge.v1"]
    assert ours, "no promptgauge.v1 protos were compiled"
    elements = []
    for proto in ours:
        comments = {tuple(loc.path): loc.leading_comments for loc in proto.source_code_info.location}
        for kind, name, path, descriptor in _elements(proto):
            elements.append((kind, name, descriptor, comments.get(path, "").strip()))
    return elements


def test_every_service_rpc_message_and_field_has_a_doc_comment(documented):
    kinds = {kind for kind, *_ in documented}
    assert {"service", "rpc", "message", "field"} <= kinds
    missing = [f"{kind} {name}" for kind, name, _, comment in documented if not comment]
    assert not missing, "no doc comment on: " + ", ".join(missing)


def test_every_rpc_lists_its_status_codes_including_unauthenticated(documented):
    for kind, name, _, comment in documented:
        if kind != "rpc":
            continue
        errors = re.search(r"^\s*Errors:(.*)", comment, re.MULTILINE | re.DOTALL)
        assert errors, f"{name}: its comment has no 'Errors:' paragraph"
        codes = set(re.findall(r"\b[A-Z][A-Z_]{4,}\b", errors.group(1)))
        assert {"UNAUTHENTICATED", "UNAVAILABLE"} <= codes, f"{name} lists {sorted(codes)}"
        assert codes <= {code.name for code in grpc.StatusCode}, f"{name}: not status codes: {sorted(codes)}"


def test_every_quantity_names_its_unit(documented):
    unnamed = [
        f"{name} (should say {unit})"
        for kind, name, _, comment in documented
        if kind == "field"
        for suffix, unit in UNITS.items()
        if name.endswith(suffix) and unit not in " ".join(comment.split())
    ]
    assert not unnamed, "units missing: " + ", ".join(unnamed)
