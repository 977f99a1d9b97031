"""Regenerate generated/ from protos/: the one command for it.

    python scripts/gen_protos.py [OUT_DIR]

protoc comes from the pinned grpcio-tools, so the output is reproducible;
tests/test_generated.py regenerates into a temporary folder and fails when
generated/ differs.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"


def protoc_arguments(*outputs: str) -> list[str]:
    """protoc's arguments after its name: the include paths, the output flags, every proto.

    The well-known protos are grpcio-tools' own, so another protoc given these
    (tests/test_proto_options.py runs one that has the Java generator) reads
    exactly the same sources.
    """
    from grpc_tools import protoc as grpc_protoc

    try:
        from importlib.resources import files

        well_known = str(files("grpc_tools") / "_proto")
    except (ImportError, TypeError):
        well_known = str(Path(grpc_protoc.__file__).parent / "_proto")
    sources = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))
    return [f"-I{PROTOS}", f"-I{well_known}", *outputs, *sources]


def protoc(*outputs: str) -> None:
    """Run the pinned protoc over every proto, with the given output flags."""
    from grpc_tools import protoc as grpc_protoc

    if grpc_protoc.main(["protoc", *protoc_arguments(*outputs)]) != 0:
        raise SystemExit("protoc failed")


def generate(out_dir: Path) -> None:
    """Write the _pb2, _pb2_grpc and .pyi files of every proto into out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    protoc(f"--python_out={out_dir}", f"--pyi_out={out_dir}", f"--grpc_python_out={out_dir}")


if __name__ == "__main__":
    generate(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "generated")
